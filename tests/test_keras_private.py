"""The private Keras 3.15 API keras_udd relies on, where no public one exists.

Each entry names who uses it and why; a Keras release that renames or drops
one fails here, by name, before it breaks training in a less obvious way.
"""

import inspect

import keras
import pytest

from keras_udd import callbacks
from keras_udd.model import UIDGAN

PRIVATE = [
    # UIDGAN.make_train_function: two compiled steps (D only, D + E/G) chosen
    # per step, because a tf.cond around optimizer updates fails under
    # MirroredStrategy.
    (keras.Model, "_make_function", "method"),
    # UIDGAN._maybe_symbolic_build: overridden to do nothing (the model is
    # built in __init__); Keras' version fails under MultiWorkerMirroredStrategy.
    (keras.Model, "_maybe_symbolic_build", "method"),
    # TrainingBackup: atomic writes of Keras' own backup files, resumed at the
    # saved step rather than the epoch.
    (keras.callbacks.BackupAndRestore, "_weights_path", "attribute"),
    (keras.callbacks.BackupAndRestore, "_training_metadata_path", "attribute"),
    (keras.callbacks.BackupAndRestore, "_save_model", "method"),
    # SafeModelCheckpoint: writes NAME.partial.keras, then renames it.
    (keras.callbacks.ModelCheckpoint, "_get_file_path", "method"),
    (keras.callbacks.ModelCheckpoint, "_save_model", "method"),
    # RunTensorBoard: the step of batch-level scalars, both learning rates,
    # epoch scalars with an integer update_freq, reuse across fit calls.
    (keras.callbacks.TensorBoard, "_collect_learning_rate", "method"),
    (keras.callbacks.TensorBoard, "_log_epoch_metrics", "method"),
    (keras.callbacks.TensorBoard, "_close_writers", "method"),
]


@pytest.mark.parametrize("cls, name, kind", PRIVATE, ids=[n for _, n, _ in PRIVATE])
def test_private_keras_api_is_still_there(cls, name, kind, tmp_path):
    if kind == "method":
        assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name} is gone"
        return
    instance = cls(str(tmp_path / "backup"))
    assert isinstance(getattr(instance, name, None), str), f"{cls.__name__}.{name}"


def test_overrides_keep_the_signatures_keras_calls():
    """Our overrides accept what Keras passes to the originals."""
    checkpoint, ours = keras.callbacks.ModelCheckpoint, callbacks.SafeModelCheckpoint
    pairs = [
        (UIDGAN._maybe_symbolic_build, keras.Model._maybe_symbolic_build),
        (ours._save_model, checkpoint._save_model),
        (ours._get_file_path, checkpoint._get_file_path),
    ]
    for ours, theirs in pairs:
        assert list(inspect.signature(ours).parameters) == list(
            inspect.signature(theirs).parameters
        ), ours.__qualname__


def test_tensorboard_keeps_the_batch_step_counter(tmp_path):
    board = keras.callbacks.TensorBoard(str(tmp_path))
    assert hasattr(board, "_global_train_batch")
