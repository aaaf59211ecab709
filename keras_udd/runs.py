"""The run folder: its layout, the config record and the resume/overwrite rules.

OUTPUT/config.json    the run's full Config (written before training)
OUTPUT/latest.keras   the model after the last finished epoch
OUTPUT/best.keras     the model with the best validation PSNR so far
OUTPUT/log.csv        one row per epoch: losses and validation metrics
OUTPUT/logs/          TensorBoard: train/, validation/, samples/
OUTPUT/samples/       epoch_XXX.png grids (blurred | deblurred | sharp)
OUTPUT/backup/        the state to resume from (deleted when training ends)
OUTPUT/result.json    written when training has finished
OUTPUT/.workers/ID/backup/  multi-worker: the backup of worker ID (not the chief)

In a multi-worker run only the chief writes these; each other worker keeps
its backup in `.workers/` and writes the rest to a temporary folder.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from pathlib import Path

from keras_udd.cli import config_differences
from keras_udd.config import Config

CONFIG = "config.json"
LATEST = "latest.keras"
BEST = "best.keras"
CSV_LOG = "log.csv"
LOGS = "logs"
SAMPLES = "samples"
BACKUP = "backup"
RESULT = "result.json"
WORKERS = ".workers"
# The files of callbacks.TrainingBackup (those of Keras' BackupAndRestore).
BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_METADATA = "training_metadata.json"
ARTIFACTS = (CONFIG, LATEST, BEST, CSV_LOG, LOGS, SAMPLES, BACKUP, RESULT, WORKERS)


class RunFolderError(Exception):
    """The output folder cannot be used for this run (message says why and
    what to do)."""


def backup_dir(output_dir, worker: str | None = None) -> str:
    """The backup folder of the chief (`worker` None) or of another worker."""
    if worker is None:
        return os.path.join(output_dir, BACKUP)
    return os.path.join(output_dir, WORKERS, worker, BACKUP)


def backup_iteration(path, steps_per_epoch: int) -> int:
    """The step a backup folder resumes at (0 when there is none), from its
    Keras metadata (`epoch`, `batch`: steps done in that epoch)."""
    try:
        with open(os.path.join(path, BACKUP_METADATA)) as f:
            meta = json.load(f)
        return int(meta["epoch"]) * steps_per_epoch + int(meta["batch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def training_config(model: str) -> Config | None:
    """The Config `model` was trained with, where it is known: a shipped
    model's record (`model` its name, e.g. "text", and no such file here: the
    rule of `pretrained.resolve`, so the config is that of the model loaded),
    else the config.json of the run folder a checkpoint sits in; else None."""
    from keras_udd import pretrained

    if pretrained.resolve(model) != model:
        return Config.from_dict(pretrained.model_info(model)["config"])
    beside = os.path.join(os.path.dirname(os.path.abspath(model)), CONFIG)
    if os.path.isfile(beside):
        return Config.load(beside)
    return None


def default_output_dir(domain: str) -> str:
    return os.path.join("runs", f"{domain}-{time.strftime('%Y%m%d-%H%M%S')}")


def prepare_run_folder(cfg: Config, overwrite: bool = False) -> str:
    """Creates `cfg.train.output_dir` and writes `config.json`.

    Returns "new" or "resume" (same config saved there: continue that run).
    Raises `RunFolderError` for a folder that holds a different run, a
    finished run, or run files without a config, unless `overwrite`, which
    deletes the run files (only those listed in this module) first.
    """
    path = Path(cfg.train.output_dir)
    config_path = path / CONFIG
    present = [name for name in ARTIFACTS if (path / name).exists()]
    status = "new"
    if present and overwrite:
        remove_run_files(path)
    elif config_path.exists():
        try:
            saved = Config.load(config_path)
        except (ValueError, TypeError) as err:
            raise RunFolderError(
                f"{config_path} is not a keras_udd config ({err}); use another "
                "--output-dir or pass --overwrite to replace that run"
            ) from err
        diffs = config_differences(saved, cfg)
        if diffs:
            raise RunFolderError(
                f"{path} holds a different run; its config.json differs in:\n  "
                + "\n  ".join(diffs)
                + f"\nUse a new --output-dir, resume that run with --config "
                f"{config_path}, or pass --overwrite to replace it."
            )
        if (path / RESULT).exists():
            raise RunFolderError(
                f"{path} holds a finished run (see {path / RESULT}); use a new "
                "--output-dir, or pass --overwrite to train it again"
            )
        status = "resume"
    elif present:
        raise RunFolderError(
            f"{path} holds run files ({', '.join(present)}) but no {CONFIG}; "
            "use a new --output-dir or pass --overwrite"
        )
    path.mkdir(parents=True, exist_ok=True)
    cfg.save(config_path)
    return status


def remove_run_files(path) -> None:
    """Deletes the files and folders a run writes (nothing else) in `path`."""
    for name in ARTIFACTS:
        target = Path(path) / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def read_csv_log(path) -> list[dict]:
    """The rows of a run's `log.csv` as dicts of floats, one per epoch (the
    last row wins where a resumed epoch was logged twice), by epoch."""
    if not os.path.exists(path):
        return []
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values = {}
            for key, text in row.items():
                try:
                    values[key] = float(text)
                except (TypeError, ValueError):
                    values[key] = math.nan
            rows[int(values["epoch"])] = values
    return [rows[k] for k in sorted(rows)]


def best_logged(path, monitor="val_psnr") -> float | None:
    """The highest `monitor` value in a CSV log, None when there is none (so
    that a resumed run's best checkpoint is only replaced by a better one)."""
    values = [
        r[monitor]
        for r in read_csv_log(path)
        if not math.isnan(r.get(monitor, math.nan))
    ]
    return max(values) if values else None
