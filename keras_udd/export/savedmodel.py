"""Writes the deblurring path as a TF Serving SavedModel with three signatures.

`DIR/savedmodel/1/` (TF Serving's versioned layout) holds

- `serving_default`: `images` uint8 [N, H, W, 3] -> `deblurred` uint8, same shape;
- `deblur_float`: `images` float32 [N, H, W, 3] in [0, 1] -> `deblurred`, same;
- `deblur_encoded`: `image_bytes` string [N] (encoded JPEG/PNG) -> `png_bytes`
  string [N], so that a REST client can post a file.

H and W are free (>= 16). The archive is written by `keras.export.ExportArchive`,
whose variables `tf.lite.TFLiteConverter.from_saved_model` freezes correctly.
"""

import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_udd.data.degrade import to_uint8
from keras_udd.export import contract
from keras_udd.model import MIN_IMAGE_SIZE


def build(deblurrer):
    """Builds `deblurrer` (a `keras_udd.Deblurrer`) if it has not run yet."""
    if not deblurrer.built:
        deblurrer(np.zeros((1, MIN_IMAGE_SIZE, MIN_IMAGE_SIZE, 3), "float32"))
    return deblurrer


def _check_size(images):
    hw = tf.shape(images)[1:3]
    tf.debugging.assert_greater_equal(
        hw,
        MIN_IMAGE_SIZE,
        message=f"deblur: images must be at least {MIN_IMAGE_SIZE}x"
        f"{MIN_IMAGE_SIZE} pixels",
    )


def signature_functions(deblurrer):
    """The three signature functions `{name: (fn, input_signature)}`."""

    def deblur_float(images):
        _check_size(images)
        return {contract.DEBLURRED: contract.deblur_unit(deblurrer, images)}

    def deblur_uint8(images):
        _check_size(images)
        unit = tf.cast(images, tf.float32) / 255.0
        return {contract.DEBLURRED: to_uint8(contract.deblur_unit(deblurrer, unit))}

    def deblur_encoded(image_bytes):
        def one(data):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            image.set_shape([None, None, 3])
            deblurred = deblur_uint8(image[None])[contract.DEBLURRED]
            return tf.io.encode_png(deblurred[0])

        png = tf.map_fn(one, image_bytes, fn_output_signature=tf.string)
        return {contract.PNG_BYTES: png}

    images = [None, None, None, 3]
    return {
        contract.SERVING_DEFAULT: (
            deblur_uint8,
            [tf.TensorSpec(images, tf.uint8, name=contract.IMAGES)],
        ),
        contract.DEBLUR_FLOAT: (
            deblur_float,
            [tf.TensorSpec(images, tf.float32, name=contract.IMAGES)],
        ),
        contract.DEBLUR_ENCODED: (
            deblur_encoded,
            [tf.TensorSpec([None], tf.string, name=contract.IMAGE_BYTES)],
        ),
    }


def write_savedmodel(deblurrer, out_dir, version=1):
    """Writes `out_dir/savedmodel/<version>/`; returns that path.

    An existing folder of the same version is replaced.
    """
    build(deblurrer)
    path = Path(out_dir) / "savedmodel" / str(version)
    if path.exists():
        shutil.rmtree(path)
    archive = keras.export.ExportArchive()
    archive.track(deblurrer)
    for name, (fn, spec) in signature_functions(deblurrer).items():
        archive.add_endpoint(name, fn, input_signature=spec)
    archive.write_out(str(path), verbose=False)
    return path


def directory_size(path):
    """Bytes of all files under `path`."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
