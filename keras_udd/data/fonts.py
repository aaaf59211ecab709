"""The pinned font set of the `text` domain: faces that `pip install` brings.

The document pages are drawn with font files of two of the package's
dependencies, never with the machine's fonts, so every machine renders the
same pages (installing Chromium once changed every split when system fonts
were used):

- matplotlib (`mpl-data/fonts/ttf`): DejaVu Serif, Sans and Sans Mono
  (Bitstream Vera licence), STIX General (a Times-like face, SIL OFL), and
  Computer Modern (the TeX faces, BaKoMa TrueType versions);
- ReportLab (`reportlab/fonts`): its standard Type 1 faces with the metrics of
  Times, Arial/Helvetica and Courier, the faces most documents are set in.

Their licences ship with those packages. `FAMILIES` lists 33 faces in 10
families; the `unseen` families (STIX General, Computer Modern Sans and
Typewriter: 6 faces) never appear in training, validation or test pages and
make the unseen-fonts split. `PINNED` holds each file's SHA-256, so a changed
font file (a new matplotlib or ReportLab release) is reported instead of
silently changing the pages. `--font-dir` replaces the set with a folder's
fonts (`folder_families`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

STYLES = ("regular", "bold", "italic", "bolditalic")
ROLES = ("serif", "sans", "mono")
SPLITS = ("train", "unseen")
FONT_SUFFIXES = (".ttf", ".otf", ".pfb")


@dataclass(frozen=True)
class Family:
    """A font family: `faces` maps a style of `STYLES` to a font file path.

    A missing style falls back to `regular` (bold) or to the closest style
    the family has (see `face`). `role` is one of `ROLES`; `split` "train"
    (training, validation and test pages) or "unseen" (the unseen-fonts
    split only).
    """

    name: str
    role: str
    split: str
    faces: dict[str, str]

    def face(self, style: str) -> str:
        """The file of `style`, else the nearest style the family has."""
        for candidate in (style, style.replace("italic", ""), "regular"):
            if candidate in self.faces:
                return self.faces[candidate]
        return next(iter(self.faces.values()))


# (name, role, split, package, folder in the package, {style: file}).
_SOURCES = (
    ("Times (ReportLab)", "serif", "train", "reportlab", "fonts",
     {"regular": "_er_____.pfb", "bold": "_eb_____.pfb",
      "italic": "_ei_____.pfb", "bolditalic": "_ebi____.pfb"}),
    ("Arial/Helvetica (ReportLab)", "sans", "train", "reportlab", "fonts",
     {"regular": "_a______.pfb", "bold": "_ab_____.pfb",
      "italic": "_ai_____.pfb", "bolditalic": "_abi____.pfb"}),
    ("Courier (ReportLab)", "mono", "train", "reportlab", "fonts",
     {"regular": "com_____.pfb", "bold": "cob_____.pfb",
      "italic": "coo_____.pfb", "bolditalic": "cobo____.pfb"}),
    ("DejaVu Serif", "serif", "train", "matplotlib", "mpl-data/fonts/ttf",
     {"regular": "DejaVuSerif.ttf", "bold": "DejaVuSerif-Bold.ttf",
      "italic": "DejaVuSerif-Italic.ttf", "bolditalic": "DejaVuSerif-BoldItalic.ttf"}),
    ("DejaVu Sans", "sans", "train", "matplotlib", "mpl-data/fonts/ttf",
     {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf",
      "italic": "DejaVuSans-Oblique.ttf", "bolditalic": "DejaVuSans-BoldOblique.ttf"}),
    ("DejaVu Sans Mono", "mono", "train", "matplotlib", "mpl-data/fonts/ttf",
     {"regular": "DejaVuSansMono.ttf", "bold": "DejaVuSansMono-Bold.ttf",
      "italic": "DejaVuSansMono-Oblique.ttf",
      "bolditalic": "DejaVuSansMono-BoldOblique.ttf"}),
    ("Computer Modern Roman", "serif", "train", "matplotlib", "mpl-data/fonts/ttf",
     {"regular": "cmr10.ttf", "bold": "cmb10.ttf", "italic": "cmti10.ttf"}),
    ("STIX General", "serif", "unseen", "matplotlib", "mpl-data/fonts/ttf",
     {"regular": "STIXGeneral.ttf", "bold": "STIXGeneralBol.ttf",
      "italic": "STIXGeneralItalic.ttf", "bolditalic": "STIXGeneralBolIta.ttf"}),
    ("Computer Modern Sans", "sans", "unseen", "matplotlib", "mpl-data/fonts/ttf",
     {"regular": "cmss10.ttf"}),
    ("Computer Modern Typewriter", "mono", "unseen", "matplotlib",
     "mpl-data/fonts/ttf", {"regular": "cmtt10.ttf"}),
)  # fmt: skip

# SHA-256 (first 16 hex digits) of every file of `_SOURCES`, as rendered by
# the shipped model's data (matplotlib 3.11, ReportLab 5.1).
PINNED = {
    "_er_____.pfb": "d9cbbcd211300fdf",
    "_eb_____.pfb": "adb1bfed9e866577",
    "_ei_____.pfb": "33aba9a62aae5b96",
    "_ebi____.pfb": "04e6345bec4bd6fb",
    "_a______.pfb": "612e88946ff22cec",
    "_ab_____.pfb": "6e82ebb42171beb8",
    "_ai_____.pfb": "74e2be79b1fd7a30",
    "_abi____.pfb": "a97afdf8376caa6b",
    "com_____.pfb": "1de587f0ca79deef",
    "cob_____.pfb": "fd5b34ad7c63d102",
    "coo_____.pfb": "676de5e6e1c30287",
    "cobo____.pfb": "d128fc4ac784bb28",
    "DejaVuSerif.ttf": "107244956e9962b9",
    "DejaVuSerif-Bold.ttf": "c3753f2ed6bc673f",
    "DejaVuSerif-Italic.ttf": "3e7994fbc54fa10c",
    "DejaVuSerif-BoldItalic.ttf": "d93efec7a9d2e826",
    "DejaVuSans.ttf": "3fdf69cabf06049e",
    "DejaVuSans-Bold.ttf": "b184b89e3c1075f2",
    "DejaVuSans-Oblique.ttf": "ccdf74b350f11fd3",
    "DejaVuSans-BoldOblique.ttf": "6edf0283160186af",
    "DejaVuSansMono.ttf": "602ec86b8948cfcd",
    "DejaVuSansMono-Bold.ttf": "baada9a5172fe208",
    "DejaVuSansMono-Oblique.ttf": "28052813f7a709fc",
    "DejaVuSansMono-BoldOblique.ttf": "a69081c15c76c827",
    "cmr10.ttf": "4dd9761b058c009d",
    "cmb10.ttf": "074497b50c43ea57",
    "cmti10.ttf": "f9f1f9f654308ae8",
    "STIXGeneral.ttf": "167378031e2dddc6",
    "STIXGeneralBol.ttf": "e8533dc7083fa346",
    "STIXGeneralItalic.ttf": "6cfcb333d22b7c3c",
    "STIXGeneralBolIta.ttf": "98788fd4ba48dfbb",
    "cmss10.ttf": "7df91a83d05b2e47",
    "cmtt10.ttf": "6211f09ae9359999",
}


def _package_dir(package: str) -> Path:
    """A package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the text domain's fonts come from the {package!r} package: "
            f"`pip install {package}` (a dependency of keras_udd)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def pinned_families() -> tuple[Family, ...]:
    """The families of the pinned set with absolute file paths."""
    families = []
    for name, role, split, package, folder, faces in _SOURCES:
        root = _package_dir(package) / folder
        paths = {style: str(root / file) for style, file in faces.items()}
        for path in paths.values():
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"font file {path} of {name} is missing from the {package!r} "
                    "package; reinstall it"
                )
        families.append(Family(name, role, split, paths))
    return tuple(families)


def digest(path: str) -> str:
    """First 16 hex digits of a file's SHA-256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=1)
def changed_fonts() -> tuple[str, ...]:
    """Files of the pinned set whose content differs from `PINNED`."""
    return tuple(
        path
        for family in pinned_families()
        for path in family.faces.values()
        if PINNED.get(os.path.basename(path)) != digest(path)
    )


def folder_families(font_dir: str) -> tuple[Family, ...]:
    """`--font-dir`: every font file under the folder (sorted) as a family
    of its own with one regular face, role "serif", split "train" (except
    every fifth, "unseen", when there are five or more)."""
    files = sorted(
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(Path(font_dir).expanduser())
        for name in names
        if name.lower().endswith(FONT_SUFFIXES)
    )
    held = len(files) >= 5
    return tuple(
        Family(
            os.path.basename(path),
            "serif",
            "unseen" if held and i % 5 == 4 else "train",
            {"regular": path},
        )
        for i, path in enumerate(files)
    )


def families(font_dir: str | None = None, split: str = "train") -> tuple[Family, ...]:
    """The families of a split ("train" or "unseen") of the pinned set, or of
    `font_dir`'s fonts."""
    if split not in SPLITS:
        raise ValueError(f"font split must be one of {SPLITS}, got {split!r}")
    pool = folder_families(font_dir) if font_dir else pinned_families()
    if not font_dir:
        changed = changed_fonts()
        if changed:
            logger.warning(
                "%d pinned font files differ from the ones the text domain was "
                "pinned with (e.g. %s): pages will differ from the shipped "
                "model's",
                len(changed),
                changed[0],
            )
    return tuple(f for f in pool if f.split == split)
