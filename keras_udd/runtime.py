"""Running exported deblurrers: their tensor names, value mapping, LiteRT runner.

What the library (`keras_udd.deblur`, `keras_udd.evaluate`) and the export tool
(`keras_udd.export`) both need to agree on an artifact, so that the library
can run one without importing the exporter: the signature and tensor names,
the mapping between the clients' [0, 1] (and 8-bit levels) and the networks'
[-1, 1], and the LiteRT interpreter wrapper. The JSON contracts that describe
these to other clients are written by `keras_udd.export.contract`.
"""

import numpy as np

from keras_udd import console

# SavedModel signatures (TF Serving) and their tensor names.
SERVING_DEFAULT = "serving_default"  # uint8 images -> uint8 images.
DEBLUR_FLOAT = "deblur_float"  # float32 [0, 1] -> float32 [0, 1].
DEBLUR_ENCODED = "deblur_encoded"  # JPEG/PNG bytes -> PNG bytes.
IMAGES = "images"
DEBLURRED = "deblurred"
IMAGE_BYTES = "image_bytes"
PNG_BYTES = "png_bytes"

# The one TFLite signature: float32 [1, H, W, 3] in [0, 1] -> the same.
TFLITE_SIGNATURE = "deblur"


def to_model_range(images):
    """[0, 1] -> [-1, 1], the range the Keras networks take (any array type)."""
    return images * 2.0 - 1.0


def to_unit_range(images):
    """[-1, 1] -> [0, 1]."""
    return (images + 1.0) * 0.5


def to_uint8(images) -> np.ndarray:
    """float [0, 1] (any array) -> uint8 0-255, clipped and rounded to the
    nearest level, as a saved 8-bit image (numpy; in TensorFlow graphs:
    `keras_udd.data.degrade.to_uint8`)."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    return np.round(images * 255.0).astype(np.uint8)


def signed_to_uint8(images) -> np.ndarray:
    """An image in [-1, 1] (the networks' range) -> uint8 (`to_uint8`)."""
    return to_uint8(to_unit_range(np.asarray(images, np.float32)))


class TFLiteRunner:
    """One TFLite model under the LiteRT interpreter (XNNPACK by default).

    The input is resized with `resize_tensor_input` + `allocate_tensors`
    whenever the image size changes.
    """

    def __init__(self, path, num_threads=2):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        runner = self.interpreter.get_signature_runner(TFLITE_SIGNATURE)
        self.input = runner.get_input_details()[IMAGES]["index"]
        self.output = runner.get_output_details()[DEBLURRED]["index"]
        self._shape = None

    def __call__(self, image):
        """float32 [1, H, W, 3] in [0, 1] -> the same, as a new array."""
        image = np.asarray(image, np.float32)
        if image.shape != self._shape:
            self.interpreter.resize_tensor_input(self.input, image.shape)
            with console.native_log_hidden():  # LiteRT's INFO line, in commands.
                self.interpreter.allocate_tensors()
            self._shape = image.shape
        self.interpreter.set_tensor(self.input, image)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()
