"""Document pages of the `text` domain: layout with the pinned fonts, then the
photographed look.

Page `i` of a pool is drawn from `np.random.default_rng([seed, i])` alone, so
pools are rendered lazily inside the pipeline and are the same on every
machine (the fonts are pinned: `keras_udd.data.fonts`). A page is a window
of a document, as a photo or scan of a page shows it:

- layout: paragraphs of proportional text (left-aligned or justified, first
  lines indented or blocks spaced), headings (bold, larger, some numbered or
  centred), bulleted or numbered lists, inline monospace and italic words,
  monospace code blocks; a body x-height of 5-14 px (the 120-150 dpi of
  the paper's text data); line spacing 1.15-1.5; margins that may cut the
  text at the window's edges;
- geometry: a slight rotation (+-2 degrees) and perspective;
- look (`keras_udd.data.photo`): paper tone and tint, grain, ink tone,
  bleed and fading, show-through, uneven light, sensor noise; then JPEG
  (half the pages, quality 75-95).

`look="clean"` draws the same layouts as near-black ink on white paper,
without geometry or photo effects (for comparisons).
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from keras_udd.blur import jpeg_recompress
from keras_udd.data.fonts import Family
from keras_udd.data.photo import LOOK, photograph, texture_bank

LOOKS = ("photo", "clean")
X_HEIGHT = (5.0, 14.0)  # Body x-height in px.
HEIGHT_RATIO = (1.0, 1.4)  # Page height / width (portrait windows).
JPEG_PROB, JPEG_QUALITY = 0.5, (75, 95)

VOCABULARY = tuple(
    """the of and to in is was for that on as with by at from an are which this
    be or had not first one their its new after but they have been other when
    there all during into time may years more most only over some would where
    later such used many can state about out known then made system people
    image blur sharp camera motion kernel data model paper table figure result
    method section page chapter report number total value using between under
    three while since both before through each however work part also public
    history series order light water small large power field process example
    based general second within value values sample samples error errors
    measured measurement signal noise filter filters response frequency range
    input output layer layers network training test tests set sets size level
    levels function functions given shown following approach problem problems
    case cases point points line lines edge edges text document documents
    scanned printed character characters word words font fonts reading quality
    resolution pixel pixels estimate estimated parameter parameters average
    standard deviation mean lower higher better worse than each per under above
    below left right top bottom center note see also because therefore thus
    however although whereas unless until should must will could might device
    devices memory speed time times rate rates load loaded store stored read
    written file files user users server client request requests operation""".split()
)
CODE_WORDS = tuple(
    """x y i j n k buf len size data img out cfg args self ret err ptr idx tmp
    load save read write init run step fit predict main open close get set
    None True False return def int float str list dict""".split()
)
CODE_SYMBOLS = ("=", "(", ")", ":", ",", "+", "-", "*", "[", "]", ";", "->", "==")
PUNCTUATION = (",", ",", ",", ";", ":")
BULLETS = ("-", "*", "o")


@lru_cache(maxsize=256)
def _x_height_ratio(path: str) -> float:
    """x-height / font size of a face (from the glyph "x" at 100 px)."""
    top, bottom = ImageFont.truetype(path, 100).getbbox("x", anchor="ls")[1::2]
    return max((bottom - top) / 100.0, 0.3)


def _perspective(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """Pillow PERSPECTIVE coefficients mapping output points `dst` [4, 2]
    to input points `src` [4, 2]."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return tuple(np.linalg.solve(np.asarray(rows, float), np.asarray(rhs, float)))


class _Text:
    """Random tokens of a page (words, numbers, references, code)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.sentence_start = True

    def word(self) -> str:
        rng = self.rng
        r = rng.uniform()
        if r < 0.06:
            word = str(rng.integers(0, 10 ** rng.integers(1, 5)))
        elif r < 0.08:
            word = f"{rng.uniform(0, 100):.{rng.integers(1, 3)}f}"
            word += "%" if rng.uniform() < 0.3 else ""
        elif r < 0.10:
            word = ("Fig. ", "Table ", "Section ", "[", "(")[rng.integers(5)]
            word += str(rng.integers(1, 40))
            word += {"[": "]", "(": ")"}.get(word[0], "")
        else:
            word = VOCABULARY[rng.integers(len(VOCABULARY))]
            if rng.uniform() < 0.03:
                word += "-" + VOCABULARY[rng.integers(len(VOCABULARY))]
        if self.sentence_start:
            word = word[:1].upper() + word[1:]
        self.sentence_start = False
        r = rng.uniform()
        if r < 0.08:
            word += "."
            self.sentence_start = True
        elif r < 0.14:
            word += PUNCTUATION[rng.integers(len(PUNCTUATION))]
        return word

    def code(self) -> str:
        rng = self.rng
        if rng.uniform() < 0.3:
            return CODE_SYMBOLS[rng.integers(len(CODE_SYMBOLS))]
        word = CODE_WORDS[rng.integers(len(CODE_WORDS))]
        if rng.uniform() < 0.2:
            word += "_" + CODE_WORDS[rng.integers(len(CODE_WORDS))]
        if rng.uniform() < 0.15:
            word += "()"
        return word


class DocumentRenderer:
    """Renders page `i` of a seeded pool: uint8 `[height, width, 3]`.

    Args:
        width: page width in px, the shorter side (the pipeline's
            `load_size`); the height is `width * U(1, 1.4)`.
        seed: pool seed; page `i` depends only on `(seed, i)` and the fonts.
        families: the fonts (`keras_udd.data.fonts.families`).
        look: "photo" (the photographed look) or "clean".
    """

    def __init__(
        self,
        width: int,
        seed: int,
        families: tuple[Family, ...],
        look: str = "photo",
    ):
        if look not in LOOKS:
            raise ValueError(f"look must be one of {LOOKS}, got {look!r}")
        if not families:
            raise ValueError("no fonts to render pages with")
        self.width = width
        self.seed = seed
        self.families = tuple(families)
        self.look = look
        self.body = [f for f in families if f.role != "mono"] or list(families)
        self.mono = [f for f in families if f.role == "mono"] or self.body
        self._local = threading.local()  # Per-thread FreeType objects.
        self._textures = None

    @property
    def textures(self) -> np.ndarray:
        if self._textures is None:
            self._textures = texture_bank([self.seed, 7])
        return self._textures

    def _font(self, path: str, size: int):
        cache = getattr(self._local, "fonts", None)
        if cache is None:
            cache = self._local.fonts = {}
        key = (path, size)
        if key not in cache:
            cache[key] = ImageFont.truetype(path, size)
        return cache[key]

    def _sized(self, path: str, x_height: float, scale: float = 1.0):
        """The face at the size that gives it `x_height * scale` px."""
        size = max(6, int(round(x_height * scale / _x_height_ratio(path))))
        return self._font(path, size)

    def layout(self, index: int) -> np.ndarray:
        """The ink of page `index` (text laid out and seen by the camera,
        before the look): uint8 `[H, W]`, 255 = full ink."""
        return np.round(self._page_ink(index)[1] * 255).astype(np.uint8)

    def render(self, index: int) -> np.ndarray:
        """Page `index` as uint8 `[H, W, 3]`."""
        rng, ink = self._page_ink(index)
        if self.look == "clean":
            page = 1.0 - ink[..., None] * np.float32(0.9)
            return np.round(np.repeat(page, 3, -1) * 255).astype(np.uint8)
        page = photograph(ink, rng, self.textures, LOOK)
        page = np.round(page * 255).astype(np.uint8)
        if rng.uniform() < JPEG_PROB:
            page = jpeg_recompress(page, int(rng.integers(*JPEG_QUALITY)))
        return page

    def _page_ink(self, index: int) -> tuple[np.random.Generator, np.ndarray]:
        """The page's generator and its ink coverage, float32 `[H, W]`."""
        rng = np.random.default_rng([self.seed, index])
        w = self.width
        h = int(round(w * rng.uniform(*HEIGHT_RATIO)))
        return rng, self._ink(rng, h, w)

    def __call__(self, source_id) -> np.ndarray:
        """For `tf.numpy_function`: id `b"text/<index>"` -> the page."""
        source_id = source_id.decode() if isinstance(source_id, bytes) else source_id
        return self.render(int(str(source_id).rsplit("/", 1)[-1]))

    # Layout ------------------------------------------------------------------

    def _ink(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        """Ink coverage float32 `[h, w]` in [0, 1] of a laid-out page window."""
        pad = int(0.1 * max(h, w)) + 4  # Room for rotation and perspective.
        canvas = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
        draw = ImageDraw.Draw(canvas)
        body = self.body[rng.integers(len(self.body))]
        mono = self.mono[rng.integers(len(self.mono))]
        style = {
            "x_height": rng.uniform(*X_HEIGHT),
            "leading": rng.uniform(1.15, 1.5),
            "justify": rng.uniform() < 0.5,
            "indent": rng.uniform() < 0.5,
            "body": body,
            "mono": mono,
        }
        font = self._sized(body.face("regular"), style["x_height"])
        line = font.size * style["leading"]
        left = pad + w * rng.uniform(-0.06, 0.12)
        right = pad + w - w * rng.uniform(-0.06, 0.12)
        y = pad + rng.uniform(-1.5, 1.5) * line
        text = _Text(rng)
        last = None
        while y < pad + h + line:
            r = rng.uniform()
            if r < 0.12 and last != "heading":
                kind = "heading"
            elif r < 0.2:
                kind = "list"
            elif r < 0.25:
                kind = "code"
            else:
                kind = "paragraph"
            y = getattr(self, f"_{kind}")(draw, rng, text, style, left, right, y)
            y += line * rng.uniform(0.3, 1.0)
            last = kind
        if self.look == "clean":
            page = canvas.crop((pad, pad, pad + w, pad + h))
        else:
            page = self._camera(canvas, rng, pad, w, h)
        return np.asarray(page, np.float32) / 255.0

    def _camera(self, canvas, rng, pad: int, w: int, h: int) -> Image.Image:
        """The page window seen by a slightly rotated, tilted camera."""
        angle = np.deg2rad(rng.uniform(-2.0, 2.0))
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
        centre = np.array([w / 2, h / 2])
        rot = np.array(
            [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        )
        src = (corners - centre) @ rot.T + centre + pad
        src += rng.uniform(-0.03, 0.03, (4, 2)) * [w, h]  # Perspective.
        coeffs = _perspective(src, corners)
        return canvas.transform(
            (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC
        )

    def _line(self, draw, words, x0, x1, y, justify: bool) -> None:
        """Draws `(text, font)` words on the baseline `y` from `x0`; justified
        to `x1` if `justify`."""
        widths = [font.getlength(text) for text, font in words]
        space = words[0][1].getlength(" ")
        gap = space
        if justify and len(words) > 1:
            gap = max(space, (x1 - x0 - sum(widths)) / (len(words) - 1))
        x = x0
        for (text, font), width in zip(words, widths, strict=True):
            draw.text((x, y), text, font=font, fill=255, anchor="ls")
            x += width + gap

    def _flow(self, draw, tokens, x0, x1, y, line, justify, first_indent=0.0):
        """Breaks `(text, font)` tokens into lines between `x0` and `x1` from
        baseline `y`; returns the baseline after the last line."""
        current, width = [], first_indent
        indent = first_indent
        for text, font in tokens:
            w = font.getlength(text)
            space = font.getlength(" ") if current else 0.0
            if current and width + space + w > x1 - x0:
                self._line(draw, current, x0 + indent, x1, y, justify)
                y += line
                current, width, indent = [], 0.0, 0.0
                space = 0.0
            current.append((text, font))
            width += space + w
        if current:
            self._line(draw, current, x0 + indent, x1, y, False)
            y += line
        return y

    def _paragraph(self, draw, rng, text, style, left, right, y):
        xh = style["x_height"]
        faces = {
            kind: self._sized(style["body"].face(kind), xh)
            for kind in ("regular", "italic", "bold")
        }
        code = self._sized(style["mono"].face("regular"), xh)
        line = faces["regular"].size * style["leading"]
        n_words = int(rng.integers(8, 120))
        tokens, run, run_font = [], 0, faces["regular"]
        for _ in range(n_words):
            if run == 0:
                r = rng.uniform()
                run_font = (
                    faces["italic"]
                    if r < 0.04
                    else faces["bold"]
                    if r < 0.055
                    else code
                    if r < 0.08
                    else faces["regular"]
                )
                run = int(rng.integers(1, 4)) if run_font is not faces["regular"] else 1
            word = text.code() if run_font is code else text.word()
            tokens.append((word, run_font))
            run -= 1
        indent = faces["regular"].size * 1.5 if style["indent"] else 0.0
        return (
            self._flow(
                draw, tokens, left, right, y + line, line, style["justify"], indent
            )
            - line
        )

    def _heading(self, draw, rng, text, style, left, right, y):
        family = (
            style["body"]
            if rng.uniform() < 0.7
            else self.body[rng.integers(len(self.body))]
        )
        font = self._sized(
            family.face("bold"), style["x_height"], rng.uniform(1.1, 1.7)
        )
        words = [text.word().rstrip(".,;:") for _ in range(rng.integers(1, 6))]
        words[0] = words[0][:1].upper() + words[0][1:]
        if rng.uniform() < 0.5:
            parts = rng.integers(1, 10, rng.integers(1, 3))
            number = ".".join(str(part) for part in parts)
            words.insert(0, number)
        text.sentence_start = True
        line = font.size * 1.3
        y += line
        label = " ".join(words)
        x = left
        if rng.uniform() < 0.2:  # Centred.
            x = max(left, (left + right - font.getlength(label)) / 2)
        draw.text((x, y), label, font=font, fill=255, anchor="ls")
        return y + 0.3 * line

    def _list(self, draw, rng, text, style, left, right, y):
        font = self._sized(style["body"].face("regular"), style["x_height"])
        line = font.size * style["leading"]
        numbered = rng.uniform() < 0.4
        bullet = BULLETS[rng.integers(len(BULLETS))]
        hang = font.size * 1.5
        for item in range(int(rng.integers(2, 6))):
            mark = f"{item + 1}." if numbered else bullet
            draw.text((left + 0.3 * font.size, y + line), mark, font=font, fill=255,
                      anchor="ls")  # fmt: skip
            tokens = [(text.word(), font) for _ in range(rng.integers(3, 30))]
            y = self._flow(draw, tokens, left + hang, right, y + line, line, False)
            y -= line
        return y

    def _code(self, draw, rng, text, style, left, right, y):
        font = self._sized(style["mono"].face("regular"), style["x_height"], 0.95)
        line = font.size * 1.2
        indent = left + font.size * rng.uniform(1.0, 3.0)
        for _ in range(int(rng.integers(2, 7))):
            depth = int(rng.integers(0, 3)) * 2 * font.getlength(" ")
            words = " ".join(text.code() for _ in range(rng.integers(2, 9)))
            y += line
            draw.text((indent + depth, y), words, font=font, fill=255, anchor="ls")
        return y
