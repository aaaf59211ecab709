"""PSNR and SSIM, with their conventions spelled out.

Both take images in [0, 1] (float, RGB, [N, H, W, 3]), use no border crop and
no colour conversion, and return one value per image. PSNR is
10 log10(1 / MSE) over all pixels and channels, with the MSE floored at
1e-10: identical images score `MAX_PSNR` (100 dB) rather than `inf`, so that
means over a set stay finite when one image comes through unchanged (a nearly
sharp page whose blur and noise round away; one 8-bit step in one pixel of a
64x64 page is 89 dB).
SSIM is Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5),
K1 = 0.01, K2 = 0.03, averaged over the three channels; it needs H, W >= 11.
"""

import tensorflow as tf


def to_unit_range(x):
    """Maps an image in [-1, 1] to [0, 1], clipped."""
    return tf.clip_by_value((tf.cast(x, tf.float32) + 1.0) / 2.0, 0.0, 1.0)


MAX_PSNR = 100.0  # dB, identical images.


def psnr(x, y):
    """Peak signal-to-noise ratio in dB per image, for x, y in [0, 1]."""
    diff = tf.cast(x, tf.float32) - tf.cast(y, tf.float32)
    mse = tf.reduce_mean(tf.square(diff), axis=[-3, -2, -1])
    mse = tf.maximum(mse, 10.0 ** (-MAX_PSNR / 10.0))
    return -10.0 * tf.math.log(mse) / tf.math.log(10.0)


def ssim(x, y):
    """Structural similarity per image, for x, y in [0, 1]."""
    return tf.image.ssim(tf.cast(x, tf.float32), tf.cast(y, tf.float32), max_val=1.0)
