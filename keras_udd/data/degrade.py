"""tf.data graph ops: crops, synthetic blur (FFT), noise, JPEG, flips, scaling.

All randomness is stateless: every element gets its own seed (shape `[2]`,
int64) folded from the run seed and the element's position in the stream, so
results do not depend on the order in which parallel map calls finish.
Blurring matches `keras_udd.blur.blur_image` (true convolution, reflected
borders): the crop is blurred from a window that includes `k - 1` pixels of
real context around it (reflection only beyond the image border).
"""

from __future__ import annotations

import tensorflow as tf


def element_seed(base: tuple[int, int], counter: tf.Tensor) -> tf.Tensor:
    """Seed `[2]` of stream element `counter` (int64 scalar)."""
    return tf.random.experimental.stateless_fold_in(
        tf.constant(base, tf.int64), tf.cast(counter, tf.int64)
    )


def crop_offsets(image: tf.Tensor, crop: int, seed: tf.Tensor | None = None):
    """Top-left `(row, col)` of a crop: uniform if `seed` is given, else centre.

    `image` is `[H, W, C]` with `H, W >= crop`.
    """
    shape = tf.shape(image)
    room_h, room_w = shape[0] - crop, shape[1] - crop
    if seed is None:
        return room_h // 2, room_w // 2
    seeds = tf.random.experimental.stateless_split(seed, 2)
    oy = tf.random.stateless_uniform([], seeds[0], 0, room_h + 1, tf.int32)
    ox = tf.random.stateless_uniform([], seeds[1], 0, room_w + 1, tf.int32)
    return oy, ox


def crop(image: tf.Tensor, oy, ox, size: int) -> tf.Tensor:
    """`image[oy:oy+size, ox:ox+size]` with a static `[size, size, C]` shape."""
    out = image[oy : oy + size, ox : ox + size]
    return tf.ensure_shape(out, [size, size, image.shape[-1]])


def blur_crop(image: tf.Tensor, oy, ox, size: int, kernel: tf.Tensor) -> tf.Tensor:
    """The crop at `(oy, ox)` of `image` convolved with `kernel`.

    Args:
        image: uint8 `[H, W, 3]`, `H, W >= size` and `>= k // 2 + 1`.
        kernel: float32 `[k, k]` summing to 1 (k static).

    Returns:
        float32 `[size, size, 3]` in [0, 1] (before rounding).
    """
    k = int(kernel.shape[0])
    lo, hi = k // 2, k - 1 - k // 2
    x = tf.cast(image, tf.float32) / 255.0
    x = tf.pad(x, [[lo, hi], [lo, hi], [0, 0]], mode="REFLECT")
    n = size + k - 1
    window = tf.ensure_shape(x[oy : oy + n, ox : ox + n], [n, n, 3])
    spec = tf.signal.rfft2d(tf.transpose(window, [2, 0, 1]))
    spec *= tf.signal.rfft2d(kernel, fft_length=[n, n])[None]
    full = tf.signal.irfft2d(spec, fft_length=[n, n])  # Circular; valid part kept.
    out = tf.transpose(full[:, k - 1 :, k - 1 :], [1, 2, 0])
    return tf.ensure_shape(out, [size, size, 3])


def add_noise(x: tf.Tensor, max_std: float, seed: tf.Tensor) -> tf.Tensor:
    """Gaussian noise with std ~ U(0, max_std), for x in [0, 1]; clipped."""
    if max_std <= 0:
        return tf.clip_by_value(x, 0.0, 1.0)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    std = tf.random.stateless_uniform([], seeds[0], 0.0, max_std)
    noise = tf.random.stateless_normal(tf.shape(x), seeds[1]) * std
    return tf.clip_by_value(x + noise, 0.0, 1.0)


def to_uint8(x: tf.Tensor) -> tf.Tensor:
    """[0, 1] float -> uint8 (rounded), as a saved blurred image would be."""
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)


def maybe_jpeg(
    image: tf.Tensor, prob: float, quality_min: int, seed: tf.Tensor
) -> tf.Tensor:
    """With probability `prob`, JPEG re-compress at quality ~ U[quality_min, 95].

    `image` is uint8 `[H, W, 3]` (static shape kept).
    """
    if prob <= 0:
        return image
    seeds = tf.random.experimental.stateless_split(seed, 2)
    quality = tf.random.stateless_uniform([], seeds[0], quality_min, 96, tf.int32)
    do = tf.random.stateless_uniform([], seeds[1]) < prob
    out = tf.cond(
        do, lambda: tf.image.adjust_jpeg_quality(image, quality), lambda: image
    )
    return tf.ensure_shape(out, image.shape)


def maybe_flip(image: tf.Tensor, seed: tf.Tensor | None) -> tf.Tensor:
    """Random horizontal flip (p = 0.5); identity when `seed` is None."""
    if seed is None:
        return image
    return tf.image.stateless_random_flip_left_right(image, seed)


def to_signed(image: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0
