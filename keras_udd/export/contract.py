"""The I/O contract of the exported deblurrer: names, value mapping, JSON files.

Every artifact computes s = G_S(E^c_B(b), mu(E^b(b))) on RGB images in NHWC
layout; clients see values in [0, 1] (float) or 0-255 (uint8), while the
Keras `Deblurrer` works in [-1, 1]. The names and the mapping between the two
live in `keras_udd.runtime` (the library runs artifacts without this tool) and
are re-exported here; export, verification and the JSON contracts that Android
and other clients read all use them.
"""

import json
import math
import time
from pathlib import Path

import keras
import tensorflow as tf

from keras_udd.model import MIN_IMAGE_SIZE
from keras_udd.runtime import (  # noqa: F401  (re-exported: the contract's names)
    DEBLUR_ENCODED,
    DEBLUR_FLOAT,
    DEBLURRED,
    IMAGE_BYTES,
    IMAGES,
    PNG_BYTES,
    SERVING_DEFAULT,
    TFLITE_SIGNATURE,
    to_model_range,
    to_unit_range,
)

CONTRACT_VERSION = 1
PAD_MULTIPLE = 4  # `Deblurrer` reflection-pads H and W to this, then crops.


def deblur_unit(deblurrer, images):
    """The deblurrer on float32 [N, H, W, 3] images in [0, 1]; same out."""
    return to_unit_range(deblurrer(to_model_range(images)))


def sizes_entry():
    """Which image sizes every artifact accepts."""
    return {
        "min_height": MIN_IMAGE_SIZE,
        "min_width": MIN_IMAGE_SIZE,
        "any_size": True,
        "note": (
            f"any H, W >= {MIN_IMAGE_SIZE}; the model reflection-pads the "
            f"bottom/right to a multiple of {PAD_MULTIPLE} internally and crops "
            "the output back, so the output is exactly the input's size"
        ),
    }


def _image_tensor(name, dtype, shape, value_range, **extra):
    return {
        "name": name,
        "dtype": dtype,
        "shape": shape,
        "layout": "NHWC",
        "color": "RGB",
        "range": value_range,
        **extra,
    }


def savedmodel_contract(config, parity):
    """The contract of the SavedModel: its three signatures.

    Args:
        config: the model's `get_config()` dict.
        parity: the verification figures (see `keras_udd.export.verify`).
    """
    images_u8 = _image_tensor(IMAGES, "uint8", [-1, -1, -1, 3], [0, 255])
    deblurred_u8 = _image_tensor(DEBLURRED, "uint8", [-1, -1, -1, 3], [0, 255])
    images_f = _image_tensor(IMAGES, "float32", [-1, -1, -1, 3], [0.0, 1.0])
    deblurred_f = _image_tensor(DEBLURRED, "float32", [-1, -1, -1, 3], [0.0, 1.0])
    return {
        **_header("savedmodel"),
        "layout": "TF Serving: <base>/<version>/saved_model.pb; base path is this "
        "file's folder",
        "signatures": {
            SERVING_DEFAULT: {
                "inputs": [images_u8],
                "outputs": [deblurred_u8],
                "note": "rounded to the nearest level",
            },
            DEBLUR_FLOAT: {"inputs": [images_f], "outputs": [deblurred_f]},
            DEBLUR_ENCODED: {
                "inputs": [{"name": IMAGE_BYTES, "dtype": "string", "shape": [-1]}],
                "outputs": [{"name": PNG_BYTES, "dtype": "string", "shape": [-1]}],
                "note": "one encoded JPEG/PNG/BMP/GIF (first frame) per element, "
                "any size, converted to RGB; returns one 8-bit RGB PNG each. "
                'REST: {"signature_name": "deblur_encoded", "instances": '
                '[{"b64": "<base64 file>"}]}',
            },
        },
        "sizes": sizes_entry(),
        "model_config": config,
        "parity": parity,
    }


def tflite_contract(interpreter_details, quantization, file, config, parity, ops):
    """The contract of one TFLite model, from the interpreter's own details.

    Args:
        interpreter_details: `(inputs, outputs)` as returned by
            `keras_udd.export.verify.tflite_io_details` (signature and tensor details).
        quantization: "none", "float16", "dynamic" or "int8".
        file: the model's file name.
        ops: `{op name: count}` of the flatbuffer (`keras_udd.export.tflite.op_counts`).
        config: the model's `get_config()` dict.
        parity: the verification figures.
    """
    inputs, outputs = interpreter_details
    return {
        **_header("tflite"),
        "file": file,
        "quantization": quantization,
        "ops": "TFLite builtins only (no Flex/Select TF ops, no resource variables)",
        "op_set": dict(sorted(ops.items())),
        "signature_key": TFLITE_SIGNATURE,
        "inputs": [_image_tensor(value_range=[0.0, 1.0], **d) for d in inputs],
        "outputs": [_image_tensor(value_range=[0.0, 1.0], **d) for d in outputs],
        "batch": 1,
        "usage": "interpreter.resizeInput(input index, [1, H, W, 3]); "
        "allocateTensors(); run. Or runSignature with key 'deblur'. XNNPACK "
        "(the default CPU delegate) runs all but the shape arithmetic.",
        "sizes": sizes_entry(),
        "model_config": config,
        "parity": parity,
    }


def _header(kind):
    return {
        "contract_version": CONTRACT_VERSION,
        "artifact": kind,
        "model": "keras_udd UID-GAN deblurring path s = G_S(E^c_B(b), mu(E^b(b)))",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }


def write_contract(path, contract):
    """Writes `contract` as indented JSON to `path`; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(json_safe(contract), indent=2) + "\n")
    return path


def json_safe(value):
    """Plain JSON values: numpy scalars to Python, non-finite floats (an
    `inf` PSNR of identical outputs) to strings, which strict parsers accept."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
