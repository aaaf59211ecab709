"""Command-line flags derived from the config dataclasses (shared by the scripts).

Every field of `ModelConfig`, `DataConfig` and `TrainConfig` becomes a
`--kebab-case` flag with the field's type and default; its help text is the
field's `help` in `keras_udd/config.py` (`opt(default, help)`). Booleans are
`--flag/--no-flag`; `str | None` fields take the word `none` for None. A field
name used by several sections (`seed`) is one flag that sets all of them.
`train.py` uses all three sections, `keras_udd.evaluate` only the data flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing

from keras_udd.config import (
    PERCEPTUAL_NETWORKS,
    Config,
    DataConfig,
    ModelConfig,
    TrainConfig,
)
from keras_udd.presets import PRESETS, preset_config

SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
TITLES = {
    "model": "model (networks, loss weights, optimizer)",
    "data": "data (domain and preprocessing)",
    "train": "training run",
}
CHOICES = {
    "domain": ("text", "face", "folder"),
    "gan_mode": ("nonsaturating", "lsgan"),
    "perceptual_network": PERCEPTUAL_NETWORKS,
    "strategy": ("auto", "default", "mirrored", "multiworker"),
    "text_tones": ("varied", "document"),
    "text_pages": ("document", "lines"),
    "text_look": ("photo", "clean"),
    "blur_families": ("auto", "photo", "shake"),
    "mixed_precision": ("none", "float16", "bfloat16"),
}
# Flags whose value is a folder that must exist.
DIRECTORY_FIELDS = ("data_dir", "sharp_dir", "blur_dir", "test_dir", "font_dir")
# Integer fields that may be 0 (all others must be >= 1).
NONNEGATIVE_INT_FIELDS = (
    "seed",
    "test_images",
    "val_images",
    "unseen_images",
    "val_ocr_images",
    "content_res_blocks",
    "generator_res_blocks",
    "backup_freq",
    "log_freq",
)
# Fields that may differ when a run is resumed: how it runs and how often it
# saves and logs, not what it learns.
EXECUTION_FIELDS = {
    "train": (
        "strategy",
        "jit_compile",
        "time_limit_minutes",
        "collective_timeout_seconds",
        "backup_freq",
        "log_freq",
    )
}


def _base_type(annotation):
    """(python type, optional) of a field annotation such as `str | None`."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        return non_none[0], len(non_none) < len(args)
    return annotation, False


def _parse_value(name, kind, optional):
    """The argparse `type` of one field: checks ranges and existing folders."""

    def parse(text):
        if optional and text.lower() == "none":
            return None
        if name == "content_network_weights" and not os.path.isfile(text):
            raise argparse.ArgumentTypeError(
                f"expected 'none' or an existing .npz file, got {text!r}"
            )
        if name == "vgg_weights":
            if text != "imagenet" and not os.path.isfile(text):
                raise argparse.ArgumentTypeError(
                    f"expected 'imagenet', 'none' or an existing weights file, "
                    f"got {text!r}"
                )
            return text
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {kind.__name__}, got {text!r}"
            ) from None
        if kind is int and value < (0 if name in NONNEGATIVE_INT_FIELDS else 1):
            bound = ">= 0" if name in NONNEGATIVE_INT_FIELDS else ">= 1"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        if kind is float and value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
        if name in DIRECTORY_FIELDS and not os.path.isdir(value):
            raise argparse.ArgumentTypeError(f"no such folder: {value!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its errors.
    return parse


def _flag(name):
    return "--" + name.replace("_", "-")


def add_config_flags(
    parser, sections=("model", "data", "train"), defaults=None, skip=()
):
    """Adds one flag per config field of `sections`, in one argument group per
    section, except the fields named in `skip` (which keep their `defaults`
    value). `defaults`: a `Config` whose values are the defaults (e.g. loaded
    with `--config`). Returns `{dest: [(section, field), ...]}`."""
    defaults = defaults or Config()
    owners = {}
    for section in sections:
        for f in dataclasses.fields(SECTIONS[section]):
            if f.name not in skip:
                owners.setdefault(f.name, []).append((section, f.name))
    added = set()
    for section in sections:
        cls = SECTIONS[section]
        group = parser.add_argument_group(TITLES[section])
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in added or f.name in skip:
                continue
            added.add(f.name)
            default = getattr(getattr(defaults, section), f.name)
            help_text = f.metadata.get("help", f.name)
            if len(owners[f.name]) > 1:
                where = ", ".join(f"{s}.{n}" for s, n in owners[f.name])
                help_text += f" (sets {where})"
            help_text = help_text.replace("%", "%%")
            if "default" not in help_text.lower():
                help_text += " (default: %(default)s)"
            kind, optional = _base_type(hints[f.name])
            if kind is bool:
                group.add_argument(
                    _flag(f.name),
                    dest=f.name,
                    action=argparse.BooleanOptionalAction,
                    default=default,
                    help=help_text,
                )
                continue
            group.add_argument(
                _flag(f.name),
                dest=f.name,
                type=_parse_value(f.name, kind, optional),
                default=default,
                choices=CHOICES.get(f.name),
                metavar=_metavar(f.name, kind),
                help=help_text,
            )
    return owners


def _metavar(name, kind):
    if name in CHOICES:
        return "{" + ",".join(CHOICES[name]) + "}"
    if name.endswith("_dir") or name.endswith("_file"):
        return "DIR" if name.endswith("_dir") else "FILE"
    return {int: "N", float: "X"}.get(kind, "STR")


def config_from_args(args, owners, base=None) -> Config:
    """A `Config` with the parsed flag values written over `base`."""
    sections = {
        name: dataclasses.asdict(getattr(base or Config(), name)) for name in SECTIONS
    }
    for dest, fields in owners.items():
        for section, name in fields:
            sections[section][name] = getattr(args, dest)
    return Config.from_dict(sections)


def add_config_file_flag(parser):
    """`--config JSON` and `--preset NAME`: where the flags' defaults come from."""
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--config",
        metavar="JSON",
        help="Start from a saved config.json (e.g. runs/x/config.json); flags "
        "given after it override its values.",
    )
    start.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="Start from a named set of config values (listed in the README); "
        "other flags override them.",
    )


def preparse_config(argv) -> Config | None:
    """The `Config` named by `--config` or `--preset` in `argv`, or None
    (before the full parse, so that its values become the flags' defaults)."""
    pre = argparse.ArgumentParser(add_help=False)
    add_config_file_flag(pre)
    known, _ = pre.parse_known_args(argv)
    if known.preset is not None:
        return preset_config(known.preset)
    if known.config is None:
        return None
    try:
        return Config.load(known.config)
    except (OSError, json.JSONDecodeError, TypeError) as err:
        raise SystemExit(f"--config {known.config}: cannot read it ({err})") from err


def check_data_config(parser, data: DataConfig) -> None:
    """Rejects data settings that no pipeline accepts, as a parser error."""
    if data.crop_size < 16 or data.crop_size % 4:
        parser.error(
            f"--crop-size must be a multiple of 4 and >= 16, got {data.crop_size}"
        )
    if data.domain == "folder" and not (data.sharp_dir and data.blur_dir):
        parser.error("--domain folder needs --sharp-dir and --blur-dir")
    from keras_udd.data.pipeline import validate

    try:
        validate(data)
    except ValueError as err:
        parser.error(str(err))


def min_crop_size(model: ModelConfig) -> int:
    """The smallest training crop the networks of `model` take: a multiple of
    4, at least `MIN_IMAGE_SIZE` (E^b halves it four times), and enough for the
    coarsest discriminator scale to give a logit.

    In `MultiScaleDiscriminator` scale k sees the input average-pooled k times
    (stride 2, "same": ceil(H / 2)), then `disc_layers` convolutions (pad 1,
    4x4, stride 2: floor(H / 2), which needs H >= 2). The last scale thus needs
    ceil(H / 2^(disc_scales - 1)) >= 2^disc_layers, i.e.
    H >= (2^disc_layers - 1) * 2^(disc_scales - 1) + 1: 61, so 64, for the
    default 4 layers x 3 scales.
    """
    from keras_udd.model import MIN_IMAGE_SIZE

    disc = (2**model.disc_layers - 1) * 2 ** (model.disc_scales - 1) + 1
    return max(MIN_IMAGE_SIZE, -(-disc // 4) * 4)


def check_config(parser, cfg: Config) -> None:
    """`check_data_config`, then the settings that only fail together (as a
    parser error, before anything is built)."""
    check_data_config(parser, cfg.data)
    smallest = min_crop_size(cfg.model)
    if cfg.data.crop_size < smallest:
        parser.error(
            f"--crop-size {cfg.data.crop_size} is too small for the "
            f"discriminators (--disc-layers {cfg.model.disc_layers}, "
            f"--disc-scales {cfg.model.disc_scales}): the smallest crop that "
            f"works is {smallest}; raise --crop-size (and --load-size) or "
            "lower --disc-layers / --disc-scales"
        )


def config_differences(saved: Config, current: Config, ignore=EXECUTION_FIELDS):
    """`["section.field: saved -> current", ...]` for the fields that differ,
    except `ignore` (`{section: (field, ...)}`)."""
    old, new = saved.to_dict(), current.to_dict()
    out = []
    for section in SECTIONS:
        for name in sorted(set(old[section]) | set(new[section])):
            if name in ignore.get(section, ()):
                continue
            a, b = old[section].get(name), new[section].get(name)
            if a != b:
                out.append(f"{section}.{name}: {a!r} -> {b!r}")
    return out
