"""Training callbacks: resumable backups, TensorBoard, sample grids, time limit.

- `TerminateOnNonFinite`: stops at the first step with a NaN or infinite loss
  term, raising `TrainingDiverged` with the step and the terms (Keras'
  `TerminateOnNaN` also stops on UIDGAN's `loss`, naming neither).
- `TrainingBackup`: backups in `keras.callbacks.BackupAndRestore`'s files that
  also resume in the middle of an epoch and can be taken on demand (Ctrl-C,
  time limit).
- `SafeModelCheckpoint`: `keras.callbacks.ModelCheckpoint` that never leaves a
  half-written `.keras` file.

Neither of the two saving callbacks writes non-finite weights or optimizer
state: they raise `TrainingDiverged` instead, so the files on disk keep the
last finite state.
- `RunTensorBoard`: TensorBoard scalars whose step is the model's step count,
  so resumed runs continue the curves, with both learning rates.
- `SampleGrid`: rows of blurred | deblurred | sharp on fixed validation
  images, as a TensorBoard image and as `samples/epoch_XXX.png`.
- `StopOnSignal`: Ctrl-C / SIGTERM stop training between two steps.
- `TimeLimit`: stops training after a wall-clock budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from keras_udd import runs
from keras_udd.runtime import signed_to_uint8


class TrainingDiverged(Exception):
    """A loss, or a variable about to be saved, is NaN or infinite."""


def optimizer_iterations(model) -> int:
    """The model's step count: a UIDGAN's `iterations` (its D updates, none
    skipped, unlike a LossScaleOptimizer's count), else the iterations of
    `model.optimizer`."""
    counter = getattr(model, "iterations", None)
    if counter is None:
        counter = model.optimizer.iterations
    return int(keras.ops.convert_to_numpy(counter))


def scalar_logs(logs) -> dict[str, float]:
    """The numeric entries of `logs` as floats (a value of shape [1], as
    under MultiWorkerMirroredStrategy, included)."""
    values = {}
    for name, value in (logs or {}).items():
        try:
            array = np.asarray(value, np.float64)
        except (TypeError, ValueError):
            continue  # Not a number (a string, say).
        if array.size == 1:
            values[name] = float(array.reshape(()))
    return values


def non_finite_logs(logs) -> dict[str, float]:
    """`{name: value}` of the numeric entries of `logs` that are NaN or inf."""
    return {k: v for k, v in scalar_logs(logs).items() if not np.isfinite(v)}


def check_finite_state(model, target):
    """Raises `TrainingDiverged` if a weight or optimizer variable of `model`
    holds a NaN or infinity; `target` names what was about to be written."""
    variables = list(model.weights)
    for name in ("optimizer", "d_optimizer", "g_optimizer"):
        optimizer = getattr(model, name, None)
        if optimizer is not None:
            variables += optimizer.variables
    seen, bad = set(), []
    for variable in variables:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            bad.append(variable.path)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        named = ", ".join(bad[:3]) + more
        raise TrainingDiverged(
            f"training diverged by step {optimizer_iterations(model)}: "
            f"non-finite values in {named}; {target} not written"
        )


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Raises `TrainingDiverged` after the first training step whose logs
    hold a NaN or infinite value, naming the step (the optimizer's iteration
    count, as in TensorBoard and the resume messages) and every such term.

    Raising, rather than setting `stop_training`, skips the rest of the step's
    callbacks and the epoch-end checkpoints and backup, so nothing is saved
    from the diverged weights. Put it first in the callback list.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = non_finite_logs(logs)
        if bad:
            terms = ", ".join(f"{name}={value}" for name, value in bad.items())
            raise TrainingDiverged(
                f"training diverged at step {optimizer_iterations(self.model)} "
                f"(epoch {self.epoch + 1}): non-finite {terms}"
            )


@contextlib.contextmanager
def interrupts_deferred():
    """Holds Ctrl-C (SIGINT) and SIGTERM until the block is done, then raises
    them again for the handlers in place before: a file written inside is
    never cut off half-way by them. Yields the list of the signals held so
    far. (Only the main thread can install signal handlers; elsewhere this
    does nothing.)"""
    received = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {
        signum: signal.signal(signum, lambda signum, frame: received.append(signum))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for signum in received:
        signal.raise_signal(signum)


class TrainingBackup(keras.callbacks.Callback):
    """Backs up weights and optimizer state at every epoch end and, with
    `save_freq=N`, every N steps; a rerun continues at the saved step.

    The files are those of `keras.callbacks.BackupAndRestore`
    (`backup_dir/latest.weights.h5` and `training_metadata.json` with `epoch`
    and `batch`: steps done in that epoch), but Keras' callback restores only
    the epoch. Here the position is the model's step count, saved with the
    weights: `restore()` returns `divmod(iterations, steps_per_epoch)` =
    (epoch, steps done in it), and the caller runs the rest of an interrupted
    epoch before the whole ones (train.py does this). Each backup replaces the
    previous one only once it is completely written. The backup is deleted
    when the final `fit` (`final=True`) ends without being stopped.
    """

    def __init__(self, backup_dir, steps_per_epoch, save_freq="epoch"):
        super().__init__()
        if save_freq != "epoch" and not isinstance(save_freq, int):
            raise ValueError(
                f"save_freq: 'epoch' or a number of steps, not {save_freq!r}"
            )
        self.backup_dir = str(backup_dir)
        self.weights_path = os.path.join(self.backup_dir, runs.BACKUP_WEIGHTS)
        self.metadata_path = os.path.join(self.backup_dir, runs.BACKUP_METADATA)
        self.save_freq = save_freq or "epoch"
        self.steps_per_epoch = steps_per_epoch
        self.final = True
        self._restored = False
        self._steps_since_save = 0
        self._saved_iteration = None

    def _iterations(self) -> int:
        return optimizer_iterations(self.model)

    def restore(self, model) -> tuple[int, int] | None:
        """Loads the backup into `model` (built and compiled). Returns
        `(epoch, steps done in it)`, or None when there is no backup."""
        self.set_model(model)
        self._restored = True
        if not os.path.exists(self.weights_path):
            return None
        model.load_weights(self.weights_path)
        self._saved_iteration = self._iterations()
        return divmod(self._saved_iteration, self.steps_per_epoch)

    def on_train_begin(self, logs=None):
        if not self._restored:
            self.restore(self.model)

    def on_train_batch_end(self, batch, logs=None):
        if isinstance(self.save_freq, int):
            self._steps_since_save += 1
            if self._steps_since_save >= self.save_freq:
                self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()

    def save(self):
        """Writes to temporary files, then renames them over the backup: a
        kill during the write leaves the previous backup intact, and Ctrl-C
        or SIGTERM wait until the write is done. Non-finite weights raise
        `TrainingDiverged` and leave the previous backup as it is."""
        check_finite_state(self.model, f"the backup in {self.backup_dir}")
        self._steps_since_save = 0
        iteration = self._iterations()
        epoch, batch = divmod(iteration, self.steps_per_epoch)
        os.makedirs(self.backup_dir, exist_ok=True)
        with interrupts_deferred():
            partial = os.path.join(self.backup_dir, "partial.weights.h5")
            self.model.save_weights(partial, overwrite=True)
            os.replace(partial, self.weights_path)
            partial = self.metadata_path + ".partial"
            with open(partial, "w") as f:
                json.dump({"epoch": epoch, "batch": batch}, f)
            os.replace(partial, self.metadata_path)
            self._saved_iteration = iteration

    def save_now(self):
        """Backs up the current state (e.g. after Ctrl-C between two steps),
        unless the backup already holds it. Once an epoch's steps are all
        done, the state counts as the start of the next epoch (the skipped
        part is that epoch's validation and checkpoints, never training
        steps)."""
        if self.model is not None and self._iterations() != self._saved_iteration:
            self.save()

    def on_train_end(self, logs=None):
        if self.final and not self.model.stop_training:
            shutil.rmtree(self.backup_dir, ignore_errors=True)


class SafeModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint` to a fixed `NAME.keras` that writes
    `NAME.partial.keras` and renames it over `NAME.keras` once complete, with
    Ctrl-C and SIGTERM held during the write: a stopped or killed run never
    leaves a truncated checkpoint. Non-finite weights raise `TrainingDiverged`
    and leave `NAME.keras` as it is. (`filepath` takes no `{epoch}`-style
    placeholders.)"""

    def __init__(self, filepath, **kwargs):
        self.final_path = str(filepath)
        root, ext = os.path.splitext(self.final_path)
        super().__init__(f"{root}.partial{ext}", **kwargs)

    def _saved(self, save):
        """Runs Keras' `save()`, which writes `self.filepath` if this is a
        step or epoch to save at, and moves what it wrote into place (after
        the finiteness check, which runs only then)."""
        with interrupts_deferred():
            if os.path.exists(self.filepath):  # Left by a killed run.
                os.remove(self.filepath)
            save()
            if not os.path.exists(self.filepath):
                return
            try:
                check_finite_state(self.model, self.final_path)
            except TrainingDiverged:
                os.remove(self.filepath)
                raise
            os.replace(self.filepath, self.final_path)

    def on_train_batch_end(self, batch, logs=None):
        self._saved(
            lambda: super(SafeModelCheckpoint, self).on_train_batch_end(batch, logs)
        )

    def on_epoch_end(self, epoch, logs=None):
        self._saved(lambda: super(SafeModelCheckpoint, self).on_epoch_end(epoch, logs))


class RunTensorBoard(keras.callbacks.Callback):
    """TensorBoard scalars of a run, in the layout of
    `keras.callbacks.TensorBoard` (`log_dir/train` and `log_dir/validation`,
    tags `batch_NAME` and `epoch_NAME`), which stays right across resumed
    runs and several `fit` calls:

    - with an integer `update_freq`, every that many steps the step's logs
      as `batch_NAME` at the model's step count (continuous after a resume);
    - at every epoch end the epoch's logs as `epoch_NAME` at the epoch (the
      `val_` ones in `validation/`), with both learning rates
      (`learning_rate_d`, `learning_rate_g`) in `train/`.
    """

    def __init__(self, log_dir, update_freq="epoch"):
        super().__init__()
        self.log_dir = str(log_dir)
        self.update_freq = update_freq if isinstance(update_freq, int) else None
        self._writers = {}

    def writer(self, name):
        """The summary writer of `log_dir/name`, created on first use."""
        if name not in self._writers:
            path = os.path.join(self.log_dir, name)
            self._writers[name] = tf.summary.create_file_writer(path)
        return self._writers[name]

    def _write(self, name, prefix, values, step):
        with self.writer(name).as_default(), tf.summary.record_if(True):
            for key, value in values.items():
                tf.summary.scalar(f"{prefix}_{key}", value, step=step)

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq is None:
            return
        step = optimizer_iterations(self.model)
        if step % self.update_freq == 0:
            self._write("train", "batch", scalar_logs(logs), step)

    def on_epoch_end(self, epoch, logs=None):
        values = scalar_logs(logs)
        train = {k: v for k, v in values.items() if not k.startswith("val_")}
        for key, name in (("d", "d_optimizer"), ("g", "g_optimizer")):
            optimizer = getattr(self.model, name, None)
            if optimizer is not None:
                rate = keras.ops.convert_to_numpy(optimizer.learning_rate)
                train[f"learning_rate_{key}"] = float(rate)
        validation = {k[4:]: v for k, v in values.items() if k.startswith("val_")}
        self._write("train", "epoch", train, epoch)
        if validation:
            self._write("validation", "epoch", validation, epoch)

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.flush()


def image_grid(columns, gap=2) -> np.ndarray:
    """One uint8 image with a row per sample and the given columns side by
    side. `columns`: list of [N, H, W, 3] arrays in [-1, 1]."""
    cells = [signed_to_uint8(c) for c in columns]
    n, h, w, _ = cells[0].shape
    grid = np.full(
        (n * h + (n - 1) * gap, len(cells) * w + (len(cells) - 1) * gap, 3),
        255,
        np.uint8,
    )
    for row in range(n):
        for col, cell in enumerate(cells):
            y, x = row * (h + gap), col * (w + gap)
            grid[y : y + h, x : x + w] = cell[row]
    return grid


class SampleGrid(keras.callbacks.Callback):
    """After every epoch, deblurs fixed validation images and saves rows of
    blurred | deblurred | sharp as `png_dir/epoch_XXX.png` (XXX: epochs done,
    000 before training) and as a TensorBoard image in `log_dir` (at the
    0-based epoch, the step of Keras' epoch scalars).

    `blurred`, `sharp`: [N, H, W, 3] arrays in [-1, 1].
    """

    def __init__(self, blurred, sharp, png_dir, log_dir=None):
        super().__init__()
        self.blurred = np.asarray(blurred, np.float32)
        self.sharp = np.asarray(sharp, np.float32)
        self.png_dir = str(png_dir)
        self.log_dir = None if log_dir is None else str(log_dir)
        self._writer = None

    def on_train_begin(self, logs=None):
        if not os.path.exists(self.path(0)):
            self.write(0)

    def on_epoch_end(self, epoch, logs=None):
        self.write(epoch + 1)

    def path(self, epochs_done):
        return os.path.join(self.png_dir, f"epoch_{epochs_done:03d}.png")

    def write(self, epochs_done):
        if not len(self.blurred):
            return
        deblurrer = getattr(self.model, "deblurrer", self.model)
        deblurred = keras.ops.convert_to_numpy(deblurrer(self.blurred))
        grid = image_grid([self.blurred, deblurred, self.sharp])
        os.makedirs(self.png_dir, exist_ok=True)
        Image.fromarray(grid).save(self.path(epochs_done))
        if self.log_dir is None or not epochs_done:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default(), tf.summary.record_if(True):
            tf.summary.image(
                "blurred | deblurred | sharp",
                grid[None],
                step=epochs_done - 1,  # The 0-based epoch, as Keras' scalars.
                description="Fixed validation images after each epoch.",
            )
        self._writer.flush()


class LocalValidation(keras.callbacks.Callback):
    """Validation on every worker alone, for MultiWorkerMirroredStrategy: at
    every epoch end, adds to the logs `UIDGAN.validation_values` as
    `test_step` reports them (`val_psnr`, ...; means over the pages) from this
    worker's copy of the weights, with no collective operation.

    Keras' own validation splits each batch across the workers, and the whole
    validation pages come one per batch (their sizes differ): a worker then
    gets an empty batch. Every worker runs the whole set (the same weights
    give the same values), which also keeps them in step. Put it before the
    loggers and checkpoints in the callback list.

    Args:
        dataset: paired `(blurred, sharp)` batches in [-1, 1], e.g.
            `make_test_dataset(cfg, split="val")`.
    """

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def scores(self) -> dict[str, float]:
        values = {}
        for blurred, sharp in self.dataset:
            for name, value in self.model.validation_values(blurred, sharp).items():
                values.setdefault(name, []).extend(np.asarray(value).reshape(-1))
        return {f"val_{name}": float(np.mean(v)) for name, v in values.items()}

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.scores())


class StopRequested(KeyboardInterrupt):
    """Raised by `StopOnSignal` between two steps after Ctrl-C or SIGTERM."""


class StopOnSignal(keras.callbacks.Callback):
    """Turns Ctrl-C (SIGINT) and SIGTERM into a stop between two steps.

    Inside `with stop.installed():` (main thread) the first signal is only
    recorded, and the next train or validation batch end raises
    `StopRequested`, so no step, checkpoint or backup is cut off half-way (and
    a KeyboardInterrupt cannot be lost inside library code). A second signal
    raises KeyboardInterrupt at once. The previous handlers come back on exit.
    """

    def __init__(self):
        super().__init__()
        self.received = None

    @contextlib.contextmanager
    def installed(self):
        previous = {
            signum: signal.signal(signum, self._handle)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt(f"signal {signum} (twice)")
        self.received = signum
        print(
            f"\nsignal {signum}: stopping after this step (again to quit at once)",
            flush=True,
        )

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            raise StopRequested(f"signal {self.received}")

    on_test_batch_end = on_train_batch_end


class TimeLimitReached(Exception):
    """Raised by `TimeLimit` between two steps when the budget is spent."""


class TimeLimit(keras.callbacks.Callback):
    """Raises `TimeLimitReached` after the first step that ends more than
    `minutes` after `start` (time.monotonic(); default: construction)."""

    def __init__(self, minutes, start=None):
        super().__init__()
        self.seconds = 60.0 * minutes
        self.start = time.monotonic() if start is None else start

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            raise TimeLimitReached(f"time limit of {self.seconds / 60:g} min reached")
