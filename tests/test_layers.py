"""The building blocks: exact semantics against numpy, and config round trips."""

import numpy as np
import pytest

from keras_udd import layers


@pytest.mark.parametrize("use_slices", [False, True])
@pytest.mark.parametrize("padding", [1, 3])
def test_reflection_padding_matches_numpy(padding, use_slices):
    x = np.random.default_rng(0).normal(size=(2, 7, 9, 3)).astype("float32")
    layer = layers.ReflectionPadding2D(padding)
    with layers.sliced_reflection_padding(layer) as count:
        assert count == 1
        layer.use_slices = use_slices
        y = layer(x)
    assert not layer.use_slices  # Restored on exit.
    pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    np.testing.assert_array_equal(np.asarray(y), np.pad(x, pads, mode="reflect"))


def test_instance_normalization_matches_numpy():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 5, 6, 4)).astype("float32")
    y = np.asarray(layers.InstanceNormalization()(x))
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)


def test_layer_normalization_hwc_matches_numpy_and_has_channel_affine():
    x = np.random.default_rng(2).normal(size=(2, 5, 6, 4)).astype("float32")
    norm = layers.LayerNormalizationHWC()
    y = np.asarray(norm(x))
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    assert [tuple(w.shape) for w in norm.weights] == [(4,), (4,)]


def test_concat_blur_code_tiles_z():
    x = np.zeros((2, 3, 5, 4), "float32")
    z = np.arange(16, dtype="float32").reshape(2, 8)
    y = np.asarray(layers.ConcatBlurCode()((x, z)))
    assert y.shape == (2, 3, 5, 12)
    np.testing.assert_array_equal(y[:, 1, 4, 4:], z)
    np.testing.assert_array_equal(y[..., :4], x)


def test_residual_block_keeps_shape():
    x = np.random.default_rng(3).normal(size=(1, 8, 8, 6)).astype("float32")
    assert layers.ResidualBlock(6)(x).shape == x.shape


@pytest.mark.parametrize(
    "layer",
    [
        layers.ReflectionPadding2D(2),
        layers.InstanceNormalization(epsilon=1e-3),
        layers.LayerNormalizationHWC(),
        layers.ConcatBlurCode(),
        layers.ResidualBlock(6),
        layers.ConvBlock(8, 3, 2, 1, instance_norm=True, activation="leaky_relu"),
    ],
)
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
