"""The tf.data pipelines: an unpaired training stream and a paired test set.

Training (`make_train_dataset`): two independent streams, S from the sharp pool
and B from the disjoint blurred pool, each shuffled (seeded, reshuffled every
epoch), repeated, decoded in parallel, then preprocessed as the reference
does: shorter side resized to `load_size` (bicubic, at decode time), random
`crop_size` crop, random horizontal flip, scaled to [-1, 1]. For domains with
synthetic blur, B is blurred with a kernel drawn from a seeded kernel bank
(`blur_kernel_bank` kernels of `blur_kernel_size`; 80% camera-shake motion,
the rest Gaussian and defocus by default), then gets Gaussian noise with std
~ U(0, `noise_std`), is rounded to 8 bits and, with probability `jpeg_prob`,
JPEG re-compressed at quality ~ U[`jpeg_quality_min`, 95].

Test (`make_test_dataset`): finite and deterministic. Synthetic pairs blur the
held-out sharp image `i` (resize, centre crop, no flip) with kernel
`i % n` of a separate test kernel bank (seed `(seed, 1)`, `n = max(test_images,
1)`), with noise and JPEG as above but seeded by `i`; real pairs (`folder`
with `test_dir`) are resized and centre-cropped alike.

Batches have a static batch dimension (`drop_remainder=True`), so both
datasets work with `strategy.experimental_distribute_dataset`.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_udd import blur
from keras_udd.config import DataConfig
from keras_udd.data import degrade
from keras_udd.data.domains import DomainData, PairPool, build_domain

logger = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
SHARP_STREAM, BLUR_STREAM, TEST_STREAM = 0, 1, 2


def validate(cfg: DataConfig) -> None:
    """Raises ValueError, naming the flag, for settings the pipeline rejects."""
    checks = [
        (cfg.crop_size >= 1, "--crop-size must be >= 1"),
        (
            cfg.load_size >= cfg.crop_size,
            f"--load-size ({cfg.load_size}) must be >= --crop-size ({cfg.crop_size})",
        ),
        (cfg.batch_size >= 1, "--batch-size must be >= 1"),
        (cfg.test_images >= 0, "--test-images must be >= 0"),
        (
            1 <= cfg.blur_kernel_size < 2 * cfg.load_size,
            f"--blur-kernel-size ({cfg.blur_kernel_size}) must be >= 1 and below "
            f"2 x --load-size ({2 * cfg.load_size})",
        ),
        (cfg.blur_kernel_bank >= 1, "--blur-kernel-bank must be >= 1"),
        (0 <= cfg.motion_blur_prob <= 1, "--motion-blur-prob must be in [0, 1]"),
        (cfg.noise_std >= 0, "--noise-std must be >= 0"),
        (0 <= cfg.jpeg_prob <= 1, "--jpeg-prob must be in [0, 1]"),
        (1 <= cfg.jpeg_quality_min <= 95, "--jpeg-quality-min must be in [1, 95]"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


@lru_cache(maxsize=8)
def _synth_bank(n: int, size: int, seed: tuple[int, ...], motion: float):
    rest = (1.0 - motion) / 2
    bank = blur.make_kernel_bank(n, size, seed, weights=(motion, rest, rest))
    bank.flags.writeable = False
    return bank


def kernel_bank(cfg: DataConfig, test: bool = False) -> np.ndarray:
    """The training (or test) kernel bank, float32 `[n, k, k]`.

    With `blur_kernel_file` set, the training bank is read from that `.npy`
    file if it exists (any square kernels, e.g. measured PSFs; its `k` wins
    over `blur_kernel_size`) and written there otherwise. The test bank is
    always synthesised (seed `(seed, 1)`, disjoint from the training bank) with
    the training bank's kernel size.
    """
    path = cfg.blur_kernel_file
    loaded = blur.load_kernel_bank(path) if path and Path(path).exists() else None
    size = cfg.blur_kernel_size if loaded is None else loaded.shape[1]
    if size // 2 >= cfg.load_size:
        raise ValueError(
            f"--blur-kernel-file {path}: kernels of {size} px need --load-size "
            f"above {size // 2}"
        )
    if test:
        return _synth_bank(
            max(cfg.test_images, 1), size, (cfg.seed, 1), cfg.motion_blur_prob
        )
    if loaded is not None:
        return loaded
    bank = _synth_bank(cfg.blur_kernel_bank, size, (cfg.seed,), cfg.motion_blur_prob)
    if path:
        blur.save_kernel_bank(path, bank)
        logger.info("wrote the kernel bank to %s", path)
    return bank


def _degrade(cfg: DataConfig, image, oy, ox, kernel, seed):
    """Blur + noise + 8-bit rounding + optional JPEG of one crop -> uint8."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    x = degrade.blur_crop(image, oy, ox, cfg.crop_size, kernel)
    x = degrade.to_uint8(degrade.add_noise(x, cfg.noise_std, seeds[0]))
    return degrade.maybe_jpeg(x, cfg.jpeg_prob, cfg.jpeg_quality_min, seeds[1])


def _train_stream(cfg: DataConfig, pool, stream: int, bank: np.ndarray | None):
    """`{"image": float32 [crop, crop, 3] in [-1, 1], "id": string}` forever."""
    bank_t = None if bank is None else tf.constant(bank)
    n_bank = 0 if bank is None else bank.shape[0]
    base = (cfg.seed, stream)

    def augment(counter, element):
        source_id, image = element
        seeds = tf.random.experimental.stateless_split(
            degrade.element_seed(base, counter), 4
        )
        oy, ox = degrade.crop_offsets(image, cfg.crop_size, seeds[0])
        if bank_t is None:
            out = degrade.crop(image, oy, ox, cfg.crop_size)
        else:
            index = tf.random.stateless_uniform([], seeds[1], 0, n_bank, tf.int32)
            out = _degrade(cfg, image, oy, ox, tf.gather(bank_t, index), seeds[2])
        if cfg.random_flip:
            out = degrade.maybe_flip(out, seeds[3])
        return {"image": degrade.to_signed(out), "id": source_id}

    ds = pool.dataset(shuffle_seed=cfg.seed * 1000 + stream, repeat=True)
    return ds.enumerate().map(augment, num_parallel_calls=AUTOTUNE)


def _options(deterministic: bool) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = deterministic
    # Sources are ids, not files: shard by element under multi-worker.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def make_train_examples(
    cfg: DataConfig, domain: DomainData | None = None
) -> tf.data.Dataset:
    """The training stream with source ids, for inspection and tests.

    Yields dicts of batches: `sharp`, `blurred` float32 `[batch_size, crop_size,
    crop_size, 3]` in [-1, 1]; `sharp_id`, `blurred_id` tf.string `[batch_size]`
    naming the source image of each (file path, `text/<i>` or TFDS id).
    """
    validate(cfg)
    domain = build_domain(cfg) if domain is None else domain
    bank = kernel_bank(cfg) if domain.synthetic_blur else None
    sharp = _train_stream(cfg, domain.sharp, SHARP_STREAM, None)
    blurred = _train_stream(cfg, domain.blurred, BLUR_STREAM, bank)
    ds = tf.data.Dataset.zip(sharp, blurred).map(
        lambda s, b: {
            "sharp": s["image"],
            "blurred": b["image"],
            "sharp_id": s["id"],
            "blurred_id": b["id"],
        }
    )
    ds = ds.batch(cfg.batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    return ds.with_options(_options(cfg.deterministic))


def make_train_dataset(cfg: DataConfig) -> tf.data.Dataset:
    """Infinite unpaired training batches `(sharp, blurred)`.

    Both float32 `[cfg.batch_size, cfg.crop_size, cfg.crop_size, 3]` in
    [-1, 1]; sharp and blurred images come from disjoint source images.

    Raises:
        ValueError: unknown domain, bad settings, empty folders (flag named).
        FileNotFoundError: missing folders or data (flag and path named).
    """
    return make_train_examples(cfg).map(
        lambda e: (e["sharp"], e["blurred"]), num_parallel_calls=AUTOTUNE
    )


def _test_pairs(cfg: DataConfig, test) -> tf.data.Dataset:
    """Unbatched `{"blurred", "sharp": uint8 crops, "id", "kernel_index"}`."""
    c = cfg.crop_size
    if isinstance(test, PairPool):

        def real(name, b, s):
            oy, ox = degrade.crop_offsets(s, c)
            return {
                "blurred": degrade.crop(b, oy, ox, c),
                "sharp": degrade.crop(s, oy, ox, c),
                "id": name,
                "kernel_index": tf.constant(-1, tf.int32),
            }

        return test.dataset().map(real, num_parallel_calls=AUTOTUNE)

    bank = kernel_bank(cfg, test=True)
    bank_t, n_bank = tf.constant(bank), bank.shape[0]
    base = (cfg.seed, TEST_STREAM)

    def synth(counter, element):
        source_id, image = element
        oy, ox = degrade.crop_offsets(image, c)
        index = tf.cast(counter % n_bank, tf.int32)
        seed = degrade.element_seed(base, counter)
        return {
            "blurred": _degrade(cfg, image, oy, ox, tf.gather(bank_t, index), seed),
            "sharp": degrade.crop(image, oy, ox, c),
            "id": source_id,
            "kernel_index": index,
        }

    ds = test.dataset(shuffle_seed=None, repeat=False).enumerate()
    return ds.map(synth, num_parallel_calls=AUTOTUNE)


def make_test_examples(
    cfg: DataConfig, batch_size: int | None = None, domain: DomainData | None = None
) -> tf.data.Dataset:
    """The paired test set with ids, for inspection and tests.

    Yields dicts of batches: `blurred`, `sharp` float32 `[B, crop, crop, 3]` in
    [-1, 1]; `id` tf.string `[B]`; `kernel_index` int32 `[B]` (row of
    `kernel_bank(cfg, test=True)`, -1 for real pairs).
    """
    validate(cfg)
    batch_size = cfg.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    domain = build_domain(cfg) if domain is None else domain
    if domain.test is None:
        raise ValueError(
            f"--domain {cfg.domain}: no test set (--test-images is 0 and no --test-dir)"
        )
    size = domain.test.size
    if size < batch_size:
        raise ValueError(
            f"the test set of {domain.test.name} has {size} images, fewer than "
            f"one batch ({batch_size})"
        )
    if size % batch_size:
        logger.warning(
            "test set of %d images: the last %d do not fill a batch of %d and "
            "are left out",
            size,
            size % batch_size,
            batch_size,
        )
    ds = _test_pairs(cfg, domain.test).map(
        lambda e: {
            **e,
            "blurred": degrade.to_signed(e["blurred"]),
            "sharp": degrade.to_signed(e["sharp"]),
        }
    )
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    return ds.with_options(_options(True))


def make_test_dataset(
    cfg: DataConfig, batch_size: int | None = None
) -> tf.data.Dataset:
    """Finite, deterministic paired batches `(blurred, sharp)`.

    Both float32 `[B, crop_size, crop_size, 3]` in [-1, 1], `B = batch_size`
    (default `cfg.batch_size`); `blurred[i]` is `sharp[i]` blurred. Held-out
    images, disjoint from both training halves: `cfg.test_images` of them, or
    all pairs of `--test-dir`; a last partial batch is dropped (warned).
    """
    return make_test_examples(cfg, batch_size).map(lambda e: (e["blurred"], e["sharp"]))


def with_counted_cardinality(ds: tf.data.Dataset) -> tf.data.Dataset:
    """A finite `ds` that declares its length, counted by one pass over it.

    Keras then knows the validation length from the first epoch (instead of
    warning that the input "ran out of data"). Images that fail to decode
    fail every time, so the count holds for every later pass.
    """
    count = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
    return ds.apply(tf.data.experimental.assert_cardinality(count))
