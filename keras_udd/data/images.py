"""Robust image files: scan folders, decode any Pillow format to 8-bit RGB, resize.

Bad input never takes training down. `scan_folder` opens every file's header
once (in threads) and skips zero-byte, unreadable and non-image files with a
warning naming each, then a count ("skipped 3 of 120 files in --sharp-dir
DIR"); PNGs are CRC-checked, so truncated PNGs are caught here too. Damage
that only full decoding reveals (a truncated JPEG) is caught by `ImageLoader`
inside the pipeline, which warns once per file and drops the image. Images
whose shorter side is below the crop are kept and upscaled by the usual
shorter-side resize, with a warning naming them.

Conversions: grayscale, palette, CMYK and 1-bit images become RGB; alpha
(RGBA, LA, palette transparency) is composited onto white; 16-bit images
(`I;16` grayscale, 16-bit RGB PNGs) are scaled to 8 bits (value / 257); EXIF
orientation is applied. `keras_udd.deblur` reads its inputs the same way
(`load_rgb_and_alpha` also returns the alpha channel, which it puts back).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

MAX_NAMED = 20  # Bad files named one by one before the rest are only counted.


@dataclass(frozen=True)
class FolderScan:
    """The usable images of a folder, sorted by path.

    Attributes:
        files: absolute paths of the images that opened.
        sizes: `(width, height)` of each, from the file header.
        skipped: `(path, reason)` of every file that did not open.
    """

    files: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    skipped: tuple[tuple[str, str], ...]


def _check_file(path: str) -> tuple[tuple[int, int] | None, str]:
    """`(size, "")` for a file Pillow can open, `(None, reason)` otherwise."""
    try:
        if os.path.getsize(path) == 0:
            return None, "empty file (0 bytes)"
        with Image.open(path) as img:
            size = img.size
            img.verify()  # Cheap; PNG chunks are CRC-checked.
        return size, ""
    except Exception as err:  # noqa: BLE001 - any failure means "skip".
        return None, f"not a readable image ({type(err).__name__}: {err})"


def _list_files(folder: Path) -> list[str]:
    """All non-hidden files below `folder` (recursive, sorted)."""
    found = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, n) for n in names if not n.startswith("."))
    return sorted(found)


def check_folder(folder: str | os.PathLike | None, flag: str) -> Path:
    """The folder as an absolute Path; raises naming `flag` if it is not one."""
    if folder is None or str(folder) == "":
        raise ValueError(f"{flag} is required (a folder of images)")
    path = Path(folder).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{flag} {folder}: folder not found")
    if not path.is_dir():
        raise FileNotFoundError(f"{flag} {folder}: not a folder")
    return path.resolve()


def _warn_named(items: list[str], what: str) -> None:
    for line in items[:MAX_NAMED]:
        logger.warning("%s", line)
    if len(items) > MAX_NAMED:
        logger.warning("... and %d more %s", len(items) - MAX_NAMED, what)


def scan_folder(
    folder: str | os.PathLike | None, flag: str, min_side: int = 0
) -> FolderScan:
    """Finds the usable images below `folder`, warning about the rest.

    Args:
        folder: the folder (searched recursively; hidden files are ignored).
        flag: the command-line flag it came from, named in every message.
        min_side: images whose shorter side is below this (the crop size) are
            kept, with a warning that they will be upscaled.

    Raises:
        ValueError: `folder` is None, empty or holds no usable image.
        FileNotFoundError: `folder` does not exist or is not a folder.
    """
    path = check_folder(folder, flag)
    candidates = _list_files(path)
    if not candidates:
        raise ValueError(f"{flag} {folder}: folder is empty (no files found)")
    workers = min(8, (os.cpu_count() or 1) * 2, len(candidates))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        checks = list(pool.map(_check_file, candidates))
    files, sizes, skipped = [], [], []
    for file, (size, reason) in zip(candidates, checks, strict=True):
        if size is None:
            skipped.append((file, reason))
        else:
            files.append(file)
            sizes.append(size)
    if skipped:
        _warn_named(
            [f"skipping {f} in {flag} {folder}: {why}" for f, why in skipped],
            f"unusable files in {flag} {folder}",
        )
        logger.warning(
            "skipped %d of %d files in %s %s",
            len(skipped),
            len(candidates),
            flag,
            folder,
        )
    if not files:
        raise ValueError(
            f"{flag} {folder}: no usable images ({len(candidates)} files, none "
            "could be opened as an image)"
        )
    small = [
        f"{f} in {flag} is {w}x{h}, smaller than the {min_side}-px crop: upscaled"
        for f, (w, h) in zip(files, sizes, strict=True)
        if min(w, h) < min_side
    ]
    if small:
        _warn_named(small, f"small images in {flag} {folder}")
    return FolderScan(tuple(files), tuple(sizes), tuple(skipped))


def to_rgb_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow image as `(rgb, alpha)`: uint8 `[H, W, 3]` (see the module
    docstring; alpha composited onto white) and its uint8 `[H, W]` alpha
    channel, or None when it has none. Training and `keras_udd.deblur` both
    decode through here."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        if mode.startswith("I;16") or (mode == "I" and arr.max(initial=0) > 255):
            arr = arr / 257.0
        elif mode == "F" and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        alpha = rgba[..., 3:].astype(np.float32) / 255.0
        rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.round(rgb).astype(np.uint8), rgba[..., 3].copy()
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8), None


def load_rgb_and_alpha(
    path: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decodes a file fully to `to_rgb_and_alpha`'s `(rgb, alpha)`, upright
    (EXIF orientation applied); raises on any damage."""
    with Image.open(path) as img:
        img.load()  # Raises on truncated data (LOAD_TRUNCATED_IMAGES stays off).
        img = ImageOps.exif_transpose(img)
        return to_rgb_and_alpha(img)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decodes a file fully to uint8 `[H, W, 3]`; raises on any damage."""
    return load_rgb_and_alpha(path)[0]


def resize_shorter(image: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize (Pillow, antialiased) so the shorter side is `size`.

    Matches torchvision's `Resize(size)` on PIL images, as the reference uses.

    Args:
        image: uint8 `[H, W, 3]`.

    Returns:
        uint8 `[H', W', 3]` with `min(H', W') == size`, aspect ratio kept.
    """
    h, w = image.shape[:2]
    if min(h, w) == size:
        return np.ascontiguousarray(image)
    if h <= w:
        new_h, new_w = size, max(size, round(w * size / h))
    else:
        new_h, new_w = max(size, round(h * size / w)), size
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


class ImageLoader:
    """Loads one file for `tf.numpy_function`: path -> resized uint8 image.

    A file that fails to decode gives an empty `[0, 0, 3]` array (the pipeline
    filters those out) and one warning naming it; if every file of the pool
    has failed, it raises instead of letting the pipeline spin forever.

    Args:
        load_size: shorter side after resizing.
        flag, folder: where the files come from, for messages.
        total: number of files in the pool.
    """

    def __init__(self, load_size: int, flag: str, folder: str, total: int):
        self.load_size = load_size
        self.flag = flag
        self.folder = folder
        self.total = total
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, path) -> np.ndarray:
        path = path.decode() if isinstance(path, bytes) else str(path)
        try:
            return resize_shorter(load_rgb(path), self.load_size)
        except Exception as err:  # noqa: BLE001 - any failure means "skip".
            with self._lock:
                first = path not in self._failed
                self._failed.add(path)
                failed = len(self._failed)
            if first:
                logger.warning(
                    "skipping %s in %s %s: could not decode (%s: %s); %d of %d "
                    "files skipped at decode time so far",
                    path,
                    self.flag,
                    self.folder,
                    type(err).__name__,
                    err,
                    failed,
                    self.total,
                )
            if failed >= self.total:
                raise RuntimeError(
                    f"none of the {self.total} files in {self.flag} {self.folder} "
                    "could be decoded"
                ) from err
            return np.zeros((0, 0, 3), np.uint8)
