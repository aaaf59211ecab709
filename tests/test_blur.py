"""Tests for keras_udd.blur: kernels, blurring, noise, JPEG, kernel bank files."""

import numpy as np
import pytest
import tensorflow as tf

from keras_udd import blur
from keras_udd.data import degrade


def laplacian_energy(image):
    """Mean squared 4-neighbour Laplacian of a [H, W, C] image (interior)."""
    x = np.asarray(image, np.float64)
    lap = x[1:-1, :-2] + x[1:-1, 2:] + x[:-2, 1:-1] + x[2:, 1:-1] - 4 * x[1:-1, 1:-1]
    return float(np.mean(lap**2))


def test_kernels_sum_to_one_and_differ():
    bank = blur.make_kernel_bank(48, size=21, seed=0)
    assert bank.shape == (48, 21, 21) and bank.dtype == np.float32
    np.testing.assert_allclose(bank.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert bank.min() >= 0
    flat = bank.reshape(48, -1)
    assert len({row.tobytes() for row in flat}) == 48  # All different.
    assert np.all(flat.max(axis=1) < 1.0)  # None is a delta (all blur).


@pytest.mark.parametrize("kind", blur.KINDS)
def test_each_kind_is_a_centred_normalised_blur(kind):
    rng = np.random.default_rng(3)
    for _ in range(5):
        k = blur.random_kernel(rng, 31, kind)
        assert k.shape == (31, 31)
        assert abs(k.sum() - 1.0) < 1e-5 and k.min() >= 0
        rows, cols = np.indices(k.shape)
        com = (np.sum(rows * k), np.sum(cols * k))
        np.testing.assert_allclose(com, (15, 15), atol=0.6)


def test_kernel_bank_is_reproducible_from_the_seed():
    a = blur.make_kernel_bank(20, size=15, seed=7)
    b = blur.make_kernel_bank(20, size=15, seed=7)
    c = blur.make_kernel_bank(20, size=15, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Kernel i depends only on (seed, i): a smaller bank is a prefix.
    np.testing.assert_array_equal(blur.make_kernel_bank(5, size=15, seed=7), a[:5])


def test_kernel_bank_kinds_and_weights():
    motion = blur.make_kernel_bank(8, 21, 0, kinds=("motion",), weights=None)
    disks = blur.make_kernel_bank(8, 21, 0, kinds=("defocus",), weights=None)
    # A disk is symmetric under transposition, camera shake is generally not.
    assert all(np.allclose(k, k.T, atol=1e-6) for k in disks)
    assert not all(np.allclose(k, k.T, atol=1e-6) for k in motion)
    with pytest.raises(ValueError, match="unknown blur kind"):
        blur.make_kernel_bank(2, 9, 0, kinds=("swirl",), weights=None)
    with pytest.raises(ValueError, match="weights"):
        blur.make_kernel_bank(2, 9, 0, kinds=("motion",), weights=(0.5, 0.5))


def test_motion_kernels_follow_deblurgan_geometry():
    """On DeblurGAN's 64-px canvas, trajectories span a few to ~40 pixels."""
    rngs = [np.random.default_rng([0, i]) for i in range(16)]
    kernels = blur.motion_kernels(rngs, size=64)
    extents = []
    for k in kernels:
        rows, cols = np.nonzero(k > 1e-4)
        extents.append(max(np.ptp(rows), np.ptp(cols)) + 1)
    assert min(extents) >= 2 and max(extents) <= 64
    assert np.median(extents) >= 5


def test_blur_lowers_high_frequency_energy():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (48, 48, 3)).astype(np.float32)
    image[::8] = 1.0  # Some edges as well as noise.
    sharp_energy = laplacian_energy(image)
    for kernel in blur.make_kernel_bank(12, size=15, seed=1):
        blurred = blur.blur_image(image, kernel)
        assert blurred.shape == image.shape and blurred.dtype == np.float32
        assert laplacian_energy(blurred) < 0.5 * sharp_energy


def test_blur_image_is_a_true_convolution():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (12, 10)).astype(np.float32)
    delta = np.zeros((5, 5), np.float32)
    delta[2, 2] = 1
    np.testing.assert_allclose(blur.blur_image(image, delta), image, atol=1e-5)
    kernel = rng.uniform(0, 1, (5, 5))
    kernel /= kernel.sum()
    padded = np.pad(image, 2, mode="reflect")
    direct = np.zeros_like(image, dtype=np.float64)
    for i in range(5):
        for j in range(5):  # y[n] = sum_m k[m] x[n - m]  (flipped kernel).
            direct += kernel[i, j] * padded[4 - i : 4 - i + 12, 4 - j : 4 - j + 10]
    np.testing.assert_allclose(blur.blur_image(image, kernel), direct, atol=1e-5)


def test_tf_blur_matches_numpy():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
    kernel = blur.make_kernel_bank(1, size=9, seed=4)[0]
    expected = blur.blur_image(image.astype(np.float32) / 255, kernel)
    for oy, ox in ((0, 0), (5, 11), (8, 12)):
        got = degrade.blur_crop(tf.constant(image), oy, ox, 32, tf.constant(kernel))
        np.testing.assert_allclose(
            got.numpy(), expected[oy : oy + 32, ox : ox + 32], atol=1e-5
        )


def test_degrade_adds_noise_and_jpeg_reproducibly():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    kernel = blur.gaussian_kernel(7, 1.5)
    clean = blur.degrade(image, kernel, np.random.default_rng(0))
    noisy = blur.degrade(image, kernel, np.random.default_rng(0), noise_std=0.05)
    again = blur.degrade(image, kernel, np.random.default_rng(0), noise_std=0.05)
    jpeg = blur.degrade(image, kernel, np.random.default_rng(0), jpeg_quality=30)
    for out in (clean, noisy, jpeg):
        assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(noisy, again)
    assert 5 < np.abs(noisy.astype(int) - clean).mean() < 15  # ~0.8 std
    assert 0 < np.abs(jpeg.astype(int) - clean).mean() < 20


def test_kernel_bank_file_round_trip(tmp_path):
    bank = blur.make_kernel_bank(6, 11, 0)
    path = tmp_path / "sub" / "bank.npy"
    blur.save_kernel_bank(path, bank)
    np.testing.assert_allclose(blur.load_kernel_bank(path), bank, atol=1e-6)
    np.save(tmp_path / "bad.npy", np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"\[n, k, k\]"):
        blur.load_kernel_bank(tmp_path / "bad.npy")
    with pytest.raises(FileNotFoundError):
        blur.load_kernel_bank(tmp_path / "missing.npy")
