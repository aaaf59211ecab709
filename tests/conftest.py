"""Shared test fixtures: tiny model configs and random unpaired batches."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_udd.config import ModelConfig  # noqa: E402

TINY = dict(
    content_filters=4,
    content_res_blocks=1,
    blur_filters=4,
    blur_dim=8,
    generator_res_blocks=1,
    disc_filters=4,
    disc_scales=2,
    vgg_weights=None,
    vgg_layer="block2_conv1",
)


@pytest.fixture
def tiny_config():
    """A 4-filter model for 32x32 images that builds in about a second."""
    return ModelConfig(**TINY)


@pytest.fixture
def batch():
    """One unpaired (sharp, blurred) batch: float32 [2, 32, 32, 3] in [-1, 1]."""
    rng = np.random.default_rng(0)
    sharp = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    blurred = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    return sharp, blurred
