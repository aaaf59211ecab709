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


def test_shipped_text_model_deblurs_held_out_test_pages():
    """Quality regression (inference only): the `text` model that ships in
    the package loads offline, is deterministic, keeps odd sizes and, on 8
    pages of its domain's test split (never seen in training), scores above
    the blurred input in PSNR."""
    import dataclasses

    import keras_udd
    from keras_udd.data import make_test_dataset
    from keras_udd.metrics import psnr, to_unit_range

    assert "text" in pretrained.available()
    model, _, _ = loaded_deterministic_any_size("text", (1, 61, 77, 3))
    assert isinstance(keras_udd.load_pretrained("text"), Deblurrer)

    data = Config.from_dict(pretrained.model_info("text")["config"]).data
    data = dataclasses.replace(data, deterministic=True)
    scores = {"output": [], "blurred": []}
    for blurred, sharp in make_test_dataset(data, split="test").take(8):
        sharp = to_unit_range(sharp)
        scores["output"].append(float(psnr(to_unit_range(model(blurred)), sharp)[0]))
        scores["blurred"].append(float(psnr(to_unit_range(blurred), sharp)[0]))
    assert len(scores["output"]) == 8
    assert np.mean(scores["output"]) > np.mean(scores["blurred"]), scores
