"""The tf.distribute strategy and the numeric precision that training runs
under, and what a replica needs to know about them."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
# --mixed-precision -> Keras dtype policy.
PRECISIONS = {
    "none": "float32",
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}


def select_strategy(
    name: str = "auto", timeout_seconds: float | None = None
) -> tf.distribute.Strategy:
    """The strategy for `name`:

    - "auto": MirroredStrategy when more than one GPU is visible, else the
      default (single-device) strategy;
    - "default": the default strategy (one device, no replication);
    - "mirrored": MirroredStrategy over all visible GPUs (or the CPU);
    - "multiworker": MultiWorkerMirroredStrategy, configured by `TF_CONFIG`;
      a collective that does not complete in `timeout_seconds` (a worker
      died or hangs) fails instead of waiting forever. Creating it waits
      for every worker of the cluster to start.
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
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=timeout_seconds or None
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Multi-worker: returns once every worker has called it (an all-reduce).
    After `fit`: a worker that exits while another is still finishing its
    `fit` left that one hanging in the input iterator's destructor (TF 2.21,
    measured on loopback)."""
    if is_multi_worker(strategy):
        strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)


def set_precision(name: str) -> None:
    """Sets the global Keras dtype policy for --mixed-precision `name`
    ("none", "float16", "bfloat16"); build the model after this. Variables
    stay float32; UIDGAN computes its losses and its output tanh in float32
    and wraps its optimizers in a LossScaleOptimizer under float16."""
    if name not in PRECISIONS:
        raise ValueError(
            f"mixed precision must be one of {tuple(PRECISIONS)}, got {name!r}"
        )
    keras.mixed_precision.set_dtype_policy(PRECISIONS[name])


def replica_normal(shape, seed) -> tf.Tensor:
    """float32 N(0, 1) samples of `shape` (`[local batch, ...]`) from the
    stateless `seed` (int64 `[2]`): this replica's rows of the draw for the
    global batch `[replicas * local batch, ...]`. Replicas get different
    numbers, and together those of one device on the same global batch."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        return tf.random.stateless_normal(shape, seed)
    shape = tf.convert_to_tensor(shape)
    full = tf.random.stateless_normal(tf.concat([[replicas], shape], 0), seed)
    return tf.gather(full, context.replica_id_in_sync_group)


def use_jit(strategy: tf.distribute.Strategy, requested: bool) -> bool:
    """XLA only on a single device: `jit_compile` fails under MirroredStrategy
    and MultiWorkerMirroredStrategy (their cross-replica all-reduce inside the
    compiled step), so there it is refused with a warning."""
    if requested and (strategy.num_replicas_in_sync > 1 or is_multi_worker(strategy)):
        print(
            "warning: --jit-compile ignored: XLA runs on a single device only "
            f"({type(strategy).__name__}, {strategy.num_replicas_in_sync} replicas)",
            flush=True,
        )
        return False
    return bool(requested)


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


def cluster_tasks() -> dict[str, str]:
    """`{"worker-1": "host:port", ...}`: every task of TF_CONFIG's cluster."""
    cluster = _tf_config().get("cluster", {})
    return {
        f"{kind}-{index}": address
        for kind, addresses in cluster.items()
        for index, address in enumerate(addresses)
    }


def worker_id() -> str:
    """`<type>-<index>` of this worker in TF_CONFIG, "chief" when there is none."""
    task = _tf_config().get("task") or {}
    if not task:
        return "chief"
    return f"{task.get('type')}-{task.get('index', 0)}"
