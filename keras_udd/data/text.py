"""Line pages of the `text` domain (`--text-pages lines`): the earlier domain.

Page `i` is drawn from `np.random.default_rng([seed, i])` alone, so the pool
is rendered lazily inside the pipeline (a few milliseconds per page) and is the
same on every run with the same fonts. Each page: lines of random words,
numbers and punctuation in one font (the regular faces of the pinned set,
`keras_udd.data.fonts`, or `--font-dir`) at a size relative to the page, with
random line spacing, left margin, ink and paper colours (`TONES`), a slight
rotation and a slight illumination gradient. The default pages are
`keras_udd.data.document`'s.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

# Tone ranges: (paper grey level, paper tint per channel, ink grey level, ink
# tint), each U(lo, hi) on 0..255. "varied": dark inks on light tinted papers;
# "document": near-black ink on near-white paper, as scanned documents (the
# paper's text domain).
TONES = {
    "varied": ((215, 255), (-12, 12), (0, 90), (-15, 15)),
    "document": ((235, 255), (-4, 4), (0, 30), (-5, 5)),
}

WORDS = tuple(
    """the of and to in is was for that on as with by he at from his an were are
    which this be or had not first one their its new after but who they have her
    she two been other when there all during into school time may years more most
    only over city some world would where later up such used many can state about
    national out known university united then made system people image blur sharp
    camera motion kernel data model paper table figure result method section page
    chapter report number total value using between under three while since both
    before through each however work part also world river public history family
    government series company music group high american international following
    number season early game north south east west found development several
    received life million days series order light water house small large power
    field court total process example based general second however within""".split()
)
PUNCTUATION = (",", ".", ";", ":", "", "", "", "", "", "")


class TextRenderer:
    """Renders document `i` of a seeded pool: uint8 `[height, width, 3]`.

    Args:
        height: page height in pixels (the shorter side; the pipeline's
            `load_size`). Width is `height * U(1, 1.5)`.
        seed: pool seed; page `i` depends only on `(seed, i)` and the fonts.
        fonts: font file paths (`keras_udd.data.fonts`); empty = Pillow's
            built-in font.
        tones: a key of `TONES` (the pages differ only in their colours).

    Font sizes are `U(0.06, 0.15) * height` px (9-22 px at 144).
    """

    def __init__(
        self,
        height: int,
        seed: int,
        fonts: tuple[str, ...] = (),
        tones: str = "varied",
    ):
        if tones not in TONES:
            raise ValueError(f"tones must be one of {tuple(TONES)}, got {tones!r}")
        self.height = height
        self.seed = seed
        self.fonts = tuple(fonts)
        self.tones = tones
        self._local = threading.local()  # Per-thread FreeType objects.
        if not self.fonts:
            logger.info("no TrueType fonts found; rendering with Pillow's font")

    def _font(self, index: int, size: int):
        cache = getattr(self._local, "fonts", None)
        if cache is None:
            cache = self._local.fonts = {}
        key = (index, size)
        if key not in cache:
            if self.fonts:
                cache[key] = ImageFont.truetype(self.fonts[index], size)
            else:
                cache[key] = ImageFont.load_default(size=size)
        return cache[key]

    def _line(self, rng: np.random.Generator, chars: int) -> str:
        words = []
        length = 0
        while length < chars:
            if rng.uniform() < 0.1:
                word = str(rng.integers(0, 10 ** rng.integers(1, 5)))
            else:
                word = WORDS[rng.integers(len(WORDS))]
                if rng.uniform() < 0.15:
                    word = word.capitalize()
                word += PUNCTUATION[rng.integers(len(PUNCTUATION))]
            words.append(word)
            length += len(word) + 1
        return " ".join(words)

    def render(self, index: int) -> np.ndarray:
        """Page `index` as uint8 `[height, width, 3]`."""
        rng = np.random.default_rng([self.seed, index])
        h = self.height
        w = int(round(h * rng.uniform(1.0, 1.5)))
        margin = int(0.1 * max(h, w)) + 2  # Room for the rotation.
        ch, cw = h + 2 * margin, w + 2 * margin
        paper_grey, paper_tint, ink_grey, ink_tint = TONES[self.tones]
        paper = np.clip(rng.uniform(*paper_grey) + rng.uniform(*paper_tint, 3), 0, 255)
        ink = np.clip(rng.uniform(*ink_grey) + rng.uniform(*ink_tint, 3), 0, 255)
        paper_rgb = tuple(int(v) for v in paper)
        ink_rgb = tuple(int(v) for v in ink)
        page = Image.new("RGB", (cw, ch), paper_rgb)
        draw = ImageDraw.Draw(page)

        font_index = int(rng.integers(len(self.fonts))) if self.fonts else 0
        size = max(6, int(round(h * rng.uniform(0.06, 0.15))))
        font = self._font(font_index, size)
        spacing = size * rng.uniform(1.05, 1.6)
        chars = int(cw / (0.5 * size)) + 2  # Lines overflow the right edge.
        x0 = margin + rng.uniform(-0.5, 2.0) * size
        y = margin + rng.uniform(-1.0, 0.5) * size
        while y < ch:
            if rng.uniform() < 0.08:  # Paragraph break.
                y += spacing
                continue
            indent = size * rng.uniform(0, 3) if rng.uniform() < 0.1 else 0.0
            draw.text((x0 + indent, y), self._line(rng, chars), font=font, fill=ink_rgb)
            y += spacing

        angle = rng.uniform(-3.0, 3.0)
        page = page.rotate(angle, Image.Resampling.BICUBIC, fillcolor=paper_rgb)
        page = page.crop((margin, margin, margin + w, margin + h))
        out = np.asarray(page, dtype=np.float32)
        # Slight illumination gradient, as on a scanned or photographed page.
        gx, gy = rng.uniform(-0.06, 0.06, 2)
        ramp = (
            1.0
            + gx * np.linspace(-1, 1, w)[None, :]
            + gy * np.linspace(-1, 1, h)[:, None]
        )
        return np.clip(np.round(out * ramp[..., None]), 0, 255).astype(np.uint8)

    def __call__(self, source_id) -> np.ndarray:
        """For `tf.numpy_function`: id `b"text/<index>"` -> the page."""
        source_id = source_id.decode() if isinstance(source_id, bytes) else source_id
        return self.render(int(str(source_id).rsplit("/", 1)[-1]))
