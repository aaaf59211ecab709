"""OCR agreement of deblurred text pages: Tesseract character error rates.

A PSNR gain does not say whether text became readable. Here the sharp page's
OCR text is the reference: `cer` is the character error rate (Levenshtein
distance / reference length) of the deblurred page's OCR text against it, and
`cer_blurred` the same for the blurred input (the baseline to beat). Lower is
better; 0 means Tesseract reads the same characters as on the sharp page.

Conventions: the `tesseract` command-line program (Debian/Ubuntu package
`tesseract-ocr`, English data) runs once per image through `subprocess`, with
`--psm 6` (one uniform block of text) and one OpenMP thread, several images
in parallel. Each image is converted to grayscale and, when shorter than
`min_height` (432 px by default, 3x the text domain's 144-px pages), upscaled
to that height with Lanczos resampling; Tesseract reads text best when
letters are 20 px or more. Whitespace of the text (spaces, line breaks) is
collapsed to single spaces before comparing.

`ValidationOCR` is the training callback: it adds `val_cer` and
`val_cer_blurred` to the epoch logs (so `CSVLogger` and TensorBoard record
them) for a fixed set of validation pages.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
from PIL import Image

from keras_udd.runtime import signed_to_uint8

TESSERACT = "tesseract"
TESSERACT_PACKAGE = "tesseract-ocr"
DEFAULT_PSM = 6  # "Assume a single uniform block of text."
DEFAULT_MIN_HEIGHT = 432
DEFAULT_LANG = "eng"


class TesseractNotFoundError(FileNotFoundError):
    """The `tesseract` program is not installed (or not on PATH)."""


def find_tesseract(executable: str = TESSERACT) -> str:
    """The path of the Tesseract program; raises TesseractNotFoundError naming
    the package to install when it is missing."""
    path = shutil.which(executable)
    if path is None:
        raise TesseractNotFoundError(
            f"OCR needs the Tesseract program ({executable!r} is not on PATH). "
            f"Install it with `apt-get install {TESSERACT_PACKAGE}` (Debian/"
            "Ubuntu; `brew install tesseract` on macOS), or turn OCR off "
            "(keras_udd.evaluate --no-ocr, train.py --val-ocr-images 0)."
        )
    return path


def _as_uint8(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(
            f"expected a [H, W, 3] or [H, W] image, got shape {image.shape}"
        )
    return image


def prepare_for_ocr(image, min_height: int = DEFAULT_MIN_HEIGHT) -> Image.Image:
    """Grayscale Pillow image, upscaled (Lanczos) to `min_height` if shorter.

    Args:
        image: uint8 `[H, W, 3]` (RGB) or `[H, W]`.
    """
    img = Image.fromarray(_as_uint8(image)).convert("L")
    w, h = img.size
    if 0 < h < min_height:
        img = img.resize(
            (max(1, round(w * min_height / h)), min_height), Image.Resampling.LANCZOS
        )
    return img


def normalize_whitespace(text: str) -> str:
    """Runs of whitespace (spaces, tabs, line breaks) -> one space; stripped."""
    return " ".join(text.split())


def ocr_text(
    image,
    *,
    psm: int = DEFAULT_PSM,
    lang: str = DEFAULT_LANG,
    min_height: int = DEFAULT_MIN_HEIGHT,
    executable: str = TESSERACT,
    timeout: float = 120.0,
) -> str:
    """Tesseract's text of one image, whitespace normalised.

    Args:
        image: uint8 `[H, W, 3]` (RGB) or `[H, W]`, any size.
        psm: Tesseract page segmentation mode (6: one block of text).
        lang: Tesseract language data ("eng" comes with tesseract-ocr).
        min_height: shorter images are upscaled to this height first.
        executable: the program name or path.
        timeout: seconds before the call is abandoned (RuntimeError).

    Raises:
        TesseractNotFoundError: Tesseract is not installed.
        RuntimeError: Tesseract failed (its message is included).
    """
    program = find_tesseract(executable)
    buffer = io.BytesIO()
    prepare_for_ocr(image, min_height).save(buffer, format="PNG", dpi=(300, 300))
    command = [program, "stdin", "stdout", "--psm", str(psm), "-l", lang]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # Parallel over images instead.
    try:
        done = subprocess.run(
            command,
            input=buffer.getvalue(),
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"tesseract took over {timeout:g} s on one image") from err
    if done.returncode:
        message = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(
            f"tesseract failed (exit {done.returncode}): {message[-500:]}"
        )
    return normalize_whitespace(done.stdout.decode("utf-8", errors="replace"))


def _workers(workers: int | None, jobs: int) -> int:
    return max(1, min(workers or os.cpu_count() or 1, jobs))


def ocr_texts(images, workers: int | None = None, **kwargs) -> list[str]:
    """`ocr_text` of each image, `workers` Tesseract processes at a time
    (default: one per CPU core). `kwargs` go to `ocr_text`."""
    images = list(images)
    if not images:
        return []
    find_tesseract(kwargs.get("executable", TESSERACT))  # Fail once, clearly.
    with ThreadPoolExecutor(max_workers=_workers(workers, len(images))) as pool:
        return list(pool.map(lambda image: ocr_text(image, **kwargs), images))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions; cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    codes = np.array([ord(c) for c in b], np.int64)
    index = np.arange(len(b) + 1)
    row = index.copy()
    for i, char in enumerate(a, 1):
        new = np.empty_like(row)
        new[0] = i
        # Substitution (or match) and deletion, then insertions along the row:
        # new[j] = min_k<=j (new[k] + j - k), a running minimum.
        new[1:] = np.minimum(row[:-1] + (codes != ord(char)), row[1:] + 1)
        row = np.minimum.accumulate(new - index) + index
    return int(row[-1])


def character_error_rate(hypothesis: str, reference: str) -> float:
    """Edit distance / reference length, on whitespace-normalised strings.

    0 for identical text; can exceed 1 (insertions). An empty reference gives
    0.0 for an empty hypothesis and 1.0 otherwise.
    """
    hypothesis = normalize_whitespace(hypothesis)
    reference = normalize_whitespace(reference)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return edit_distance(hypothesis, reference) / len(reference)


def ocr_scores(
    outputs, blurred, sharp, workers: int | None = None, **kwargs
) -> dict[str, np.ndarray]:
    """Per-image OCR agreement with the sharp image.

    Args:
        outputs, blurred, sharp: sequences (or `[N, H, W, 3]` arrays) of uint8
            `[H, W, 3]` images: the deblurred outputs, their blurred inputs
            and the sharp originals; sizes may differ between images.
        workers: parallel Tesseract processes (default: one per core).
        kwargs: `ocr_text` options.

    Returns:
        `{"cer": float64 [N], "cer_blurred": float64 [N]}`: character error rate
        of the output's and of the blurred image's OCR text against the sharp
        image's OCR text.
    """
    outputs, blurred, sharp = list(outputs), list(blurred), list(sharp)
    n = len(sharp)
    if len(outputs) != n or len(blurred) != n:
        raise ValueError(
            f"got {len(outputs)} outputs, {len(blurred)} blurred and {n} sharp images"
        )
    texts = ocr_texts(outputs + blurred + sharp, workers=workers, **kwargs)
    out, blur, ref = texts[:n], texts[n : 2 * n], texts[2 * n :]
    return {
        "cer": np.array([character_error_rate(h, r) for h, r in zip(out, ref)]),
        "cer_blurred": np.array(
            [character_error_rate(h, r) for h, r in zip(blur, ref)]
        ),
    }


class ValidationOCR(keras.callbacks.Callback):
    """At every epoch end, OCRs fixed validation pages deblurred by
    `model.deblurrer` and adds `val_cer` and `val_cer_blurred` (means over the
    pages; see the module docstring) to the epoch logs.

    Put it before `keras.callbacks.CSVLogger` (and TensorBoard) in the
    callback list so that they record the two values. The sharp pages' OCR
    text and `val_cer_blurred` are computed once, at the first epoch end.

    Args:
        blurred, sharp: sequences of `[H, W, 3]` arrays in [-1, 1] (page sizes
            may differ): the blurred pages and their sharp originals.
        workers: parallel Tesseract processes (default: one per core).
        kwargs: `ocr_text` options.

    Raises:
        TesseractNotFoundError: at construction, when Tesseract is missing.
    """

    def __init__(self, blurred, sharp, workers: int | None = None, **kwargs):
        super().__init__()
        self.blurred = [np.asarray(b, np.float32) for b in blurred]
        self.sharp = [np.asarray(s, np.float32) for s in sharp]
        if len(self.blurred) != len(self.sharp) or not self.sharp:
            raise ValueError(
                f"need as many blurred as sharp pages (at least one), got "
                f"{len(self.blurred)} and {len(self.sharp)}"
            )
        self.workers = workers
        self.ocr_kwargs = kwargs
        find_tesseract(kwargs.get("executable", TESSERACT))
        self._references = None
        self._cer_blurred = None

    @classmethod
    def from_data_config(cls, data_config, count: int, **kwargs) -> ValidationOCR:
        """The first `count` whole pages of the validation split of
        `data_config` (`keras_udd.data.make_test_examples(..., split="val")`)."""
        from keras_udd.data import make_test_examples

        blurred, sharp = [], []
        examples = make_test_examples(data_config, batch_size=1, split="val")
        for example in examples.take(count):
            blurred.append(example["blurred"][0].numpy())
            sharp.append(example["sharp"][0].numpy())
        return cls(blurred, sharp, **kwargs)

    def _texts(self, images) -> list[str]:
        return ocr_texts(images, workers=self.workers, **self.ocr_kwargs)

    def _mean_cer(self, texts) -> float:
        pairs = zip(texts, self._references, strict=True)
        return float(np.mean([character_error_rate(h, r) for h, r in pairs]))

    def scores(self) -> dict[str, float]:
        """`{"val_cer", "val_cer_blurred"}` of the model as it is now."""
        if self._references is None:
            pages = [signed_to_uint8(s) for s in self.sharp + self.blurred]
            texts = self._texts(pages)
            n = len(self.sharp)
            self._references = texts[:n]
            self._cer_blurred = self._mean_cer(texts[n:])
        deblurrer = getattr(self.model, "deblurrer", self.model)
        outputs = [
            signed_to_uint8(keras.ops.convert_to_numpy(deblurrer(b[None]))[0])
            for b in self.blurred
        ]
        return {
            "val_cer": self._mean_cer(self._texts(outputs)),
            "val_cer_blurred": self._cer_blurred,
        }

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.scores())
