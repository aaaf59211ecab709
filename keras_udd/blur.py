"""Blur synthesis: camera-shake, Gaussian and defocus kernels, and applying them.

Everything here is numpy (plus Pillow for JPEG) and reproducible from a seed;
no global random state is read. The `tf.data` versions of the same operations
live in `keras_udd.data.degrade`.

Camera shake follows Boracchi and Foi (2012), "Modeling the Performance of
Image Restoration from Motion Blur", as DeblurGAN implements it
(`motion_blur/generate_trajectory.py` `Trajectory` and
`motion_blur/generate_PSF.py` `PSF`): a random trajectory of complex positions
(2000 samples, total length `max_len` = 60 px, on a 64-px canvas) with an
"anxiety" `expl` drawn from DeblurGAN's list, integrated over a random exposure
fraction (1/10, 1/2 or all of it) and rasterised by bilinear (triangle)
splatting. Differences from DeblurGAN, all deliberate:

- the trajectory is scaled by `size / 64` onto a `size` x `size` kernel (at
  `size=64` the geometry is DeblurGAN's), and centred on its centre of mass so
  that blurring does not shift the image;
- every kernel is normalised to sum to 1 (DeblurGAN min-max normalises the
  blurred image instead);
- the random numbers of kernel `i` come from `np.random.default_rng([*seed, i])`
  only, so a bank of `n` kernels is a prefix of a bank of `m > n` kernels.
"""

# Attribution: `camera_shake_trajectories`, `exposure_weights`, the MOTION_*
# constants and the exposure choice in `motion_kernels` are adapted (vectorised,
# reseeded) from DeblurGAN's motion_blur/ code, https://github.com/KupynOrest/
# DeblurGAN (Kupyn, Budzan, Mykhailych, Mishkin, Matas), distributed under the
# BSD 2-clause licence of that repository, "Copyright (c) 2017, Jun-Yan Zhu and
# Taesung Park". The licence text and details are in the NOTICE file.

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

KINDS = ("motion", "gaussian", "defocus")
# DeblurGAN's `blur_image.py` draws the trajectory anxiety from this list.
MOTION_EXPL = (0.01, 0.009, 0.008, 0.007, 0.005, 0.003)
# DeblurGAN's `PSF` exposure fractions; `part` in {1, 2, 3} picks one.
MOTION_FRACTIONS = (1 / 100, 1 / 10, 1 / 2, 1.0)
MOTION_CANVAS = 64
MOTION_MAX_LEN = 60.0
MOTION_ITERS = 2000


def _seed_list(seed: int | Sequence[int]) -> list[int]:
    return [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]


def camera_shake_trajectories(
    rngs: Sequence[np.random.Generator],
    iters: int = MOTION_ITERS,
    max_len: float = MOTION_MAX_LEN,
    canvas: int = MOTION_CANVAS,
) -> tuple[np.ndarray, np.ndarray]:
    """Random camera-shake trajectories (DeblurGAN `Trajectory.fit`).

    Args:
        rngs: one generator per trajectory; trajectory `i` draws all its random
            numbers from `rngs[i]`.
        iters: samples per trajectory (2000).
        max_len: total path length in canvas pixels (60).
        canvas: canvas size the trajectory is centred on (64).

    Returns:
        `(x, expl)`: complex128 positions `[n, iters]` (real part = column,
        imaginary part = row, in canvas pixels) and the anxiety `expl` `[n]`.
    """
    n = len(rngs)
    expl = np.empty(n)
    centripetal = np.empty(n)
    prob_big_shake = np.empty(n)
    gaussian_shake = np.empty(n)
    init_angle = np.empty(n)
    big_u = np.empty((n, iters - 1))
    big_angle = np.empty((n, iters - 1))
    noise = np.empty((n, iters - 1), dtype=np.complex128)
    for i, rng in enumerate(rngs):
        expl[i] = rng.choice(MOTION_EXPL)
        centripetal[i] = 0.7 * rng.uniform()
        prob_big_shake[i] = 0.2 * rng.uniform()
        gaussian_shake[i] = 10.0 * rng.uniform()
        init_angle[i] = 360.0 * rng.uniform()
        big_u[i] = rng.uniform(size=iters - 1)
        big_angle[i] = rng.uniform(size=iters - 1)
        normal = rng.standard_normal((2, iters - 1))
        noise[i] = normal[0] + 1j * normal[1]

    step = max_len / (iters - 1)
    # DeblurGAN sets |v| = expl for the first step (expl > 0 always here).
    v = np.exp(1j * np.deg2rad(init_angle)) * expl
    x = np.zeros((n, iters), dtype=np.complex128)
    big_turn = 2.0 * np.exp(1j * (np.pi + (big_angle - 0.5)))
    is_big = big_u < (prob_big_shake * expl)[:, None]
    shake = (gaussian_shake * expl * step)[:, None] * noise
    pull = (centripetal * expl * step)[:, None]
    for t in range(iters - 1):
        dv = np.where(is_big[:, t], v * big_turn[:, t], 0.0)
        dv = dv + shake[:, t] - pull[:, 0] * x[:, t]
        v = v + dv
        v = v / np.abs(v) * step
        x[:, t + 1] = x[:, t] + v

    # Centre the motion on the canvas, as DeblurGAN does.
    x = x - (x.real.min(axis=1) + 1j * x.imag.min(axis=1))[:, None]
    x = x - (np.mod(x[:, 0].real, 1.0) + 1j * np.mod(x[:, 0].imag, 1.0))[:, None]
    x = x + (1 + 1j)
    x = (
        x
        + (
            np.ceil((canvas - x.real.max(axis=1)) / 2)
            + 1j * np.ceil((canvas - x.imag.max(axis=1)) / 2)
        )[:, None]
    )
    return x, expl


def exposure_weights(iters: int, part: int) -> np.ndarray:
    """Per-sample weights of a trajectory integrated up to an exposure fraction.

    Vectorised form of the `t_proportion` rule of DeblurGAN's `PSF.fit`, summed
    over the cumulative fractions `MOTION_FRACTIONS[: part + 1]`.

    Returns:
        float64 `[iters]`, non-negative.
    """
    t = np.arange(iters, dtype=np.float64)
    weights = np.zeros(iters)
    prev = 0.0
    for fraction in MOTION_FRACTIONS[: part + 1]:
        hi, lo = fraction * iters, prev * iters
        weights += np.select(
            [
                (hi >= t) & (lo < t - 1),
                (hi >= t - 1) & (lo < t - 1),
                (hi >= t) & (lo < t),
                (hi >= t - 1) & (lo < t),
            ],
            [np.ones_like(t), hi - (t - 1), t - lo, np.full_like(t, hi - lo)],
            0.0,
        )
        prev = fraction
    return weights


def splat(
    points: np.ndarray, weights: np.ndarray, size: int, center: bool = True
) -> np.ndarray:
    """Rasterise weighted points onto a grid by bilinear (triangle) splatting.

    Args:
        points: complex `[m]`, real = column, imag = row, in pixels.
        weights: `[m]` non-negative.
        size: output is `size` x `size`.
        center: move the weighted centre of mass to the grid centre first.

    Returns:
        float32 `[size, size]` summing to 1 (a centred delta if nothing lands
        on the grid).
    """
    if center:
        com = np.sum(points * weights) / max(np.sum(weights), 1e-12)
        points = points - com + (size - 1) / 2 * (1 + 1j)
    col, row = points.real, points.imag
    c0, r0 = np.floor(col), np.floor(row)
    fc, fr = col - c0, row - r0
    grid = np.zeros(size * size)
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        r, c = (r0 + dr).astype(np.int64), (c0 + dc).astype(np.int64)
        inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
        grid += np.bincount(
            (r * size + c)[inside], (weights * w)[inside], minlength=size * size
        )
    return _normalise(grid.reshape(size, size))


def _normalise(kernel: np.ndarray) -> np.ndarray:
    total = kernel.sum()
    if not np.isfinite(total) or total <= 0:
        kernel = np.zeros_like(kernel)
        kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0
        return kernel.astype(np.float32)
    return (kernel / total).astype(np.float32)


def motion_kernels(
    rngs: Sequence[np.random.Generator],
    size: int = MOTION_CANVAS,
    extents: Sequence[float] | None = None,
) -> np.ndarray:
    """Camera-shake PSFs, one per generator (DeblurGAN `Trajectory` + `PSF`).

    The exposure part is drawn from {1, 2, 3} (fractions 1/10, 1/2, 1 of the
    trajectory), as DeblurGAN's `blur_image.py` does, after the trajectory.
    The 64-px canvas is scaled onto `extents[i]` px (default: `size`), and
    the path centred on the `size` x `size` kernel.

    Returns:
        float32 `[n, size, size]`, each summing to 1.
    """
    x, _ = camera_shake_trajectories(rngs)
    extents = [size] * len(rngs) if extents is None else extents
    out = np.empty((len(rngs), size, size), dtype=np.float32)
    for i, rng in enumerate(rngs):
        weights = exposure_weights(x.shape[1], int(rng.integers(1, 4)))
        out[i] = splat(x[i] * (extents[i] / MOTION_CANVAS), weights, size)
    return out


def linear_kernel(size: int, length: float, angle: float) -> np.ndarray:
    """Uniform straight motion of `length` px at `angle` radians, anti-aliased,
    centred: float32 `[size, size]` summing to 1."""
    n = max(2, int(np.ceil(4 * length)) + 1)
    t = np.linspace(-length / 2, length / 2, n)
    points = t * np.exp(1j * angle) + (size - 1) / 2 * (1 + 1j)
    return splat(points, np.ones(n), size)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Isotropic Gaussian kernel, float32 `[size, size]` summing to 1."""
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (r / max(sigma, 1e-6)) ** 2)
    return _normalise(np.outer(g, g))


def defocus_kernel(size: int, radius: float, supersample: int = 8) -> np.ndarray:
    """Anti-aliased uniform disk (out-of-focus blur), float32 `[size, size]`.

    Pixel coverage is estimated on a `supersample` x `supersample` subgrid.
    """
    s = supersample
    sub = (np.arange(size * s) + 0.5) / s - size / 2
    inside = (sub[:, None] ** 2 + sub[None, :] ** 2) <= max(radius, 0.5) ** 2
    return _normalise(inside.reshape(size, s, size, s).mean(axis=(1, 3)))


def random_kernel(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """One random kernel of a kind, float32 `[size, size]` summing to 1.

    Parameter ranges scale with `size`: Gaussian sigma ~ U(size/60, size/10),
    defocus radius ~ U(size/30, size/8) (for `size=31`: sigma 0.5-3.1 px,
    radius 1.0-3.9 px); motion as `motion_kernels`.
    """
    if kind == "motion":
        return motion_kernels([rng], size)[0]
    if kind == "gaussian":
        return gaussian_kernel(size, rng.uniform(size / 60, size / 10))
    if kind == "defocus":
        return defocus_kernel(size, rng.uniform(size / 30, size / 8))
    raise ValueError(f"unknown blur kind {kind!r}; expected one of {KINDS}")


def _draw_kinds(n, seed, kinds, weights):
    """`(kind of kernel i, generator i after that draw)` for i < n."""
    kinds = tuple(kinds)
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown blur kind {kind!r}; expected one of {KINDS}")
    if n < 1:
        raise ValueError(f"need n >= 1, got n={n}")
    p = np.ones(len(kinds)) if weights is None else np.asarray(weights, float)
    if p.shape != (len(kinds),) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"weights {weights!r} do not match kinds {kinds!r}")
    p = p / p.sum()
    base = _seed_list(seed)
    rngs = [np.random.default_rng([*base, i]) for i in range(n)]
    return tuple(kinds[rng.choice(len(kinds), p=p)] for rng in rngs), rngs


def bank_kinds(
    n: int,
    seed: int | Sequence[int] = 0,
    kinds: Sequence[str] = KINDS,
    weights: Sequence[float] | None = (0.8, 0.1, 0.1),
) -> tuple[str, ...]:
    """The kind of each kernel of `make_kernel_bank(n, ..., seed, kinds,
    weights)`."""
    return _draw_kinds(n, seed, kinds, weights)[0]


def make_kernel_bank(
    n: int,
    size: int = 31,
    seed: int | Sequence[int] = 0,
    kinds: Sequence[str] = KINDS,
    weights: Sequence[float] | None = (0.8, 0.1, 0.1),
) -> np.ndarray:
    """A bank of random blur kernels.

    Kernel `i` is drawn from `np.random.default_rng([*seed, i])` alone: its kind
    (by `weights`, default 80% motion, 10% Gaussian, 10% defocus) and its
    parameters, so the same seed gives the same bank and a smaller bank is a
    prefix of a larger one. Motion kernels are synthesised together (vectorised
    over the bank); 1000 kernels take about a second on one core.

    Args:
        n: number of kernels.
        size: kernel side in pixels (odd sizes keep the centre on a pixel).
        seed: an int or a sequence of ints.
        kinds: subset of `KINDS`.
        weights: probability of each kind (normalised); None = uniform.

    Returns:
        float32 `[n, size, size]`, every kernel summing to 1.
    """
    if size < 1:
        raise ValueError(f"need n >= 1 and size >= 1, got n={n}, size={size}")
    chosen, rngs = _draw_kinds(n, seed, kinds, weights)
    bank = np.empty((n, size, size), dtype=np.float32)
    motion = [i for i, kind in enumerate(chosen) if kind == "motion"]
    for start in range(0, len(motion), 256):  # Bounded memory per chunk.
        idx = motion[start : start + 256]
        bank[idx] = motion_kernels([rngs[i] for i in idx], size)
    for i, kind in enumerate(chosen):
        if kind != "motion":
            bank[i] = random_kernel(rngs[i], size, kind)
    return bank


# The blur families of real photos (`photo_kernel_bank`): name -> range of its
# size parameter in px and its share of a training bank. Ranges follow the
# text data of Hradis et al. (BMVC 2015): defocus radius up to 4 px,
# random-walk motion kernels of 5-21 px; "sharp" is a nearly sharp image.
PHOTO_FAMILIES = {
    "sharp": ("Gaussian sigma", (0.0, 0.5), 0.10),
    "gaussian": ("Gaussian sigma", (0.5, 2.0), 0.15),
    "defocus": ("disc radius", (0.5, 4.0), 0.25),
    "linear": ("motion length", (3.0, 21.0), 0.15),
    "shake": ("camera-shake size", (5.0, 21.0), 0.35),
}


def family_kernel(
    family: str, value: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """One kernel of a `PHOTO_FAMILIES` family with size parameter `value`
    (px), on a `size` x `size` grid: float32 summing to 1. `rng` draws the
    motion's direction or the camera-shake path."""
    if family in ("sharp", "gaussian"):
        return (
            gaussian_kernel(size, value)
            if value >= 0.05
            else _normalise(np.zeros((size, size)))
        )  # A delta.
    if family == "defocus":
        return defocus_kernel(size, value)
    if family == "linear":
        return linear_kernel(size, value, rng.uniform(0, np.pi))
    if family == "shake":
        return motion_kernels([rng], size, [value])[0]
    raise ValueError(
        f"unknown blur family {family!r}; expected one of {tuple(PHOTO_FAMILIES)}"
    )


def photo_kernel_bank(
    n: int,
    size: int,
    seed: int | Sequence[int] = 0,
    stratified: bool = False,
    only: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bank of the blur families of real photos, with what each kernel is.

    Kernel `i` draws from `np.random.default_rng([*seed, i])` alone. Drawn
    (default): its family by the shares of `PHOTO_FAMILIES` (only among
    the families named in `only` if given, their shares renormalised), its
    size parameter uniform in the family's range. `stratified` (held-out
    sets, to be sliced by family and size): kernel `i` is of family `i % 5`
    (in the order of `PHOTO_FAMILIES`), with sizes spread evenly over the
    family's range (the `j`-th kernel of a family at quantile `(j + U(0, 1))
    / m` of `m` kernels of that family).

    Returns:
        `(bank, family_index, value)`: float32 `[n, size, size]` (every kernel
        sums to 1), int32 `[n]` (index into `PHOTO_FAMILIES`), float32 `[n]`
        (the size parameter in px).
    """
    if n < 1 or size < 1:
        raise ValueError(f"need n >= 1 and size >= 1, got n={n}, size={size}")
    names = tuple(PHOTO_FAMILIES)
    if only is not None and not (only and set(only) <= set(names)):
        raise ValueError(f"blur families must be some of {names}, got {only}")
    if stratified and only is not None:
        raise ValueError("a stratified bank holds every family")
    drawn = [i for i, f in enumerate(names) if only is None or f in only]
    shares = np.array([PHOTO_FAMILIES[names[i]][2] for i in drawn])
    base = _seed_list(seed)
    rngs = [np.random.default_rng([*base, i]) for i in range(n)]
    families = np.empty(n, np.int32)
    values = np.empty(n, np.float32)
    for i, rng in enumerate(rngs):
        if stratified:
            family = i % len(names)
            count = len(range(family, n, len(names)))
            quantile = (i // len(names) + rng.uniform()) / count
        else:
            family = drawn[int(rng.choice(len(drawn), p=shares / shares.sum()))]
            quantile = rng.uniform()
        lo, hi = PHOTO_FAMILIES[names[family]][1]
        families[i], values[i] = family, lo + (hi - lo) * quantile
    bank = np.empty((n, size, size), np.float32)
    shake = [i for i in range(n) if names[families[i]] == "shake"]
    for start in range(0, len(shake), 256):  # Vectorised, bounded memory.
        idx = shake[start : start + 256]
        bank[idx] = motion_kernels([rngs[i] for i in idx], size, values[idx])
    for i in range(n):
        if names[families[i]] != "shake":
            bank[i] = family_kernel(names[families[i]], float(values[i]), size, rngs[i])
    return bank, families, values


def save_kernel_bank(path: str | Path, bank: np.ndarray) -> None:
    """Writes a bank `[n, k, k]` to a `.npy` file (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(bank, dtype=np.float32))


def load_kernel_bank(path: str | Path) -> np.ndarray:
    """Reads a `.npy` bank `[n, k, k]` (square kernels, any source, e.g. real
    measured PSFs) and renormalises every kernel to sum to 1.

    Raises:
        FileNotFoundError: no such file.
        ValueError: wrong shape, negative or all-zero kernels.
    """
    bank = np.load(Path(path)).astype(np.float32)
    if bank.ndim == 2:
        bank = bank[None]
    if bank.ndim != 3 or bank.shape[1] != bank.shape[2] or bank.shape[0] < 1:
        raise ValueError(f"{path}: expected kernels [n, k, k], got {bank.shape}")
    sums = bank.sum(axis=(1, 2))
    if np.any(bank < 0) or np.any(sums <= 0) or not np.all(np.isfinite(sums)):
        raise ValueError(f"{path}: kernels must be non-negative with positive sums")
    return bank / sums[:, None, None]


def blur_image(image: np.ndarray, kernel: np.ndarray, pad_mode="reflect"):
    """Convolves each channel with `kernel` (FFT; same size out).

    Args:
        image: `[H, W]` or `[H, W, C]`, any float or integer dtype.
        kernel: `[k, k]`; true convolution (the kernel is flipped).
        pad_mode: `np.pad` mode for the borders ("reflect", "symmetric", ...).

    Returns:
        float32 array of the image's shape, same value range as the input.
    """
    img = np.asarray(image, dtype=np.float64)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    k = np.asarray(kernel, dtype=np.float64)
    kh, kw = k.shape
    h, w = img.shape[:2]
    pad = ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2), (0, 0))
    padded = np.pad(img, pad, mode=pad_mode)
    shape = padded.shape[:2]
    spec = np.fft.rfft2(padded, s=shape, axes=(0, 1))
    spec *= np.fft.rfft2(k, s=shape)[..., None]
    full = np.fft.irfft2(spec, s=shape, axes=(0, 1))
    out = full[kh - 1 : kh - 1 + h, kw - 1 : kw - 1 + w].astype(np.float32)
    return out[..., 0] if squeeze else out


def add_gaussian_noise(
    image: np.ndarray, std: float, rng: np.random.Generator
) -> np.ndarray:
    """Adds N(0, std^2) noise to a float image in [0, 1]; clipped to [0, 1]."""
    noisy = image + rng.normal(0.0, std, size=np.shape(image))
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def jpeg_recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG encodes and decodes a uint8 `[H, W, 3]` image with Pillow."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def degrade(
    image: np.ndarray,
    kernel: np.ndarray,
    rng: np.random.Generator,
    noise_std: float = 0.0,
    jpeg_quality: int | None = None,
) -> np.ndarray:
    """Blur, optional noise (std in [0, 1] units) and JPEG re-compression.

    Args:
        image: uint8 `[H, W, 3]`.

    Returns:
        uint8 `[H, W, 3]`.
    """
    out = blur_image(np.asarray(image, np.float32) / 255.0, kernel)
    if noise_std > 0:
        out = add_gaussian_noise(out, noise_std, rng)
    out = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    if jpeg_quality is not None:
        out = jpeg_recompress(out, jpeg_quality)
    return out
