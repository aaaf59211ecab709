"""Pretrained deblurrers that ship inside the package: `load_pretrained("text")`.

Each is the deblurring path (`Deblurrer`: E^c_B, E^b, G_S) of a trained
`UIDGAN`, saved alone as `keras_udd/pretrained/<name>.keras`, with
`<name>.json` beside it: how it was trained (the full config and command) and
what it scores on its domain's test split. Nothing is downloaded. The CLIs
accept the name wherever they take a model file (`--model text`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import importlib_resources

PACKAGE_FOLDER = "pretrained"


def _folder() -> Path:
    return Path(str(importlib_resources.files("keras_udd") / PACKAGE_FOLDER))


def available() -> tuple[str, ...]:
    """Names of the shipped models, e.g. `("text",)`."""
    return tuple(sorted(p.stem for p in _folder().glob("*.keras")))


def model_path(name: str) -> Path:
    """The `.keras` file of pretrained model `name`."""
    path = _folder() / f"{name}.keras"
    if not path.is_file():
        known = ", ".join(available()) or "none"
        raise ValueError(f"no pretrained model {name!r} (shipped: {known})")
    return path


def model_info(name: str) -> dict:
    """The training record of `name`: `config` (the run's full config dict),
    `command`, `scores` on the test split, and how it was measured."""
    return json.loads((_folder() / f"{name}.json").read_text())


def resolve(model: str) -> str:
    """`model` itself if it is an existing path, else the file of the shipped
    model of that name (so `--model text` works), else `model` unchanged."""
    if os.path.exists(model) or model not in available():
        return model
    return str(model_path(model))


def load_pretrained(name: str = "text"):
    """The shipped `Deblurrer` `name`: [N, H, W, 3] in [-1, 1] -> same shape,
    deterministic, any H, W >= 16."""
    import keras

    import keras_udd.model  # noqa: F401  (registers the networks)

    return keras.saving.load_model(model_path(name), compile=False)
