"""The tf.data pipelines: an unpaired training stream and paired val/test sets.

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

Validation and test (`make_test_dataset(cfg, split="val" | "test")`): finite
and deterministic pairs of WHOLE images (shorter side `load_size`, no crop, no
flip; text pages are `load_size` high and 1-1.5x as wide), one pair per batch
since sizes differ. Synthetic pairs blur held-out sharp image `i` of the split
(whole, reflected borders) with kernel `i % n` of the split's own kernel bank
(test: seed `(seed, 1)`, `n = max(test_images, 1)`; validation: seed
`(seed, 2)`, `n = max(val_images, 1)`; other draws than the training bank),
with noise and JPEG as above but seeded by `(split, i)` (a pair that comes
out with no degradation at all is left out); real pairs (`folder` with
`test_dir`) are resized alike. `whole=False` gives centre crops of
`crop_size` instead, batched (the sample grids of train.py use these).

Batches have a static batch dimension (`drop_remainder=True`), so all these
datasets work with `strategy.experimental_distribute_dataset`; whole-image
batches are `[1, None, None, 3]`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_udd import blur
from keras_udd.config import DataConfig
from keras_udd.data import degrade
from keras_udd.data.domains import SPLITS, DomainData, PairPool, build_domain

logger = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
SHARP_STREAM, BLUR_STREAM, TEST_STREAM, VAL_STREAM, PAIRED_STREAM = 0, 1, 2, 3, 4
UNSEEN_STREAM = 5
PHOTO_KERNEL_MIN = 23  # Kernel side that holds the 21-px photo blur families.
# Held-out split -> (kernel bank seed, noise/JPEG stream, config field of its size).
SPLIT_SEEDS = {
    "test": (1, TEST_STREAM, "test_images"),
    "val": (2, VAL_STREAM, "val_images"),
    "unseen": (3, UNSEEN_STREAM, "unseen_images"),
}
SPLIT_NAMES = {"test": "test", "val": "validation", "unseen": "unseen-fonts"}


def validate(cfg: DataConfig) -> None:
    """Raises ValueError, naming the flag, for settings the pipeline rejects."""
    chosen = photo_families(cfg)
    checks = [
        (cfg.crop_size >= 1, "--crop-size must be >= 1"),
        (
            cfg.load_size >= cfg.crop_size,
            f"--load-size ({cfg.load_size}) must be >= --crop-size ({cfg.crop_size})",
        ),
        (cfg.batch_size >= 1, "--batch-size must be >= 1"),
        (cfg.crops_per_image >= 1, "--crops-per-image must be >= 1"),
        (cfg.test_images >= 0, "--test-images must be >= 0"),
        (cfg.val_images >= 0, "--val-images must be >= 0"),
        (cfg.unseen_images >= 0, "--unseen-images must be >= 0"),
        (
            cfg.blur_families in ("auto", "photo", "shake"),
            f"--blur-families must be auto, photo or shake, got {cfg.blur_families!r}",
        ),
        (
            blur_families(cfg) != "photo" or cfg.blur_kernel_size >= PHOTO_KERNEL_MIN,
            f"--blur-families photo needs --blur-kernel-size >= {PHOTO_KERNEL_MIN} "
            f"(its largest kernels span 21 px), got {cfg.blur_kernel_size}",
        ),
        (
            chosen is None or (chosen and set(chosen) <= set(blur.PHOTO_FAMILIES)),
            f"--photo-families must be 'all' or some of "
            f"{', '.join(blur.PHOTO_FAMILIES)}, comma-separated, got "
            f"{cfg.photo_families!r}",
        ),
        (
            chosen is None or blur_families(cfg) == "photo",
            "--photo-families picks among the photo blur families: it needs "
            "--blur-families photo (or auto on the text domain)",
        ),
        (
            cfg.text_pages in ("document", "lines"),
            f"--text-pages must be document or lines, got {cfg.text_pages!r}",
        ),
        (
            cfg.text_look in ("photo", "clean"),
            f"--text-look must be photo or clean, got {cfg.text_look!r}",
        ),
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


@dataclass(frozen=True)
class KernelLabels:
    """What each kernel of a bank is: `family[i]` (a `blur.PHOTO_FAMILIES`
    name, or for "shake" banks a `blur.KINDS` name) and `value[i]` (the
    family's size parameter in px; NaN for "shake" banks, whose parameters
    scale with the kernel size)."""

    family: tuple[str, ...]
    value: np.ndarray


def blur_families(cfg: DataConfig) -> str:
    """The blur families in use, "photo" or "shake" ("auto" resolved)."""
    if cfg.blur_families == "auto":
        return "photo" if cfg.domain == "text" else "shake"
    return cfg.blur_families


def photo_families(cfg: DataConfig) -> tuple[str, ...] | None:
    """The photo blur families of the training bank (`--photo-families`),
    None for all of them."""
    if cfg.photo_families == "all":
        return None
    return tuple(f.strip() for f in cfg.photo_families.split(",") if f.strip())


@lru_cache(maxsize=16)
def _synth_bank(
    n: int,
    size: int,
    seed: tuple[int, ...],
    families: str,
    motion: float,
    held: bool,
    photo: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, KernelLabels]:
    if families == "photo":
        bank, index, value = blur.photo_kernel_bank(
            n, size, seed, stratified=held, only=photo
        )
        names = tuple(blur.PHOTO_FAMILIES)
        labels = KernelLabels(tuple(names[i] for i in index), value)
    else:
        rest = (1.0 - motion) / 2
        weights = (motion, rest, rest)
        bank = blur.make_kernel_bank(n, size, seed, weights=weights)
        kinds = blur.bank_kinds(n, seed, weights=weights)
        labels = KernelLabels(kinds, np.full(n, np.nan, np.float32))
    bank.flags.writeable = False
    labels.value.flags.writeable = False
    return bank, labels


def _bank(cfg: DataConfig, split: str | None) -> tuple[np.ndarray, KernelLabels]:
    path = cfg.blur_kernel_file
    loaded = blur.load_kernel_bank(path) if path and Path(path).exists() else None
    size = cfg.blur_kernel_size if loaded is None else loaded.shape[1]
    if size // 2 >= cfg.load_size:
        raise ValueError(
            f"--blur-kernel-file {path}: kernels of {size} px need --load-size "
            f"above {size // 2}"
        )
    families = blur_families(cfg)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        bank_seed, _, count = SPLIT_SEEDS[split]
        n = max(getattr(cfg, count), 1)
        seed = (cfg.seed, bank_seed)
        return _synth_bank(n, size, seed, families, cfg.motion_blur_prob, True)
    photo = photo_families(cfg)
    if loaded is not None:
        if photo is not None:
            raise ValueError(
                f"--photo-families draws a training bank, but --blur-kernel-file "
                f"{path} already holds one"
            )
        n = loaded.shape[0]
        return loaded, KernelLabels(("file",) * n, np.full(n, np.nan, np.float32))
    bank, labels = _synth_bank(
        cfg.blur_kernel_bank,
        size,
        (cfg.seed,),
        families,
        cfg.motion_blur_prob,
        False,
        photo,
    )
    if path:
        blur.save_kernel_bank(path, bank)
        logger.info("wrote the kernel bank to %s", path)
    return bank, labels


def kernel_bank(cfg: DataConfig, split: str | None = None) -> np.ndarray:
    """The training kernel bank (`split=None`), or that of the held-out
    `split` ("val", "test" or "unseen"), float32 `[n, k, k]`.

    `blur_families(cfg)` picks the kernels: "photo" (`blur.photo_kernel_bank`;
    the training bank of the `photo_families(cfg)` only, held-out banks of
    every family, stratified by family and size) or "shake"
    (`blur.make_kernel_bank`). With `blur_kernel_file` set, the training bank
    is read from that `.npy` file if it exists (any square kernels, e.g.
    measured PSFs; its `k` wins over `blur_kernel_size`) and written there
    otherwise. The held-out banks are always synthesised with the training
    bank's kernel size, one kernel per image: test seed `(seed, 1)`,
    `max(test_images, 1)` kernels; validation seed `(seed, 2)`,
    `max(val_images, 1)`; unseen fonts seed `(seed, 3)`, `max(unseen_images,
    1)` (other draws than each other and than the training bank, seed
    `(seed,)`).
    """
    return _bank(cfg, split)[0]


def kernel_labels(cfg: DataConfig, split: str | None = None) -> KernelLabels:
    """The family and size of each kernel of `kernel_bank(cfg, split)`."""
    return _bank(cfg, split)[1]


def _noise_and_jpeg(cfg: DataConfig, x, seed):
    """Noise + 8-bit rounding + optional JPEG of float32 [0, 1] `x` -> uint8."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    x = degrade.to_uint8(degrade.add_noise(x, cfg.noise_std, seeds[0]))
    return degrade.maybe_jpeg(x, cfg.jpeg_prob, cfg.jpeg_quality_min, seeds[1])


def _degrade(cfg: DataConfig, image, oy, ox, kernel, seed):
    """Blur + noise + 8-bit rounding + optional JPEG of one crop -> uint8."""
    x = degrade.blur_crop(image, oy, ox, cfg.crop_size, kernel)
    return _noise_and_jpeg(cfg, x, seed)


def blur_whole(image: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """A whole uint8 `[H, W, 3]` image convolved with `kernel` (float32
    `[k, k]`, k static; `H, W > k // 2`), reflected borders: float32 `[H, W, 3]`
    in [0, 1], the values of `keras_udd.blur.blur_image`."""
    k = int(kernel.shape[0])
    lo, hi = k // 2, k - 1 - k // 2
    x = tf.cast(image, tf.float32) / 255.0
    x = tf.pad(x, [[lo, hi], [lo, hi], [0, 0]], mode="REFLECT")
    n = tf.shape(x)[:2]
    spec = tf.signal.rfft2d(tf.transpose(x, [2, 0, 1]))
    spec *= tf.signal.rfft2d(kernel, fft_length=n)[None]
    full = tf.signal.irfft2d(spec, fft_length=n)  # Circular; valid part kept.
    out = tf.transpose(full[:, k - 1 :, k - 1 :], [1, 2, 0])
    return tf.ensure_shape(out, [None, None, 3])


def _degrade_whole(cfg: DataConfig, image, kernel, seed):
    """`_degrade` of a whole image -> uint8 `[H, W, 3]`."""
    return _noise_and_jpeg(cfg, blur_whole(image, kernel), seed)


def _train_stream(
    cfg: DataConfig,
    pool,
    stream: int,
    bank: np.ndarray | None,
    start: int = 0,
    noisy: bool = False,
):
    """`{"image": float32 [crop, crop, 3] in [-1, 1], "id": string}` forever,
    from element `start` of the stream on: crops blurred with a kernel of
    `bank` then degraded by `_noise_and_jpeg`, else crops as they are
    (`noisy`: with `_noise_and_jpeg` alone). Each image gives
    `cfg.crops_per_image` crops, interleaved over as many images; element `n`
    is crop `n` of the stream whatever `start` is (the skipped images are not
    loaded, bar the few of one interleave cycle)."""
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
            if noisy:
                out = _noise_and_jpeg(cfg, tf.cast(out, tf.float32) / 255.0, seeds[2])
        else:
            index = tf.random.stateless_uniform([], seeds[1], 0, n_bank, tf.int32)
            out = _degrade(cfg, image, oy, ox, tf.gather(bank_t, index), seeds[2])
        if cfg.random_flip:
            out = degrade.maybe_flip(out, seeds[3])
        return {"image": degrade.to_signed(out), "id": source_id}

    k = cfg.crops_per_image
    group = k * k  # Crops of the k images that one interleave cycle opens.
    ds = pool.dataset(
        shuffle_seed=cfg.seed * 1000 + stream,
        repeat=True,
        skip=start // group * k,
    )
    if k > 1:  # k crops of each image, from k images in turn.
        ds = ds.interleave(
            lambda *element: tf.data.Dataset.from_tensors(element).repeat(k),
            cycle_length=k,
            block_length=1,
        ).skip(start % group)
    return ds.enumerate(start).map(augment, num_parallel_calls=AUTOTUNE)


def _options(deterministic: bool) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = deterministic
    # Sources are ids, not files: shard by element under multi-worker.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def make_train_examples(
    cfg: DataConfig, domain: DomainData | None = None, start_batch: int = 0
) -> tf.data.Dataset:
    """The training stream with source ids, for inspection and tests.

    Yields dicts of batches: `sharp`, `blurred` float32 `[batch_size, crop_size,
    crop_size, 3]` in [-1, 1]; `sharp_id`, `blurred_id` tf.string `[batch_size]`
    naming the source image of each (file path, `text/<i>` or TFDS id). With
    `start_batch`, from that batch of the stream on (how a resumed run
    continues; the skipped images are not loaded).
    """
    validate(cfg)
    domain = build_domain(cfg) if domain is None else domain
    bank = kernel_bank(cfg) if domain.synthetic_blur else None
    start = start_batch * cfg.batch_size
    noisy = cfg.sharp_noise and bank is not None
    sharp = _train_stream(cfg, domain.sharp, SHARP_STREAM, None, start, noisy)
    blurred = _train_stream(cfg, domain.blurred, BLUR_STREAM, bank, start)
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


def make_train_dataset(cfg: DataConfig, start_batch: int = 0) -> tf.data.Dataset:
    """Infinite unpaired training batches `(sharp, blurred)`, from batch
    `start_batch` of the stream on.

    Both float32 `[cfg.batch_size, cfg.crop_size, cfg.crop_size, 3]` in
    [-1, 1]; sharp and blurred images come from disjoint source images.

    Raises:
        ValueError: unknown domain, bad settings, empty folders (flag named).
        FileNotFoundError: missing folders or data (flag and path named).
    """
    return make_train_examples(cfg, start_batch=start_batch).map(
        lambda e: (e["sharp"], e["blurred"]), num_parallel_calls=AUTOTUNE
    )


def make_paired_train_dataset(cfg: DataConfig) -> tf.data.Dataset:
    """Infinite PAIRED training batches `(blurred, sharp)`, for supervised
    baselines (the method itself never sees pairs): crops of the sharp pool,
    each blurred as the blurred stream is (training kernel bank, noise, JPEG)
    and flipped together with its sharp crop. Both float32
    `[batch_size, crop_size, crop_size, 3]` in [-1, 1]. Synthetic-blur
    domains only (ValueError otherwise)."""
    validate(cfg)
    domain = build_domain(cfg)
    if not domain.synthetic_blur:
        raise ValueError(f"--domain {cfg.domain} has real blur: no training pairs")
    bank = tf.constant(kernel_bank(cfg))
    base = (cfg.seed, PAIRED_STREAM)

    def pair(counter, element):
        _, image = element
        seeds = tf.random.experimental.stateless_split(
            degrade.element_seed(base, counter), 4
        )
        oy, ox = degrade.crop_offsets(image, cfg.crop_size, seeds[0])
        index = tf.random.stateless_uniform([], seeds[1], 0, bank.shape[0], tf.int32)
        blurred = _degrade(cfg, image, oy, ox, tf.gather(bank, index), seeds[2])
        both = tf.concat([blurred, degrade.crop(image, oy, ox, cfg.crop_size)], -1)
        if cfg.random_flip:
            both = degrade.maybe_flip(both, seeds[3])
        return degrade.to_signed(both[..., :3]), degrade.to_signed(both[..., 3:])

    ds = domain.sharp.dataset(shuffle_seed=cfg.seed * 1000 + PAIRED_STREAM, repeat=True)
    ds = ds.enumerate().map(pair, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(cfg.batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    return ds.with_options(_options(cfg.deterministic))


def _test_pairs(cfg: DataConfig, pool, split: str, whole: bool) -> tf.data.Dataset:
    """Unbatched `{"blurred", "sharp": uint8 images, "id", "kernel_index"}`:
    whole images, or centre crops of `crop_size` unless `whole`."""
    c = cfg.crop_size
    if isinstance(pool, PairPool):

        def real(name, b, s):
            if not whole:
                oy, ox = degrade.crop_offsets(s, c)
                b, s = degrade.crop(b, oy, ox, c), degrade.crop(s, oy, ox, c)
            return {
                "blurred": b,
                "sharp": s,
                "id": name,
                "kernel_index": tf.constant(-1, tf.int32),
            }

        return pool.dataset().map(real, num_parallel_calls=AUTOTUNE)

    bank = kernel_bank(cfg, split)
    bank_t, n_bank = tf.constant(bank), bank.shape[0]
    base = (cfg.seed, SPLIT_SEEDS[split][1])

    def synth(counter, element):
        source_id, image = element
        index = tf.cast(counter % n_bank, tf.int32)
        kernel = tf.gather(bank_t, index)
        seed = degrade.element_seed(base, counter)
        if whole:
            blurred, sharp = _degrade_whole(cfg, image, kernel, seed), image
        else:
            oy, ox = degrade.crop_offsets(image, c)
            blurred = _degrade(cfg, image, oy, ox, kernel, seed)
            sharp = degrade.crop(image, oy, ox, c)
        return {
            "blurred": blurred,
            "sharp": sharp,
            "id": source_id,
            "kernel_index": index,
        }

    ds = pool.dataset(shuffle_seed=None, repeat=False).enumerate()
    return ds.map(synth, num_parallel_calls=AUTOTUNE)


def _has_degradation(pair) -> tf.Tensor:
    """False for a synthetic pair whose blurred image came out equal to its
    sharp one (a nearly sharp kernel, no noise left after 8-bit rounding, no
    JPEG): it has nothing to deblur, and its PSNR, capped at
    `keras_udd.metrics.MAX_PSNR`, would outweigh dozens of pages in a split's
    mean. Real pairs are kept as they are."""
    synthetic = pair["kernel_index"] >= 0
    return tf.logical_not(synthetic) | tf.reduce_any(pair["blurred"] != pair["sharp"])


def make_test_examples(
    cfg: DataConfig,
    batch_size: int | None = None,
    domain: DomainData | None = None,
    split: str = "test",
    whole: bool = True,
) -> tf.data.Dataset:
    """The paired validation or test set with ids, for inspection and tests.

    Args:
        cfg: the data settings.
        batch_size: pairs per batch; default 1 for whole images (their sizes
            differ; only 1 is accepted), `cfg.batch_size` for crops.
        domain: the domain's pools (default: `build_domain(cfg)`).
        split: "test" (held-out test set, `keras_udd.evaluate`), "unseen"
            (text: pages in fonts training never sees) or "val" (the
            validation set of train.py); disjoint, with their own kernels.
        whole: whole images (default), else centre crops of `crop_size`.

    Yields dicts of batches: `blurred`, `sharp` float32 `[B, H, W, 3]` in
    [-1, 1] (`[1, None, None, 3]` whole, `[B, crop, crop, 3]` cropped); `id`
    tf.string `[B]`; `kernel_index` int32 `[B]` (row of
    `kernel_bank(cfg, split)`, -1 for real pairs). A synthetic pair whose
    blurred image equals its sharp one is left out (`_has_degradation`).
    """
    validate(cfg)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if batch_size is None:
        batch_size = 1 if whole else cfg.batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if whole and batch_size != 1:
        raise ValueError(
            f"whole images differ in size: batch_size must be 1, got {batch_size} "
            "(whole=False gives crops of --crop-size)"
        )
    domain = build_domain(cfg) if domain is None else domain
    pool = domain.held_out(split)
    what = SPLIT_NAMES[split]
    if pool is None:
        if split == "unseen" and cfg.domain != "text":
            raise ValueError(
                f"--domain {cfg.domain} has no unseen-fonts split (text only)"
            )
        flag = "--" + SPLIT_SEEDS[split][2].replace("_", "-")
        raise ValueError(
            f"--domain {cfg.domain}: no {what} set ({flag} is 0"
            + (" and no --test-dir)" if split == "test" else ")")
        )
    size = pool.size
    if size < batch_size:
        raise ValueError(
            f"the {what} set of {pool.name} has {size} images, fewer than "
            f"one batch ({batch_size})"
        )
    if size % batch_size:
        logger.warning(
            "%s set of %d images: the last %d do not fill a batch of %d and "
            "are left out",
            what,
            size,
            size % batch_size,
            batch_size,
        )
    ds = _test_pairs(cfg, pool, split, whole).filter(_has_degradation)
    ds = ds.map(
        lambda e: {
            **e,
            "blurred": degrade.to_signed(e["blurred"]),
            "sharp": degrade.to_signed(e["sharp"]),
        }
    )
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    return ds.with_options(_options(True))


def make_test_dataset(
    cfg: DataConfig,
    batch_size: int | None = None,
    split: str = "test",
    whole: bool = True,
) -> tf.data.Dataset:
    """Finite, deterministic paired batches `(blurred, sharp)` of a held-out
    split: "test" (default; `keras_udd.evaluate`), "unseen" (text: unseen
    fonts) or "val" (train.py).

    Both float32 in [-1, 1]; `blurred[i]` is `sharp[i]` blurred. Whole images
    by default: `[1, H, W, 3]`, H and W varying (spec `[1, None, None, 3]`);
    with `whole=False`, `[B, crop_size, crop_size, 3]` centre crops, `B =
    batch_size` (default `cfg.batch_size`), a last partial batch dropped
    (warned). Held-out images, disjoint from both training halves and from
    the other split: `cfg.test_images` / `cfg.val_images` of them, or the
    test / validation part of the `--test-dir` pairs.
    """
    examples = make_test_examples(cfg, batch_size, split=split, whole=whole)
    return examples.map(lambda e: (e["blurred"], e["sharp"]))


def with_counted_cardinality(ds: tf.data.Dataset) -> tf.data.Dataset:
    """A finite `ds` that declares its length, counted by one pass over it.

    Keras then knows the validation length from the first epoch (instead of
    warning that the input "ran out of data"). Images that fail to decode
    fail every time, so the count holds for every later pass.
    """
    count = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
    return ds.apply(tf.data.experimental.assert_cardinality(count))
