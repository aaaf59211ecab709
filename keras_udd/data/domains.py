"""Per-domain image sources: which images are sharp, blurred and held out.

Every domain builder maps a `DataConfig` to a `DomainData`: a pool of sharp
training images S, a disjoint pool of blurred training images B (real, or
sharp images that the pipeline blurs on the fly when `synthetic_blur`), and
two held-out pools, validation (`val`, scored every epoch by train.py; it
picks `best.keras`) and test (`test`, scored by `keras_udd.evaluate`): sharp
images to blur into pairs, or real pairs (and, for text, a third: `unseen`,
pages in fonts no other pool uses). All are disjoint. Builders are
looked up in `DOMAINS`; a new domain (licence plates, say) is one builder
function and one entry there.

- `text`: `text_pool_size` rendered pages (`keras_udd.data.document`, or the
  earlier line pages of `keras_udd.data.text`); ids `text/<i>`. Pages
  `[0, test_images)` are the test set, `[test_images, test_images +
  val_images)` the validation set, the rest is split in two halves (sharp,
  then blurred). Pages `[text_pool_size, text_pool_size + unseen_images)`,
  set in the fonts held out of all the others (`keras_udd.data.fonts`), are
  the unseen-fonts split.
- `face`: CelebA from TFDS (`train[:50%]` sharp, `train[50%:]` blurred,
  `validation[:val_images]` validation, `test[:test_images]` test; downloaded
  and prepared by TFDS on first use), or with
  `data_dir` a folder of face images, split at random (seeded): `test_images`
  test images, `val_images` validation images, then two halves.
- `folder`: `sharp_dir` and `blur_dir` of real, unpaired images (no synthetic
  blur). With `test_dir`, its real pairs `test_dir/blurred/NAME` and
  `test_dir/sharp/NAME` (matched by path relative to the subfolder, extension
  ignored) are split at random (seeded): `val_images` pairs validate, all the
  others are the test set (`test_images` is not used). Without `test_dir`,
  `test_images + val_images` sharp images (seeded choice) are held out of
  training and blurred synthetically (test, then validation), so PSNR/SSIM
  then measure synthetic blur.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_udd.config import DataConfig
from keras_udd.data import fonts as font_set
from keras_udd.data.document import DocumentRenderer
from keras_udd.data.images import (
    ImageLoader,
    check_folder,
    resize_shorter,
    scan_folder,
)
from keras_udd.data.text import TextRenderer

logger = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
TFDS_SHUFFLE_BUFFER = 2048


@dataclass(frozen=True)
class IndexedPool:
    """A finite pool of images addressed by string ids.

    Attributes:
        name: where the images come from, for messages (e.g. "--sharp-dir D").
        ids: the ids (file paths, or `text/<i>`).
        load: id bytes -> uint8 `[H, W, 3]` with shorter side `load_size`, or an
            empty `[0, 0, 3]` array for an image that cannot be decoded.
    """

    name: str
    ids: tuple[str, ...]
    load: Callable[[bytes], np.ndarray]

    @property
    def size(self) -> int:
        return len(self.ids)

    def dataset(
        self, shuffle_seed: int | None, repeat: bool, skip: int = 0
    ) -> tf.data.Dataset:
        """Yields `(id, image)`: tf.string scalar, uint8 `[H, W, 3]`; with
        `skip`, from element `skip` of the id stream on (skipped unloaded)."""
        ds = tf.data.Dataset.from_tensor_slices(list(self.ids))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(self.ids), seed=shuffle_seed)
        if repeat:
            ds = ds.repeat()
        ds = ds.skip(skip)
        load = self.load

        def _load(source_id):
            image = tf.numpy_function(load, [source_id], tf.uint8, stateful=False)
            return source_id, tf.ensure_shape(image, [None, None, 3])

        ds = ds.map(_load, num_parallel_calls=AUTOTUNE)
        return ds.filter(lambda _, image: tf.size(image) > 0)


@dataclass(frozen=True)
class TfdsPool:
    """Images of a TFDS split (streamed); ids are TFDS' `tfds_id` strings."""

    name: str
    dataset_name: str
    split: str
    data_dir: str | None
    load_size: int
    size: int

    def dataset(
        self, shuffle_seed: int | None, repeat: bool, skip: int = 0
    ) -> tf.data.Dataset:
        """Yields `(id, image)`: tf.string scalar, uint8 `[H, W, 3]`; with
        `skip`, from element `skip` on (skipped before resizing)."""
        import tensorflow_datasets as tfds

        read_config = tfds.ReadConfig(add_tfds_id=True, shuffle_seed=shuffle_seed)
        ds = tfds.load(
            self.dataset_name,
            split=self.split,
            data_dir=self.data_dir,
            download=False,
            shuffle_files=shuffle_seed is not None,
            read_config=read_config,
        )
        if shuffle_seed is not None:
            ds = ds.shuffle(TFDS_SHUFFLE_BUFFER, seed=shuffle_seed)
        if repeat:
            ds = ds.repeat()
        else:
            ds = ds.take(self.size)
        ds = ds.skip(skip)
        load_size = self.load_size

        def _resize(example):
            image = tf.numpy_function(
                lambda x: resize_shorter(x, load_size),
                [example["image"]],
                tf.uint8,
                stateful=False,
            )
            return example["tfds_id"], tf.ensure_shape(image, [None, None, 3])

        return ds.map(_resize, num_parallel_calls=AUTOTUNE)


@dataclass(frozen=True)
class PairPool:
    """Real test pairs: `(blurred file, sharp file)` per name."""

    name: str
    ids: tuple[str, ...]
    blurred: tuple[str, ...]
    sharp: tuple[str, ...]
    load_blurred: Callable[[bytes], np.ndarray]
    load_sharp: Callable[[bytes], np.ndarray]

    @property
    def size(self) -> int:
        return len(self.ids)

    def dataset(self) -> tf.data.Dataset:
        """Yields `(id, blurred, sharp)`: tf.string, uint8 `[H, W, 3]` twice."""
        ds = tf.data.Dataset.from_tensor_slices(
            (list(self.ids), list(self.blurred), list(self.sharp))
        )
        load_b, load_s = self.load_blurred, self.load_sharp

        def _load(name, blurred, sharp):
            b = tf.numpy_function(load_b, [blurred], tf.uint8, stateful=False)
            s = tf.numpy_function(load_s, [sharp], tf.uint8, stateful=False)
            b = tf.ensure_shape(b, [None, None, 3])
            s = tf.ensure_shape(s, [None, None, 3])
            return name, b, s

        ds = ds.map(_load, num_parallel_calls=AUTOTUNE)
        return ds.filter(
            lambda _, b, s: tf.logical_and(
                tf.reduce_all(tf.shape(b) == tf.shape(s)), tf.size(b) > 0
            )
        )


Pool = IndexedPool | TfdsPool
SPLITS = ("val", "test", "unseen")


@dataclass(frozen=True)
class DomainData:
    """The four disjoint parts of a domain.

    Attributes:
        sharp: training sharp images S.
        blurred: training blurred images B (sharp sources if `synthetic_blur`).
        test: held-out sharp images to blur into pairs, or real pairs; None
            when there are none (`test_images` 0).
        synthetic_blur: the pipeline blurs `blurred` (and non-pair held-out
            pools).
        val: the validation pool, like `test` (None: no validation).
        unseen: text only: pages in fonts training never sees, like `test`.
    """

    sharp: Pool
    blurred: Pool
    test: Pool | PairPool | None
    synthetic_blur: bool
    val: Pool | PairPool | None = None
    unseen: Pool | None = None

    def held_out(self, split: str) -> Pool | PairPool | None:
        """The pool of `split`: "val", "test" or "unseen"."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return getattr(self, split)


def _folder_pool(name: str, flag: str, folder, files, load_size: int) -> IndexedPool:
    loader = ImageLoader(load_size, flag, str(folder), len(files))
    return IndexedPool(name, tuple(files), loader)


def _split_four(items: list, n_test: int, n_val: int, seed: int, what: str):
    """Seeded shuffle, then `n_test` test items, `n_val` validation items and
    two halves of the rest: `(sharp, blurred, test, val)`."""
    if len(items) < n_test + n_val + 2:
        raise ValueError(
            f"{what} has {len(items)} usable images; need at least --test-images "
            f"({n_test}) + --val-images ({n_val}) + 2 for the test and "
            "validation sets and two training halves"
        )
    order = np.random.default_rng([seed, 17]).permutation(len(items))
    items = [items[i] for i in order]
    rest = items[n_test + n_val :]
    half = len(rest) // 2
    return rest[:half], rest[half:], items[:n_test], items[n_test : n_test + n_val]


def text_renderer(cfg: DataConfig, fonts: str = "train"):
    """The page renderer of the text domain's settings; `fonts`: "train"
    (training, validation and test pages) or "unseen" (the unseen-fonts
    split)."""
    if cfg.font_dir is not None:
        check_folder(cfg.font_dir, "--font-dir")
    families = font_set.families(cfg.font_dir, fonts)
    if not families:
        where = f"--font-dir {cfg.font_dir}" if cfg.font_dir else "the pinned set"
        need = "fonts" if fonts == "train" else "five fonts for an unseen-fonts split"
        raise ValueError(f"{where}: no {need} found (.ttf, .otf or .pfb files)")
    if cfg.text_pages == "lines":
        faces = tuple(f.face("regular") for f in families)
        return TextRenderer(cfg.load_size, cfg.seed, faces, cfg.text_tones)
    return DocumentRenderer(cfg.load_size, cfg.seed, families, cfg.text_look)


def build_text(cfg: DataConfig) -> DomainData:
    """`text`: lazily rendered pages (see the module docstring)."""
    n, n_test, n_val = cfg.text_pool_size, cfg.test_images, cfg.val_images
    held = n_test + n_val
    if n < held + 2:
        raise ValueError(
            f"--text-pool-size ({n}) must be at least --test-images ({n_test}) + "
            f"--val-images ({n_val}) + 2"
        )
    renderer = text_renderer(cfg)
    half = (n - held) // 2

    def pool(name, lo, hi, load=renderer):
        return IndexedPool(name, tuple(f"text/{i}" for i in range(lo, hi)), load)

    unseen = None
    if cfg.unseen_images:
        last = n + cfg.unseen_images
        unseen = pool("text (unseen fonts)", n, last, text_renderer(cfg, "unseen"))
    return DomainData(
        sharp=pool("text (sharp half)", held, held + half),
        blurred=pool("text (blurred half)", held + half, n),
        test=pool("text (test)", 0, n_test) if n_test else None,
        val=pool("text (validation)", n_test, held) if n_val else None,
        unseen=unseen,
        synthetic_blur=True,
    )


CELEB_A = "celeb_a"  # The TFDS name of CelebA.


def _tfds_missing(tfds_dir, err: Exception | None = None) -> FileNotFoundError:
    """CelebA is not prepared and cannot be downloaded here (no connection)."""
    where = tfds_dir or "~/tensorflow_datasets"
    return FileNotFoundError(
        f"--domain face: CelebA (TFDS '{CELEB_A}') is not prepared in {where}"
        + (f" ({type(err).__name__}: {err})" if err else "")
        + ". Fix: run this command once on a connected machine (it downloads "
        "and prepares CelebA) and copy its TFDS folder here (--tfds-dir DIR if "
        "it is not the default one), or pass --data-dir with a folder of face "
        "images."
    )


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 2**30:.2f} GiB"


def _is_connection_error(err: BaseException) -> bool:
    """Whether `err` (or an exception it came from) says that the machine
    cannot reach the server: no network, no DNS, refused, timed out."""
    import socket

    import requests

    kinds = (ConnectionError, TimeoutError, socket.gaierror)
    kinds += (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, kinds):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _download_failed(builder, err: Exception) -> FileNotFoundError:
    """The manual-download instructions, after TFDS could not download CelebA."""
    manual = os.path.join(builder.data_dir_root, "downloads", "manual")
    files = "\n".join(
        f"  {info.filename} ({_size(int(info.size))})"
        for info in builder.url_infos.values()
    )
    cause = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return FileNotFoundError(
        f"--domain face: TFDS could not download CelebA ({type(err).__name__}: "
        f"{cause}). CelebA is served from Google Drive, which refuses its "
        "files for a while once too many users have downloaded them. Download "
        "them yourself (http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html: "
        '"Align&Cropped Images" and the annotation files, or a mirror) and '
        f"put them, as they are, in {manual}:\n{files}\nthen run the same "
        "command again: TFDS checks them and prepares CelebA from them. "
        "(--tfds-dir DIR keeps TFDS' data in DIR, and looks for these files in "
        "DIR/downloads/manual.) Or pass --data-dir with a folder of face "
        "images, e.g. the unpacked img_align_celeba/."
    )


def _download_and_prepare(builder, tfds_dir) -> None:
    """Downloads and prepares CelebA through TFDS, once (its progress bars
    show how far it is). Raises FileNotFoundError: `_tfds_missing` without a
    connection, `_download_failed` when the download fails otherwise."""
    import sys

    files = builder.url_infos.values()
    print(
        f"CelebA (TFDS '{CELEB_A}') is not prepared in {builder.data_dir}: "
        f"downloading its {len(files)} files "
        f"({_size(sum(int(f.size) for f in files))}) into "
        f"{os.path.join(builder.data_dir_root, 'downloads')} and preparing it "
        "there, once. If this is interrupted, the same command resumes it (the "
        "files already downloaded are kept).",
        file=sys.stderr,
        flush=True,
    )
    try:
        builder.download_and_prepare()
    except Exception as err:  # noqa: BLE001 - any TFDS failure gets the fix.
        if _is_connection_error(err):
            raise _tfds_missing(tfds_dir, err) from None
        raise _download_failed(builder, err) from None


def build_face(cfg: DataConfig) -> DomainData:
    """`face`: CelebA via TFDS, or a folder of faces with `data_dir`."""
    if cfg.data_dir is not None:
        scan = scan_folder(cfg.data_dir, "--data-dir", min_side=cfg.crop_size)
        sharp, blurred, test, val = _split_four(
            list(scan.files),
            cfg.test_images,
            cfg.val_images,
            cfg.seed,
            f"--data-dir {cfg.data_dir}",
        )

        def pool(name, files):
            return _folder_pool(name, "--data-dir", cfg.data_dir, files, cfg.load_size)

        return DomainData(
            sharp=pool("--data-dir (sharp half)", sharp),
            blurred=pool("--data-dir (blurred half)", blurred),
            test=pool("--data-dir (test)", test) if test else None,
            val=pool("--data-dir (validation)", val) if val else None,
            synthetic_blur=True,
        )

    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(CELEB_A, data_dir=cfg.tfds_dir)
        prepared = builder.is_prepared()
    except Exception as err:  # noqa: BLE001 - any TFDS failure gets the fix.
        raise _tfds_missing(cfg.tfds_dir, err) from err
    if not prepared:
        _download_and_prepare(builder, cfg.tfds_dir)
    splits = {name: info.num_examples for name, info in builder.info.splits.items()}
    n_train = splits.get("train", 0)  # Sizes are informative only.
    n_test = min(cfg.test_images, splits.get("test", cfg.test_images))
    n_val = min(cfg.val_images, splits.get("validation", cfg.val_images))

    def pool(name, split, size):
        return TfdsPool(name, CELEB_A, split, cfg.tfds_dir, cfg.load_size, size)

    return DomainData(
        sharp=pool("celeb_a train[:50%]", "train[:50%]", n_train // 2),
        blurred=pool("celeb_a train[50%:]", "train[50%:]", n_train - n_train // 2),
        test=pool("celeb_a test", f"test[:{n_test}]", n_test) if n_test else None,
        val=(
            pool("celeb_a validation", f"validation[:{n_val}]", n_val)
            if n_val
            else None
        ),
        synthetic_blur=True,
    )


def _stem_map(files, root: Path) -> dict[str, str]:
    """Relative path without extension -> file."""
    return {str(Path(os.path.relpath(f, root)).with_suffix("")): f for f in files}


def _pair_pool(cfg: DataConfig, root: Path, name: str, pairs) -> PairPool:
    """`pairs`: `(name, blurred file, sharp file)` triples."""
    names, b_files, s_files = (tuple(column) for column in zip(*pairs, strict=True))
    return PairPool(
        name=name,
        ids=names,
        blurred=b_files,
        sharp=s_files,
        load_blurred=ImageLoader(cfg.load_size, "--test-dir", str(root), len(names)),
        load_sharp=ImageLoader(cfg.load_size, "--test-dir", str(root), len(names)),
    )


def _test_pairs(cfg: DataConfig) -> tuple[PairPool, PairPool | None]:
    """The pairs of `test_dir`, split (seeded) into `(test, validation)`:
    `val_images` validation pairs, all others test pairs."""
    root = check_folder(cfg.test_dir, "--test-dir")
    parts = {}
    for sub in ("blurred", "sharp"):
        flag = f"--test-dir {sub}/"
        if not (root / sub).is_dir():
            raise FileNotFoundError(
                f"--test-dir {cfg.test_dir}: expected subfolders blurred/ and sharp/ "
                f"with matching file names; {root / sub} not found"
            )
        scan = scan_folder(root / sub, flag, min_side=cfg.crop_size)
        parts[sub] = (
            _stem_map(scan.files, root / sub),
            dict(zip(scan.files, scan.sizes, strict=True)),
        )
    (blurred, b_sizes), (sharp, s_sizes) = parts["blurred"], parts["sharp"]
    unmatched = sorted(set(blurred) ^ set(sharp))
    if unmatched:
        logger.warning(
            "--test-dir %s: %d names have no partner in blurred/ or sharp/ and "
            "are left out: %s",
            cfg.test_dir,
            len(unmatched),
            ", ".join(unmatched[:20]),
        )
    pairs = []
    for name in sorted(set(blurred) & set(sharp)):
        b, s = blurred[name], sharp[name]
        if b_sizes[b] != s_sizes[s]:
            logger.warning(
                "--test-dir %s: skipping pair %s: blurred is %dx%d, sharp is %dx%d",
                cfg.test_dir,
                name,
                *b_sizes[b],
                *s_sizes[s],
            )
            continue
        pairs.append((name, b, s))
    if not pairs:
        raise ValueError(
            f"--test-dir {cfg.test_dir}: no usable pairs (blurred/NAME and "
            "sharp/NAME of the same size)"
        )
    n_val = cfg.val_images
    if n_val and len(pairs) <= n_val:
        raise ValueError(
            f"--test-dir {cfg.test_dir} has {len(pairs)} usable pairs; "
            f"--val-images ({n_val}) of them validate, which leaves none for the "
            "test set. Pass a smaller --val-images."
        )
    order = np.random.default_rng([cfg.seed, 29]).permutation(len(pairs))
    val = [pairs[i] for i in sorted(order[:n_val])]
    test = [pairs[i] for i in sorted(order[n_val:])]
    where = f"--test-dir {cfg.test_dir}"
    return (
        _pair_pool(cfg, root, f"{where} (test)", test),
        _pair_pool(cfg, root, f"{where} (validation)", val) if val else None,
    )


def build_folder(cfg: DataConfig) -> DomainData:
    """`folder`: the user's own unpaired sharp and blurred images."""
    if cfg.sharp_dir is None or cfg.blur_dir is None:
        raise ValueError("--domain folder needs both --sharp-dir and --blur-dir")
    sharp_root = check_folder(cfg.sharp_dir, "--sharp-dir")
    blur_root = check_folder(cfg.blur_dir, "--blur-dir")
    if sharp_root == blur_root:
        raise ValueError(
            f"--sharp-dir and --blur-dir are the same folder ({sharp_root}); the "
            "method needs separate sharp and blurred images"
        )
    sharp = scan_folder(cfg.sharp_dir, "--sharp-dir", min_side=cfg.crop_size)
    blurred = scan_folder(cfg.blur_dir, "--blur-dir", min_side=cfg.crop_size)
    sharp_files = list(sharp.files)
    test = val = None
    if cfg.test_dir is not None:
        test, val = _test_pairs(cfg)
    elif cfg.test_images or cfg.val_images:
        n_test, n_val = cfg.test_images, cfg.val_images
        if len(sharp_files) <= n_test + n_val:
            raise ValueError(
                f"--sharp-dir {cfg.sharp_dir} has {len(sharp_files)} usable images; "
                f"holding out --test-images ({n_test}) + --val-images ({n_val}) for "
                "synthetic test and validation pairs leaves none for training. "
                "Pass --test-dir or smaller --test-images / --val-images."
            )
        order = np.random.default_rng([cfg.seed, 23]).permutation(len(sharp_files))

        def held_out(what, picks):
            files = sorted(sharp_files[i] for i in picks)
            name, flag = f"--sharp-dir (held-out {what})", "--sharp-dir"
            return _folder_pool(name, flag, cfg.sharp_dir, files, cfg.load_size)

        if n_test:
            test = held_out("test", order[:n_test])
        if n_val:
            val = held_out("validation", order[n_test : n_test + n_val])
        sharp_files = sorted(sharp_files[i] for i in order[n_test + n_val :])
    return DomainData(
        sharp=_folder_pool(
            "--sharp-dir", "--sharp-dir", cfg.sharp_dir, sharp_files, cfg.load_size
        ),
        blurred=_folder_pool(
            "--blur-dir", "--blur-dir", cfg.blur_dir, blurred.files, cfg.load_size
        ),
        test=test,
        val=val,
        synthetic_blur=False,
    )


# Domain name -> builder. Add a domain (e.g. "plate") with one entry here.
DOMAINS: dict[str, Callable[[DataConfig], DomainData]] = {
    "text": build_text,
    "face": build_face,
    "folder": build_folder,
}


def build_domain(cfg: DataConfig) -> DomainData:
    """The `DomainData` of `cfg.domain`; raises ValueError for unknown names."""
    if cfg.domain not in DOMAINS:
        raise ValueError(
            f"--domain {cfg.domain!r} is unknown; choose one of {sorted(DOMAINS)}"
        )
    return DOMAINS[cfg.domain](cfg)
