"""Converts the deblurring path to TFLite: builtin ops only, dynamic H and W.

Variants (`quantization`): "none" (float32), "float16" (float16 weights),
"dynamic" (dynamic-range int8 weights; XNNPACK runs its convolutions with
int8 arithmetic on the fly) and "int8" (full-integer int8 calibrated on a
representative dataset). All take and return float32 [1, H, W, 3] in [0, 1]
(signature "deblur": `images` -> `deblurred`), so clients need one code path.

The model is traced for TFLite with one exactly equivalent rewrite: each
stride-2 3x3 transposed convolution (`ConvTranspose3x3Stride2`, PyTorch's
alignment) runs as four convolutions, one per output phase (1x1, 1x2, 2x1
and 2x2 kernels: its 9 taps), on the input zero-padded at the bottom/right,
interleaved by DEPTH_TO_SPACE ("sub-pixel" convolution). A transposed
convolution of a dynamic-size input has a computed output shape, and the
XNNPACK delegate only takes TRANSPOSE_CONV with a constant one; left as is,
both upsampling layers ran on the slow reference kernel outside the delegate.
"""

import collections
import contextlib
import functools
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from keras_udd import keras_private
from keras_udd.export import contract
from keras_udd.export.savedmodel import build
from keras_udd.layers import ConvTranspose3x3Stride2, sliced_reflection_padding

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
FILE_NAMES = {
    "none": "deblurrer_float32.tflite",
    "float16": "deblurrer_float16.tflite",
    "dynamic": "deblurrer_dynamic_int8.tflite",
    "int8": "deblurrer_int8.tflite",
}
# Ops that read or write resource variables: a model containing them was not
# frozen and gives wrong results (or none) on Android.
VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}

# The PyTorch-aligned 3x3 stride-2 transposed conv gives, per axis,
#     out[2i] = x[i] w[1],   out[2i + 1] = x[i] w[2] + x[i + 1] w[0].
# With x padded by one zero row at the end (xp[H] = 0), output phase r reads
# xp[i + t] with kernel tap _TAPS[r][t]: the even phase is a 1-tap conv on x
# itself, the odd phase a 2-tap conv.
_TAPS = {0: {0: 1}, 1: {0: 2, 1: 0}}


def _phase_conv(x, kernel, r, s):
    """Output phase (r, s) [N, H, W, out] of the transposed conv; `kernel`
    is [3, 3, in, out]."""
    rows, cols = _TAPS[r], _TAPS[s]
    taps = tf.stack(
        [
            tf.stack([kernel[rows[t], cols[u]] for u in sorted(cols)])
            for t in sorted(rows)
        ]
    )
    x = tf.pad(x, [[0, 0], [0, int(r == 1)], [0, int(s == 1)], [0, 0]])
    return tf.nn.conv2d(x, taps, strides=1, padding="VALID")


def _subpixel_call(layer, x):
    """`layer(x)` as four phase convs (1x1, 1x2, 2x1, 2x2: the 9 nonzero
    taps, no multiplications by zero) interleaved by DEPTH_TO_SPACE."""
    kernel = tf.transpose(tf.convert_to_tensor(layer.kernel), [0, 1, 3, 2])
    y = tf.concat([_phase_conv(x, kernel, r, s) for r in (0, 1) for s in (0, 1)], -1)
    if layer.use_bias:
        y = y + tf.tile(tf.convert_to_tensor(layer.bias), [4])
    return layer.activation(tf.nn.depth_to_space(y, 2))


def _is_subpixel_compatible(layer):
    return (
        isinstance(layer, ConvTranspose3x3Stride2)
        and layer.output_padding is None
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.data_format == "channels_last"
    )


@contextlib.contextmanager
def subpixel_transposed_convs(model):
    """Within the block, every `ConvTranspose3x3Stride2` of `model` computes
    its output as phase convolutions + DEPTH_TO_SPACE (same weights,
    mathematically identical; float rounding differs by ~1e-7).
    Yields the number of layers rewritten."""
    layers = [
        layer
        for layer in keras_private.sublayers(model, include_self=False)
        if _is_subpixel_compatible(layer)
    ]
    for layer in layers:
        layer.call = functools.partial(_subpixel_call, layer)
    try:
        yield len(layers)
    finally:
        for layer in layers:
            del layer.call


def write_source_savedmodel(deblurrer, path):
    """The SavedModel the converter reads: signature "deblur", float32
    [1, H, W, 3] in [0, 1] -> same, traced with the sub-pixel rewrite."""
    build(deblurrer)

    def deblur(images):
        return {contract.DEBLURRED: contract.deblur_unit(deblurrer, images)}

    spec = tf.TensorSpec([1, None, None, 3], tf.float32, name=contract.IMAGES)
    with subpixel_transposed_convs(deblurrer), sliced_reflection_padding(deblurrer):
        archive = keras.export.ExportArchive()
        archive.track(deblurrer)
        archive.add_endpoint(contract.TFLITE_SIGNATURE, deblur, input_signature=[spec])
        archive.write_out(str(path), verbose=False)
    return path


def representative_dataset(images):
    """A converter representative dataset over float32 [1, H, W, 3] images."""

    def generate():
        for image in images:
            yield {contract.IMAGES: np.asarray(image, np.float32)}

    return generate


def convert(source, quantization, calibration_images=None):
    """Converts the source SavedModel; returns the flatbuffer bytes.

    Only TFLite builtin ops are allowed: the converter raises if any op would
    need Flex (Select TF ops). "int8" needs `calibration_images` (a list of
    float32 [1, H, W, 3] in [0, 1]); input and output stay float32.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(source), signature_keys=[contract.TFLITE_SIGNATURE]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if not calibration_images:
            raise ValueError("int8 quantization needs calibration images")
        converter.representative_dataset = representative_dataset(calibration_images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        with warnings.catch_warnings():  # Calibration runs the deprecated
            warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter.
            model = converter.convert()
    except Exception as error:  # The converter's ConverterError
        if "ERROR_NEEDS_FLEX_OPS" in str(error) or "Select ops" in str(error):
            raise RuntimeError(
                f"TFLite conversion ({quantization}) needs Flex/Select TF ops, "
                f"which Android's builtin-only LiteRT cannot run: {_summary(error)}"
            ) from error
        raise
    check_builtin_only(model)
    return model


def _summary(error):
    """The converter's "TF Select ops: ..." line, else its first line."""
    lines = str(error).splitlines()
    wanted = [line for line in lines if "Select ops" in line]
    return (wanted or lines or ["?"])[0].strip()


def op_counts(model):
    """`Counter` of the op names in a TFLite flatbuffer (bytes or path)."""
    if not isinstance(model, bytes | bytearray):
        model = Path(model).read_bytes()
    fb = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    names = {
        code: name
        for name, code in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    counts = collections.Counter()
    for subgraph in fb.subgraphs:
        for op in subgraph.operators:
            code = fb.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = names.get(builtin, str(builtin))
            if name == "CUSTOM":
                name = f"CUSTOM:{code.customCode.decode()}"
            counts[name] += 1
    return counts


def check_builtin_only(model):
    """Raises if the model has custom/Flex ops or reads resource variables."""
    ops = op_counts(model)
    custom = sorted(name for name in ops if name.startswith("CUSTOM"))
    variables = sorted(VARIABLE_OPS & set(ops))
    if custom or variables:
        raise RuntimeError(
            "TFLite model is not builtin-only: "
            f"custom/Flex ops {custom}, resource-variable ops {variables}"
        )
    return ops


def write_tflite(deblurrer, out_dir, quantization, source=None, calibration=None):
    """Converts and writes one variant to `out_dir/tflite/<file>`; returns the
    path. `source` is a SavedModel from `write_source_savedmodel` (made in a
    temporary folder when None)."""
    path = Path(out_dir) / "tflite" / FILE_NAMES[quantization]
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if source is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            source = write_source_savedmodel(deblurrer, Path(tmp) / "source")
        path.write_bytes(convert(source, quantization, calibration))
    return path
