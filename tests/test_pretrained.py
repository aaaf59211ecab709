"""Shipped pretrained models: lookup by name, loading, and the CLIs' `--model
NAME` (on a tiny model written into a temporary package folder)."""

import json

import numpy as np
import pytest
from conftest import TINY

from keras_udd import pretrained
from keras_udd.config import Config, DataConfig
from keras_udd.deblur import load_deblur_function
from keras_udd.model import UIDGAN, Deblurrer


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A package folder holding one tiny model `tiny` and its record."""
    folder = tmp_path / "pretrained"
    folder.mkdir()
    model = UIDGAN(**TINY)
    model.deblurrer.save(folder / "tiny.keras")
    config = Config(data=DataConfig(load_size=36, crop_size=32, test_images=3))
    record = {"config": config.to_dict(), "command": ["train.py"], "test_scores": {}}
    (folder / "tiny.json").write_text(json.dumps(record))
    monkeypatch.setattr(pretrained, "_folder", lambda: folder)
    return model


def test_lookup_by_name_prefers_existing_paths(shipped, tmp_path, monkeypatch):
    assert pretrained.available() == ("tiny",)
    path = str(pretrained.model_path("tiny"))
    assert pretrained.resolve("tiny") == path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").write_text("a local file named like the model")
    assert pretrained.resolve("tiny") == "tiny"
    assert pretrained.resolve("runs/x/best.keras") == "runs/x/best.keras"
    with pytest.raises(
        ValueError, match=r"no pretrained model 'nope' \(shipped: tiny\)"
    ):
        pretrained.model_path("nope")


def loaded_deterministic_any_size(name, shape=(1, 37, 53, 3)):
    """The shipped `Deblurrer` `name`, checked to give the same output twice
    for an odd-sized input of that size; returns (model, input, output)."""
    model = pretrained.load_pretrained(name)
    assert isinstance(model, Deblurrer)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    a, b = np.asarray(model(x)), np.asarray(model(x))
    assert a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    return model, x, a


def test_load_pretrained_is_the_deblurrer_deterministic_any_size(shipped):
    _, x, out = loaded_deterministic_any_size("tiny")
    np.testing.assert_array_equal(out, np.asarray(shipped(x)))


def test_deblur_function_and_evaluate_take_the_name(shipped):
    from keras_udd import evaluate

    fn = load_deblur_function("tiny")
    image = np.full((1, 20, 24, 3), 0.5, "float32")
    assert fn(image).shape == image.shape
    _, data = evaluate.parse_args(["--model", "tiny", "--no-ocr"])
    assert (data.load_size, data.crop_size, data.test_images) == (36, 32, 3)


# PSNR (dB) the shipped `text` model must gain over the blurred input on every
# third test page, by blur family (a floor below what it measured on those
# pages, AMD EPYC family 25 model 17: nearly sharp -0.07, linear +0.14,
# Gaussian +0.70, camera shake +0.59, defocus +0.99; all 22 pages +0.43).
FAMILY_FLOORS = {"sharp": -0.1, "linear": 0.0, "gaussian": 0.4, "shake": 0.3,
                 "defocus": 0.6}  # fmt: skip


def test_shipped_text_model_by_blur_family_and_does_no_harm():
    """Quality regression (inference only): the `text` model that ships in
    the package loads offline, is deterministic and keeps odd sizes; on every
    third page of its domain's test split (22 pages, never seen in training)
    it gains PSNR over the blurred input on the whole (at least 0.3 dB;
    measured +0.43) and by blur family as `FAMILY_FLOORS`, and a sharp page
    comes back at least 30 dB from itself (do no harm; measured 48.9 dB)."""
    import dataclasses

    import keras_udd
    from keras_udd.data import make_test_examples
    from keras_udd.data.pipeline import kernel_labels
    from keras_udd.deblur import keras_function
    from keras_udd.evaluate import evaluate

    assert "text" in pretrained.available()
    model, _, _ = loaded_deterministic_any_size("text", (1, 61, 77, 3))
    assert isinstance(keras_udd.load_pretrained("text"), Deblurrer)

    data = Config.from_dict(pretrained.model_info("text")["config"]).data
    data = dataclasses.replace(data, deterministic=True)
    pages = make_test_examples(data, split="test").shard(3, 0)  # Every third.
    scores = evaluate(keras_function(model), pages, progress=False, identity=True,
                      labels=kernel_labels(data, "test"))  # fmt: skip
    families = scores["families"]
    assert sorted(families) == sorted(FAMILY_FLOORS)
    gains = {f: s["psnr"] - s["psnr_blurred"] for f, s in families.items()}
    for name, floor in FAMILY_FLOORS.items():
        assert gains[name] >= floor, (name, gains)
    assert scores["images"] == 22
    assert scores["psnr"] - scores["psnr_blurred"] >= 0.3, gains
    assert scores["psnr_identity"] >= 30.0


def test_training_config_of_a_run_checkpoint_or_a_shipped_model(shipped, tmp_path):
    from keras_udd import runs

    run = tmp_path / "run"
    run.mkdir()
    Config(data=DataConfig(domain="face")).save(run / runs.CONFIG)
    assert runs.training_config(str(run / "best.keras")).data.domain == "face"
    assert runs.training_config("tiny").data.load_size == 36  # Its record.
    assert runs.training_config(str(tmp_path / "alone.keras")) is None


@pytest.mark.slow
def test_shipped_text_model_exports_a_usable_full_int8_model(tmp_path, capsys):
    """Full int8 of the shipped model, calibrated by default on its own
    domain's validation pages: on 4 test pages its PSNR from the float32
    Keras output is at least 30 dB and it still beats the blurred input
    (measured on the development machine, AMD EPYC family 25 model 17:
    45.8 dB; 30.58 dB from the sharp pages vs 30.19 for the blurred ones)."""
    import dataclasses

    from keras_udd.data import make_test_dataset
    from keras_udd.export import tflite
    from keras_udd.export.cli import main as export_main
    from keras_udd.runtime import TFLiteRunner

    out = tmp_path / "exported"
    argv = ["--model", "text", "--out", str(out), "--formats", "tflite",
            "--quantize", "int8", "--latency-size", "0"]  # fmt: skip
    assert export_main(argv) == 0
    printed = capsys.readouterr().out
    assert "int8 calibration: 32 crops of text validation images" in printed
    assert "Verifying on text validation images (3 sizes)" in printed
    report = json.loads((out / "export_report.json").read_text())
    print("export report, int8:", report["rows"][-1])
    run = TFLiteRunner(str(out / "tflite" / tflite.FILE_NAMES["int8"]), num_threads=2)
    model = pretrained.load_pretrained("text")
    data = Config.from_dict(pretrained.model_info("text")["config"]).data
    data = dataclasses.replace(data, deterministic=True)

    def psnr(a, b):
        return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))

    scores = {"vs_keras": [], "int8": [], "blurred": []}
    for blurred, sharp in make_test_dataset(data, split="test").take(4):
        b, s = (np.asarray(x) * 0.5 + 0.5 for x in (blurred, sharp))
        got, keras_out = run(b), np.asarray(model(blurred)) * 0.5 + 0.5
        scores["vs_keras"].append(psnr(got, keras_out))
        scores["int8"].append(psnr(got, s))
        scores["blurred"].append(psnr(b, s))
    print("int8 PSNR (dB):", {k: round(np.mean(v), 2) for k, v in scores.items()})
    assert np.mean(scores["vs_keras"]) >= 30, scores
    assert np.mean(scores["int8"]) > np.mean(scores["blurred"]), scores


def test_domain_images_are_crops_of_the_blurred_validation_pages():
    from keras_udd.data import make_test_dataset
    from keras_udd.export import images

    data = DataConfig(domain="text", val_images=2, test_images=2, text_pool_size=64,
                      blur_kernel_bank=8, load_size=36, crop_size=32)  # fmt: skip
    pages = [b[0].numpy() * 0.5 + 0.5 for b, _ in make_test_dataset(data, split="val")]
    sizes = [(20, 24), (30, 30), (16, 36)]  # Within the 36 x 37 and 36 x 52 pages.
    crops = images.domain_images(data, sizes)
    assert [c.shape[1:3] for c in crops] == sizes
    for i, (crop, size) in enumerate(zip(crops, sizes)):
        windows = np.lib.stride_tricks.sliding_window_view(pages[i % 2], (*size, 3))
        assert np.abs(windows - crop[0]).max(axis=(-1, -2, -3)).min() <= 0.5 / 255
    enlarged = images.domain_crops(data, 3, 48)  # Larger than the pages.
    assert [c.shape for c in enlarged] == [(1, 48, 48, 3)] * 3
