"""keras_udd: unsupervised domain-specific deblurring (UID-GAN) in Keras 3."""

from keras_udd import console

console.import_tensorflow_quietly()  # Only in keras_udd's commands; first.

from keras_udd.config import Config, DataConfig, ModelConfig, TrainConfig  # noqa: E402
from keras_udd.model import UIDGAN, Deblurrer  # noqa: E402
from keras_udd.pretrained import load_pretrained  # noqa: E402

__all__ = [
    "Config",
    "DataConfig",
    "Deblurrer",
    "ModelConfig",
    "TrainConfig",
    "UIDGAN",
    "load_pretrained",
]
__version__ = "0.1.0"
