"""The photographed / scanned look of a document page, in numpy.

`photograph(ink, rng, textures)` turns an ink coverage map (what a page's
text covers, 0..1) into an RGB photo of that page: paper tone and tint,
paper texture, ink tone, bleed and fading, show-through of the other side,
uneven illumination (gradient, vignetting, a soft shadow, the light's colour)
and sensor noise; JPEG is applied by the caller. The effects are
the ones augraphy (github.com/sparkfish/augraphy) offers for paper, ink and
lighting (its ColorPaper, NoiseTexturize, InkBleed, LowInkRandomLines,
BleedThrough, LightingGradient, ShadowCast, SubtleNoise, Jpeg), written here
as a few array operations each: augraphy's own take 11-86 ms per effect on a
512 x 500 page and seconds for some (`bench/data_pipeline.py --augraphy`
measures them), this whole look takes a few milliseconds, so pages are
rendered inside the training pipeline.

Every random choice comes from the generator passed in, so a page is a
function of its seed. `LOOK` holds the ranges (grey levels on 0..255).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Look:
    """Ranges of the photographed look (uniform draws unless noted)."""

    paper_grey: tuple[float, float] = (150.0, 245.0)  # Exposure of the paper.
    paper_tint: float = 6.0  # +- per channel, plain paper.
    coloured_paper: float = 0.2  # Chance of coloured paper ...
    coloured_tint: float = 28.0  # ... tinted up to this much per channel.
    ink_grey: tuple[float, float] = (0.0, 80.0)  # Relative to black.
    ink_tint: float = 12.0
    bleed_sigma: tuple[float, float] = (0.0, 0.7)  # Ink spread, px.
    ink_gain: tuple[float, float] = (0.8, 1.6)  # Coverage gamma (<1 thinner).
    fading: tuple[float, float] = (0.0, 0.35)  # Low-ink patches, depth.
    show_through: float = 0.2  # Chance of the other side showing ...
    show_through_strength: tuple[float, float] = (0.03, 0.12)  # ... this much.
    texture: tuple[float, float] = (0.0, 0.02)  # Paper grain amplitude (std).
    gradient: tuple[float, float] = (0.0, 0.35)  # Light falloff across the page.
    vignette: tuple[float, float] = (0.0, 0.3)
    shadow: float = 0.3  # Chance of a soft shadow ...
    shadow_depth: tuple[float, float] = (0.1, 0.45)  # ... darkening this much.
    light_tint: float = 0.05  # Colour of the light, +- per channel gain.
    noise_sigma: tuple[float, float] = (0.0, 2.0)  # Sensor noise of a sharp photo.


LOOK = Look()


def texture_bank(seed, count: int = 8, size: int = 512) -> np.ndarray:
    """Paper grain fields: float32 `[count, size, size]`, zero mean, unit std
    (white noise band-passed at a random scale of 1-4 px, plus fibres along
    one axis)."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    bank = np.empty((count, size, size), np.float32)
    for i in range(count):
        scale = rng.uniform(1.0, 4.0)
        stretch = rng.uniform(1.0, 3.0)  # Fibres: longer along x.
        envelope = np.exp(-((fx * stretch) ** 2 + fy**2) * (np.pi * scale) ** 2)
        spectrum = np.fft.rfft2(rng.standard_normal((size, size))) * envelope
        field = np.fft.irfft2(spectrum, s=(size, size))
        bank[i] = (field - field.mean()) / max(field.std(), 1e-6)
    return bank


def _smooth_field(rng, shape, cells: int) -> np.ndarray:
    """A smooth random field in [0, 1] of `shape`: uniform noise on a
    `cells` x `cells` grid, bicubic-upsampled."""
    grid = rng.uniform(0.0, 1.0, (cells, cells)).astype(np.float32)
    field = Image.fromarray(grid, mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.BICUBIC
    )
    return np.clip(np.asarray(field), 0.0, 1.0)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a 2-D float map in [0, 1] (Pillow, 8-bit)."""
    if sigma < 0.05:
        return image
    from PIL import ImageFilter

    img = Image.fromarray(np.round(image * 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(img, np.float32) / 255.0


def _illumination(rng, h: int, w: int, look: Look) -> np.ndarray:
    """The light on the page: float32 `[h, w, 3]` gains around 1 (computed on
    a 4x coarser grid: light varies slowly)."""
    gh, gw = -(-h // 4) + 1, -(-w // 4) + 1
    y = np.linspace(-1.0, 1.0, gh, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, gw, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y  # In [-1.4, 1.4].
    light = 1.0 + 0.5 * rng.uniform(*look.gradient) * ramp
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    falloff = rng.uniform(*look.vignette) * ((x - cx) ** 2 + (y - cy) ** 2) / 2
    light = light * (1.0 - falloff)
    if rng.uniform() < look.shadow:
        # A soft-edged shadow over one side of a random line.
        theta = rng.uniform(0, 2 * np.pi)
        offset = rng.uniform(-0.8, 0.8)
        softness = rng.uniform(0.05, 0.4)
        side = (np.cos(theta) * x + np.sin(theta) * y - offset) / softness
        shade = 1.0 / (1.0 + np.exp(-np.clip(side, -30, 30)))
        light = light * (1.0 - rng.uniform(*look.shadow_depth) * shade)
    light = np.clip(light, 0.2, 1.2).astype(np.float32)
    full = Image.fromarray(light, mode="F").resize((w, h), Image.Resampling.BILINEAR)
    tint = 1.0 + rng.uniform(-look.light_tint, look.light_tint, 3)
    return np.asarray(full)[..., None] * tint.astype(np.float32)


def photograph(
    ink: np.ndarray,
    rng: np.random.Generator,
    textures: np.ndarray,
    look: Look = LOOK,
) -> np.ndarray:
    """A photo of a page whose text covers `ink`.

    Args:
        ink: float32 `[H, W]` ink coverage in [0, 1] (1 = full ink).
        rng: the page's generator.
        textures: `texture_bank(...)` fields, at least `[n, H, W]` large or
            tiled.
        look: the ranges.

    Returns:
        float32 `[H, W, 3]` in [0, 1] (before JPEG and 8-bit rounding).
    """
    h, w = ink.shape
    # Ink: spread, thickness and low-ink patches.
    coverage = _blur(ink, rng.uniform(*look.bleed_sigma))
    coverage = 1.0 - (1.0 - coverage) ** rng.uniform(*look.ink_gain)
    coverage *= 1.0 - rng.uniform(*look.fading) * _smooth_field(rng, (h, w), 6)
    if rng.uniform() < look.show_through:  # The other side's text, mirrored.
        back = _blur(ink[:, ::-1], 1.5) * rng.uniform(*look.show_through_strength)
        back = np.roll(back, int(rng.integers(h)), axis=0)
    else:
        back = np.float32(0.0)
    # Paper and ink colours.
    if rng.uniform() < look.coloured_paper:
        tint = rng.uniform(-look.coloured_tint, look.coloured_tint, 3)
    else:
        tint = rng.uniform(-look.paper_tint, look.paper_tint, 3)
    paper = np.clip(rng.uniform(*look.paper_grey) + tint, 0, 255) / 255.0
    ink_tint = rng.uniform(-look.ink_tint, look.ink_tint, 3)
    ink_rgb = np.clip(rng.uniform(*look.ink_grey) + ink_tint, 0, 255) / 255.0
    paper, ink_rgb = paper.astype(np.float32), ink_rgb.astype(np.float32)
    # Paper grain: a random window of a texture field (tiled if small).
    field = textures[rng.integers(len(textures))]
    if field.shape[0] < h or field.shape[1] < w:
        field = np.tile(field, (-(-h // field.shape[0]), -(-w // field.shape[1])))
    oy = rng.integers(field.shape[0] - h + 1)
    ox = rng.integers(field.shape[1] - w + 1)
    grain = np.float32(rng.uniform(*look.texture)) * field[oy : oy + h, ox : ox + w]
    c = coverage[..., None]
    paper_map = paper * ((1.0 + grain) * (1.0 - back))[..., None]
    page = (paper_map + (ink_rgb - paper_map) * c) * _illumination(rng, h, w, look)
    sigma = np.float32(rng.uniform(*look.noise_sigma) / 255.0)
    page += rng.standard_normal(page.shape, dtype=np.float32) * sigma
    return np.clip(page, 0.0, 1.0, out=page)
