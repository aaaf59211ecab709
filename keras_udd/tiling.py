"""Running an image model on large images in overlapping, blended tiles.

`process_tiled(image, fn)` cuts an [H, W, C] image into `tile_size` tiles that
overlap by at least `overlap` pixels, runs `fn` on batches of tiles and
blends the results with weights that rise as a raised cosine over the
`overlap` pixels at each tile edge, so seams are invisible and memory stays
bounded by the tile batch (plus two H x W accumulators). Images no larger
than one tile are processed whole. Note that UID-GAN's instance norms and
blur code see one tile at a time, so tiled output approaches the whole-image
output as tiles grow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Offsets of `tile`-long windows covering [0, length), consecutive ones
    overlapping by at least `overlap`; the last ends exactly at `length`."""
    if length <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}), got {overlap}")
    starts = list(range(0, length - tile, tile - overlap))
    return starts + [length - tile]


def blend_window(size: int, overlap: int) -> np.ndarray:
    """[size] float32 weights: a raised cosine from ~0 to 1 over the first and
    last `overlap` samples (1 elsewhere), strictly positive."""
    if overlap <= 0:
        return np.ones(size, np.float32)
    i = np.arange(size, dtype=np.float64)
    ramp = np.minimum(np.minimum(i + 0.5, size - i - 0.5) / overlap, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)


def aligned(tile_size: int, overlap: int, align: int) -> tuple[int, int]:
    """(tile_size, overlap) rounded to multiples of `align` (down, up)."""
    tile_size = max(tile_size // align, 1) * align
    return tile_size, min(-(-overlap // align) * align, tile_size - align)


def tiles(
    height: int, width: int, tile_size: int, overlap: int, align: int = 1
) -> list[tuple]:
    """`(y, x, h, w)` of the tiles covering an image (padded to a multiple of
    `align` when tiled), row by row; one box when it fits in one tile."""
    if height <= tile_size and width <= tile_size:
        return [(0, 0, height, width)]
    height, width = height + -height % align, width + -width % align
    tile_size, overlap = aligned(tile_size, overlap, align)
    th, tw = min(tile_size, height), min(tile_size, width)
    return [
        (y, x, th, tw)
        for y in tile_starts(height, th, overlap)
        for x in tile_starts(width, tw, overlap)
    ]


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def process_tiled(
    image: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    tile_size: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
    align: int = 1,
) -> np.ndarray:
    """`fn` applied to `image` [H, W, C] in tiles; returns [H, W, C'] float32.

    `fn` maps a float32 batch [N, h, w, C] to [N, h, w, C'] (same h, w).
    Tiles are `tile_size` squares (clipped to the image), consecutive tiles
    overlap by at least `overlap` (< tile_size) pixels, `batch_size` tiles go
    through `fn` at a time, and `progress(n)` is called after each batch of n
    tiles. An image no larger than `tile_size` either way is one call.

    `align`: the model's total stride (4 for UID-GAN). Tiles then start at
    multiples of it, so every tile sees the sampling grid of the whole image
    (the image is reflect-padded at the bottom/right to a multiple of
    `align`, as the model pads a whole image, and the result cropped back).
    """
    if tile_size < 1 or batch_size < 1 or align < 1:
        raise ValueError("tile_size, batch_size and align must be >= 1")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be in [0, tile_size), got {overlap}")
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    if height <= tile_size and width <= tile_size:
        out = np.asarray(fn(image[None]), np.float32)[0]
        if progress:
            progress(1)
        return out
    boxes = tiles(height, width, tile_size, overlap, align)
    tile_size, overlap = aligned(tile_size, overlap, align)
    pad = [(0, -height % align), (0, -width % align), (0, 0)]
    mode = "reflect" if min(height, width) > align else "symmetric"
    padded = np.pad(image, pad, mode=mode)
    th, tw = boxes[0][2], boxes[0][3]
    weight = (
        blend_window(th, overlap)[:, None, None]
        * blend_window(tw, overlap)[None, :, None]
    )
    total = weight_sum = None
    for chunk in _chunks(boxes, batch_size):
        batch = np.stack([padded[y : y + h, x : x + w] for y, x, h, w in chunk])
        outputs = np.asarray(fn(batch), np.float32)
        if total is None:
            shape = padded.shape[:2]
            total = np.zeros((*shape, outputs.shape[-1]), np.float32)
            weight_sum = np.zeros((*shape, 1), np.float32)
        for (y, x, h, w), out in zip(chunk, outputs):
            total[y : y + h, x : x + w] += out * weight
            weight_sum[y : y + h, x : x + w] += weight
        if progress:
            progress(len(chunk))
    return (total / weight_sum)[:height, :width]
