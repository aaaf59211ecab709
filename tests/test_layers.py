"""The building blocks: exact semantics against numpy, and config round trips."""

import functools

import keras
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


def torch_conv_transpose_3x3_s2(x, kernel, bias):
    """numpy PyTorch `ConvTranspose2d(3, 2, padding=1, output_padding=1)`:
    the full transposed conv full[2i + t] += x[i] w[t], rows/cols 1..2H kept.
    x [N, H, W, C], kernel [3, 3, out, in] (Keras' Conv2DTranspose layout)."""
    n, h, w, _ = x.shape
    full = np.zeros((n, 2 * h + 1, 2 * w + 1, kernel.shape[2]), "float64")
    for i in range(h):
        for j in range(w):
            for t in range(3):
                for u in range(3):
                    full[:, 2 * i + t, 2 * j + u] += x[:, i, j] @ kernel[t, u].T
    return full[:, 1 : 2 * h + 1, 1 : 2 * w + 1] + bias


def torch_avg_pool_3x3_s2_exclude_pad(x):
    """numpy PyTorch `AvgPool2d(3, 2, padding=1, count_include_pad=False)`."""
    n, h, w, c = x.shape
    oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            rows = slice(max(2 * i - 1, 0), min(2 * i + 2, h))
            cols = slice(max(2 * j - 1, 0), min(2 * j + 2, w))
            out[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    return out


def test_conv_transpose_matches_pytorch_convention():
    rng = np.random.default_rng(4)
    layer = layers.ConvTranspose3x3Stride2(5)
    x = rng.normal(size=(2, 4, 7, 3)).astype("float32")
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=5).astype("float32"))
    y = np.asarray(layer(x))
    kernel, bias = (np.asarray(v) for v in (layer.kernel, layer.bias))
    assert y.shape == (2, 8, 14, 5)
    expected = torch_conv_transpose_3x3_s2(x, kernel, bias)
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_conv_transpose_impulse_lands_where_pytorch_puts_it():
    # One non-zero input pixel at (i, j) reaches outputs 2i-1..2i+1 (and
    # 2j-1..2j+1): rows 2i + t - 1 for the taps t = 0, 1, 2.
    layer = layers.ConvTranspose3x3Stride2(1, use_bias=False)
    x = np.zeros((1, 5, 5, 1), "float32")
    x[0, 2, 3, 0] = 1.0
    layer.build(x.shape)
    layer.kernel.assign(np.arange(1, 10, dtype="float32").reshape(3, 3, 1, 1))
    y = np.asarray(layer(x))[0, :, :, 0]
    expected = np.zeros((10, 10))
    expected[3:6, 5:8] = np.arange(1, 10).reshape(3, 3)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("size", [(8, 8), (7, 10), (5, 3)])
def test_average_pool_matches_pytorch_count_include_pad_false(size):
    x = np.random.default_rng(5).normal(size=(2, *size, 3)).astype("float32")
    y = np.asarray(layers.AveragePoolExcludePad()(x))
    np.testing.assert_allclose(y, torch_avg_pool_3x3_s2_exclude_pad(x), atol=1e-6)


@pytest.mark.parametrize(
    "layer",
    [
        layers.ReflectionPadding2D(2),
        layers.InstanceNormalization(epsilon=1e-3),
        layers.LayerNormalizationHWC(),
        layers.ConcatBlurCode(),
        layers.ResidualBlock(6),
        layers.ConvBlock(8, 3, 2, 1, instance_norm=True, activation="leaky_relu"),
        layers.ConvTranspose3x3Stride2(6),
        layers.AveragePoolExcludePad(),
    ],
)
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_run_blocks_gives_the_values_of_calling_each_block():
    """Deferring each ConvBlock's activation past the next padding (or to a
    [N, H * W, C] view) keeps the values exactly."""
    x = np.random.default_rng(6).normal(size=(2, 12, 10, 3)).astype("float32")
    blocks = [
        layers.ConvBlock(4, 3, padding=1, activation="leaky_relu"),
        layers.ConvBlock(5, 4, 2, 1, activation="leaky_relu", negative_slope=0.2),
        layers.ConvBlock(6, 3, 1, 1, instance_norm=True, activation="relu"),
        layers.ConvBlock(6, 3, padding=1, activation="leaky_relu"),
        layers.ResidualBlock(6),
        layers.ConvBlock(3, 1, activation="leaky_relu"),
    ]
    lrelu = functools.partial(keras.ops.leaky_relu, negative_slope=0.2)
    expected = lrelu(x)
    for block in blocks:
        expected = block(expected)
    got = layers.run_blocks(blocks, x, input_activation=lrelu)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
