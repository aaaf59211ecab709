"""Tests for keras_udd.ocr (Tesseract CER) and the OCR columns of evaluate."""

import csv
import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from keras_udd import blur, evaluate, ocr
from keras_udd.config import Config, DataConfig, TrainConfig
from keras_udd.data import make_test_dataset
from keras_udd.data.fonts import pinned_families
from keras_udd.data.text import WORDS, TextRenderer

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="the tesseract program is not installed (apt-get install "
    "tesseract-ocr; .ci/run installs it)",
)

# Small, legible text pages: 144-px pages (the text domain's size), 2 per split.
PAGES = dict(
    test_images=2,
    val_images=2,
    text_pool_size=8,
    blur_kernel_size=31,
    deterministic=True,
)


def known_text_page(height=256, width=512, size=24, seed=0):
    """A clean page of known text: (uint8 [height, width, 3], its text)."""
    rng = np.random.default_rng(seed)
    sans = next(f for f in pinned_families() if f.name == "DejaVu Sans")
    font = ImageFont.truetype(sans.face("regular"), size)
    page = Image.new("RGB", (width, height), (250, 250, 245))
    draw = ImageDraw.Draw(page)
    lines, y = [], size // 2
    while y + size * 1.4 < height:
        words, line = [], ""
        while True:
            word = str(WORDS[rng.integers(len(WORDS))])
            candidate = f"{line} {word}".strip()
            if draw.textlength(candidate, font=font) > width - 2 * size:
                break
            words.append(word)
            line = candidate
        draw.text((size, y), line, font=font, fill=(20, 20, 30))
        lines.append(line)
        y += int(size * 1.5)
    return np.asarray(page), " ".join(lines)


def blurred(image, radius):
    kernel = blur.defocus_kernel(2 * int(radius) + 3, radius)
    return np.clip(np.round(blur.blur_image(image, kernel)), 0, 255).astype(np.uint8)


# --- character error rate ----------------------------------------------------


def test_edit_distance_and_cer_edge_cases():
    assert ocr.edit_distance("kitten", "sitting") == 3
    assert ocr.edit_distance("sitting", "kitten") == 3
    assert ocr.edit_distance("", "abc") == ocr.edit_distance("abc", "") == 3
    assert ocr.edit_distance("", "") == 0
    assert ocr.edit_distance("flaw", "lawn") == 2
    assert ocr.edit_distance("übung", "ubung") == 1  # Characters, not bytes.
    assert ocr.character_error_rate("same text", "same text") == 0.0
    assert ocr.character_error_rate("abed", "abcd") == 0.25
    assert ocr.character_error_rate("", "abcd") == 1.0  # All deleted.
    assert ocr.character_error_rate("aaaa", "a") == 3.0  # Insertions: above 1.
    assert ocr.character_error_rate("", "") == 0.0
    assert ocr.character_error_rate("x", "") == 1.0
    assert ocr.character_error_rate(" a  b\n\nc\t", "a b c") == 0.0  # Whitespace.
    assert ocr.normalize_whitespace("  one\ntwo \t three ") == "one two three"


def test_edit_distance_matches_the_textbook_recursion():
    def slow(a, b):
        row = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            prev, row[0] = row[0], i
            for j, cb in enumerate(b, 1):
                prev, row[j] = (
                    row[j],
                    min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb)),
                )
        return row[-1]

    rng = np.random.default_rng(0)
    for _ in range(50):
        a = "".join(rng.choice(list("abc "), rng.integers(0, 12)))
        b = "".join(rng.choice(list("abc "), rng.integers(0, 12)))
        assert ocr.edit_distance(a, b) == slow(a, b), (a, b)


# --- Tesseract -----------------------------------------------------------------


def test_missing_tesseract_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # An empty folder: no tesseract.
    with pytest.raises(
        ocr.TesseractNotFoundError, match="apt-get install tesseract-ocr"
    ):
        ocr.find_tesseract()
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(FileNotFoundError, match="tesseract-ocr"):
        ocr.ocr_text(image)
    with pytest.raises(ocr.TesseractNotFoundError, match="no-such-ocr"):
        ocr.ocr_texts([image], executable="no-such-ocr")
    with pytest.raises(ocr.TesseractNotFoundError):
        ocr.ValidationOCR([image], [image])


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        ocr.prepare_for_ocr(np.zeros((20, 20, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        ocr.prepare_for_ocr(np.zeros((20, 20, 4), np.uint8))
    with pytest.raises(ValueError, match="outputs"):
        ocr.ocr_scores([np.zeros((9, 9, 3), np.uint8)], [], [])


def test_small_pages_are_upscaled_in_grayscale():
    page = np.zeros((144, 200, 3), np.uint8)
    img = ocr.prepare_for_ocr(page)
    assert img.mode == "L" and img.size == (600, 432)
    assert ocr.prepare_for_ocr(np.zeros((500, 300, 3), np.uint8)).size == (300, 500)


@needs_tesseract
def test_ocr_reads_a_sharp_page_and_fails_on_a_blurred_one():
    page, truth = known_text_page()
    sharp_cer = ocr.character_error_rate(ocr.ocr_text(page), truth)
    assert sharp_cer < 0.1
    blurred_cer = ocr.character_error_rate(ocr.ocr_text(blurred(page, 6)), truth)
    assert blurred_cer > 0.5 and blurred_cer > sharp_cer + 0.4


@needs_tesseract
def test_ocr_scores_agreement_with_the_sharp_page():
    fonts = tuple(f.face("regular") for f in pinned_families())
    renderer = TextRenderer(256, seed=0, fonts=fonts)
    sharp = [renderer.render(i) for i in range(2)]
    weak = [blurred(p, 1) for p in sharp]
    strong = [blurred(p, 8) for p in sharp]
    scores = ocr.ocr_scores(sharp, strong, sharp, workers=2)
    assert scores["cer"].shape == scores["cer_blurred"].shape == (2,)
    np.testing.assert_array_equal(scores["cer"], 0.0)  # Output = sharp page.
    assert np.all(scores["cer_blurred"] > 0.3)
    weak_scores = ocr.ocr_scores(weak, strong, sharp)["cer"]
    assert np.all(weak_scores < scores["cer_blurred"])


# --- evaluate and training -----------------------------------------------------


def identity_model():
    """A Keras model whose output is its input: the deblurred page is the
    blurred one, so every score equals its baseline."""
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


@needs_tesseract
def test_evaluate_reports_psnr_ssim_and_ocr(tmp_path, capsys, monkeypatch):
    path = tmp_path / "identity.keras"
    identity_model().save(path)
    out = tmp_path / "scores.json"
    flags = [
        f"--{k.replace('_', '-')}={v}" for k, v in PAGES.items() if k != "deterministic"
    ]
    argv = ["--model", str(path), "--domain", "text", *flags, "--json", str(out)]
    checks = []  # evaluate's look-ups (ocr_texts names the program itself).
    find = ocr.find_tesseract
    monkeypatch.setattr(ocr, "find_tesseract", lambda *a: checks.append(a) or find(*a))
    assert evaluate.main(argv) == 0
    assert checks.count(()) == 1  # Once, before the model runs.
    printed = capsys.readouterr().out
    assert "test set (whole images)" in printed and "CER" in printed
    scores = json.loads(out.read_text())
    assert scores["split"] == "test" and scores["ocr"] and scores["images"] == 2
    for key in ("psnr", "ssim", "cer"):
        assert scores[key] == pytest.approx(scores[key + "_blurred"], abs=1e-3)
    assert 0 < scores["cer_blurred"]
    assert evaluate.main(argv + ["--split", "val", "--no-ocr"]) == 0
    scores = json.loads(out.read_text())
    assert scores["split"] == "val" and "cer" not in scores
    assert "CER" not in capsys.readouterr().out


def test_evaluate_without_tesseract_is_a_clear_error(tmp_path, monkeypatch, capsys):
    path = tmp_path / "identity.keras"
    identity_model().save(path)
    monkeypatch.setenv("PATH", str(tmp_path))
    argv = ["--model", str(path), "--domain", "text", "--test-images", "2"]
    assert evaluate.main(argv) == 2
    assert "apt-get install tesseract-ocr" in capsys.readouterr().err


@needs_tesseract
def test_validation_ocr_logs_val_cer_for_the_csv_logger(tmp_path, monkeypatch):
    cfg = DataConfig(**PAGES)
    callback = ocr.ValidationOCR.from_data_config(cfg, 2)
    assert len(callback.blurred) == 2
    assert min(callback.blurred[0].shape[:2]) == cfg.load_size  # Whole pages.
    calls = []
    ocr_texts = ocr.ocr_texts

    def counted(images, **kwargs):
        calls.append(len(images))
        return ocr_texts(images, **kwargs)

    monkeypatch.setattr(ocr, "ocr_texts", counted)
    model = identity_model()
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((2, 16, 16, 3), np.float32)
    log = tmp_path / "log.csv"
    model.fit(
        x,
        x,
        epochs=2,
        verbose=0,
        callbacks=[callback, keras.callbacks.CSVLogger(str(log))],
    )
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 2 and {"val_cer", "val_cer_blurred"} <= set(rows[0])
    for row in rows:  # Identity model: the output reads like the blurred page.
        assert float(row["val_cer"]) == pytest.approx(float(row["val_cer_blurred"]))
        assert float(row["val_cer_blurred"]) > 0
    # Sharp and blurred pages once (4 images), then the 2 outputs per epoch.
    assert calls == [4, 2, 2]


@needs_tesseract
def test_train_puts_validation_ocr_before_the_csv_logger(tmp_path):
    from tests.test_train import train

    cfg = Config(data=DataConfig(**PAGES), train=TrainConfig(val_ocr_images=2))
    samples = train.validation_samples(
        make_test_dataset(cfg.data, 1, split="val", whole=False), 2
    )
    assert samples[0].shape == (2, cfg.data.crop_size, cfg.data.crop_size, 3)
    out, _ = train.make_callbacks(cfg, str(tmp_path), str(tmp_path), samples, True, 0.0)
    kinds = [type(c) for c in out]
    assert kinds.index(ocr.ValidationOCR) < kinds.index(keras.callbacks.CSVLogger)
    cfg.train.val_ocr_images = 0
    out, _ = train.make_callbacks(cfg, str(tmp_path), str(tmp_path), samples, True, 0.0)
    assert ocr.ValidationOCR not in [type(c) for c in out]
