"""keras_udd: unsupervised domain-specific deblurring (UID-GAN) in Keras 3."""

from keras_udd.config import Config, DataConfig, ModelConfig, TrainConfig
from keras_udd.model import UIDGAN, Deblurrer
from keras_udd.pretrained import load_pretrained

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
