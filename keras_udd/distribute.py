"""Choosing the tf.distribute strategy that training runs under."""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def select_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The strategy for `name`:

    - "auto": MirroredStrategy when more than one GPU is visible, else the
      default (single-device) strategy;
    - "default": the default strategy (one device, no replication);
    - "mirrored": MirroredStrategy over all visible GPUs (or the CPU);
    - "multiworker": MultiWorkerMirroredStrategy, configured by `TF_CONFIG`.
    Create the model, its optimizers and the datasets inside `scope()`.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def use_jit(strategy: tf.distribute.Strategy, requested: bool) -> bool:
    """XLA only on a single device: `jit_compile` fails under MirroredStrategy."""
    return (
        bool(requested)
        and strategy.num_replicas_in_sync == 1
        and not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy))
    )


def _tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def is_chief() -> bool:
    """True except on the non-chief workers of a multi-worker run (TF_CONFIG):
    the chief, or worker 0 of a cluster without a chief. Only the chief writes
    the run folder's checkpoints, logs and samples."""
    config = _tf_config()
    task = config.get("task") or {}
    kind = task.get("type")
    if kind is None or kind == "chief":
        return True
    return (
        kind == "worker"
        and int(task.get("index", 0)) == 0
        and "chief" not in config.get("cluster", {})
    )


def worker_id() -> str:
    """`<type>-<index>` of this worker in TF_CONFIG, "chief" when there is none."""
    task = _tf_config().get("task") or {}
    if not task:
        return "chief"
    return f"{task.get('type')}-{task.get('index', 0)}"
