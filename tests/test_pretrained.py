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


def test_load_pretrained_is_the_deblurrer_deterministic_any_size(shipped):
    model = pretrained.load_pretrained("tiny")
    assert isinstance(model, Deblurrer)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 37, 53, 3)).astype("float32")
    a, b = np.asarray(model(x)), np.asarray(model(x))
    assert a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.asarray(shipped(x)))


def test_deblur_function_and_evaluate_take_the_name(shipped):
    from keras_udd import evaluate

    fn = load_deblur_function("tiny")
    image = np.full((1, 20, 24, 3), 0.5, "float32")
    assert fn(image).shape == image.shape
    _, data = evaluate.parse_args(["--model", "tiny", "--no-ocr"])
    assert (data.load_size, data.crop_size, data.test_images) == (36, 32, 3)
