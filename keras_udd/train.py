"""Trains UID-GAN on one domain: `keras-udd-train --domain text|face|folder ...`
(installed), or `python train.py ...` from a checkout.

Parses the flags (derived from keras_udd.config) and wires the parts
together: the run folder (keras_udd.runs), the tf.distribute strategy
(keras_udd.distribute), the datasets (keras_udd.data), the model
(keras_udd.model) and the callbacks (keras_udd.callbacks). Rerunning the same
command with the same --output-dir resumes an interrupted run from its backup.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import sys
import tempfile
import time

from keras_udd import cli, console, runs

VGG19_NOTOP = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
# Where keras.applications.VGG19(weights="imagenet") downloads them from, and
# their MD5 (keras/src/applications/vgg19.py): fetched into the same cache.
VGG19_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + VGG19_NOTOP
)
VGG19_NOTOP_MD5 = "253f8cb515780f3b799900260a226db6"
EPILOG = """examples:
  python train.py --domain text --vgg-weights none --epochs 2 --steps-per-epoch 10
  python train.py --preset text-small   # the shipped text model's recipe
  python train.py --domain face --data-dir ~/celeba/img_align_celeba
  python train.py --domain folder --sharp-dir S --blur-dir B --test-dir T
  python train.py --config runs/face-20250101-120000/config.json   # resume
(installed with pip: keras-udd-train in place of python train.py)
"""


def parse_args(argv):
    """(Config, overwrite) from the command line."""
    base = cli.preparse_config(argv)
    parser = argparse.ArgumentParser(
        description="Train UID-GAN (unsupervised domain-specific deblurring) "
        "with model.fit; checkpoints, logs and samples go to --output-dir.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_config_file_flag(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the run files in --output-dir even if they belong to a "
        "different or finished run.",
    )
    console.add_verbose_flag(parser)
    owners = cli.add_config_flags(parser, defaults=base)
    args = parser.parse_args(argv)
    cfg = cli.config_from_args(args, owners, base)
    if args.preset:
        from keras_udd.presets import describe

        print(f"Preset {args.preset}:", *describe(args.preset), sep="\n  ")
    cli.check_config(parser, cfg)
    if cfg.train.output_dir is None:
        cfg.train.output_dir = runs.default_output_dir(cfg.data.domain)
    return cfg, args.overwrite


def check_vgg_weights(model_cfg):
    """Fetches the ImageNet VGG19 weights now (not after building everything)
    and turns a failed download into an actionable message. Only the file is
    fetched (`keras.utils.get_file`, into the cache Keras' VGG19 reads): no
    TensorFlow op runs, so MultiWorkerMirroredStrategy can still be created
    after it (collective ops must be configured before the first op)."""
    needs_vgg = model_cfg.perceptual_weight or (
        model_cfg.random_branch and model_cfg.random_perceptual_weight
    )
    if (
        not needs_vgg
        or model_cfg.perceptual_network != "vgg19"
        or model_cfg.vgg_weights != "imagenet"
    ):
        return
    import keras

    try:
        keras.utils.get_file(
            VGG19_NOTOP,
            VGG19_NOTOP_URL,
            cache_subdir="models",
            file_hash=VGG19_NOTOP_MD5,
        )
    except Exception as err:
        raise SystemExit(
            f"error: --vgg-weights imagenet: could not download the VGG19 "
            f"ImageNet weights of the perceptual loss ({type(err).__name__}: "
            f"{err}).\nOffline, pass --vgg-weights PATH with a copy of "
            f"{VGG19_NOTOP} (from ~/.keras/models on a connected machine), or "
            "--vgg-weights none (random VGG features: smoke tests only)."
        ) from err


def validation_samples(dataset, count):
    """The first `count` (blurred, sharp) pairs of a paired dataset, as
    two [count, H, W, 3] arrays in [-1, 1]."""
    import numpy as np

    blurred, sharp = [], []
    for b, s in dataset.unbatch().take(count) if count else ():
        blurred.append(b.numpy())
        sharp.append(s.numpy())
    if not blurred:
        return np.zeros((0, 1, 1, 3), "float32"), np.zeros((0, 1, 1, 3), "float32")
    return np.stack(blurred), np.stack(sharp)


def make_callbacks(cfg, folder, backup_dir, samples, has_validation, start_time,
                   local_validation=()):  # fmt: skip
    """The callback list (order matters: the backup saves last at epoch end,
    after the checkpoints and logs of that epoch are written). Checkpoints,
    logs and samples go to `folder`, the backup to `backup_dir`;
    `local_validation`: callbacks that add the validation logs (multi-worker)."""
    import keras

    from keras_udd import callbacks as cb

    path = lambda name: os.path.join(folder, name)  # noqa: E731
    t = cfg.train
    ocr = []  # val_cer, val_cer_blurred: added to the logs before the CSV logger.
    if t.val_ocr_images and has_validation:
        from keras_udd.ocr import TesseractNotFoundError, ValidationOCR

        try:
            ocr = [ValidationOCR.from_data_config(cfg.data, t.val_ocr_images)]
        except TesseractNotFoundError as err:
            raise SystemExit(f"error: --val-ocr-images: {err}") from None
    out = [
        cb.TerminateOnNonFinite(),  # First: a NaN step runs no later callback.
        *local_validation,
        *ocr,
        keras.callbacks.CSVLogger(path(runs.CSV_LOG), append=True),
        cb.RunTensorBoard(
            log_dir=path(runs.LOGS),
            update_freq=t.log_freq or "epoch",
        ),
        cb.SampleGrid(
            *samples,
            png_dir=path(runs.SAMPLES),
            log_dir=os.path.join(path(runs.LOGS), "samples"),
        ),
        cb.SafeModelCheckpoint(path(runs.LATEST)),
    ]
    if has_validation:
        out.append(
            cb.SafeModelCheckpoint(
                path(runs.BEST),
                monitor="val_psnr",
                mode="max",
                save_best_only=True,
                initial_value_threshold=runs.best_logged(path(runs.CSV_LOG)),
            )
        )
    if t.time_limit_minutes:
        out.append(cb.TimeLimit(t.time_limit_minutes, start=start_time))
    backup = cb.TrainingBackup(backup_dir, t.steps_per_epoch, save_freq=t.backup_freq)
    return out + [backup], backup


def fit(model, stream, val_ds, callbacks, backup, cfg, resume):
    """model.fit over the remaining epochs: first the rest of an interrupted
    epoch (when the backup was taken mid-epoch), then the whole epochs.

    `stream(batch)`: the training dataset from that batch of the stream on.
    Each `model.fit` call iterates its dataset afresh, so each gets the stream
    from the step it starts at (the weights' iteration): a resumed run sees
    the batches an uninterrupted one would have, none twice.
    """
    epochs, steps = cfg.train.epochs, cfg.train.steps_per_epoch
    epoch, done = resume or (0, 0)
    kwargs = dict(
        validation_data=val_ds,
        callbacks=callbacks,
        shuffle=False,
        verbose=1 if sys.stdout.isatty() else 2,  # Progress bar, or a line an epoch.
    )
    if done and epoch < epochs:
        backup.final = epoch + 1 == epochs
        model.fit(
            stream(epoch * steps + done),
            initial_epoch=epoch,
            epochs=epoch + 1,
            steps_per_epoch=steps - done,
            **kwargs,
        )
        if model.stop_training:
            return
        epoch += 1
    if epoch < epochs:
        backup.final = True
        model.fit(
            stream(epoch * steps),
            initial_epoch=epoch,
            epochs=epochs,
            steps_per_epoch=steps,
            **kwargs,
        )


def training_stream(data_cfg, first, first_batch):
    """`stream(batch)` for `fit`: the training batches from `batch` of the
    stream on; `first`, already built from `first_batch`, is used when it
    starts there (the skipped images are never loaded)."""
    from keras_udd.data import make_train_dataset

    def stream(batch):
        if batch == first_batch:
            return first
        return make_train_dataset(data_cfg, start_batch=batch)

    return stream


def resume_command(cfg):
    """This command again, minus `--overwrite` (which would discard the backup)."""
    program, *argv = [a for a in sys.argv if a != "--overwrite"]
    if not any(a == "--output-dir" or a.startswith("--output-dir=") for a in argv):
        argv += ["--output-dir", cfg.train.output_dir]
    if program.endswith(".py"):  # python train.py
        return "python " + shlex.join([program, *argv])
    return shlex.join([os.path.basename(program), *argv])  # keras-udd-train


def report_divergence(err, backup):
    """Prints why a run stopped on NaN/inf (a `TrainingDiverged`) and what is
    left on disk (`backup`: the backup folder); returns the exit status, 1."""
    kept = (
        f"the last finite backup is kept in {backup} (rerunning resumes from "
        "it, with the same settings)"
        if os.path.isdir(backup)
        else "no backup had been written yet"
    )
    print(
        f"\nerror: {err}.\nNothing was saved from the non-finite weights: "
        f"{kept}, and {runs.LATEST} / {runs.BEST} (if any) are from earlier "
        "epochs.",
        file=sys.stderr,
    )
    return 1


def lost_worker_message(err):
    """What a failed collective (a worker died, hangs or cannot be reached)
    tells the user: the other workers of TF_CONFIG that the error names (by
    address or task), if any."""
    from keras_udd.distribute import cluster_tasks, worker_id

    text = str(err)
    named = [
        f"{task} ({address})"
        for task, address in cluster_tasks().items()
        if task != worker_id()
        and (
            address in text
            or "/job:{}/replica:0/task:{}".format(*task.rsplit("-", 1)) in text
        )
    ]
    who = ", ".join(named) if named else "another worker"
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return (
        f"error: lost {who} of the multi-worker cluster ({type(err).__name__}: "
        f"{first}).\nEvery worker stops; restart all of them with the same "
        "command: each resumes from its last backup."
    )


def main(argv=None):
    cfg, overwrite = parse_args(sys.argv[1:] if argv is None else argv)
    check_vgg_weights(cfg.model)
    start_time = time.monotonic()

    import tensorflow as tf

    from keras_udd.data import (
        make_test_dataset,
        make_train_dataset,
        with_counted_cardinality,
    )
    from keras_udd.distribute import is_chief, select_strategy, worker_id

    # First: MultiWorkerMirroredStrategy must exist before any TF op runs.
    strategy = select_strategy(cfg.train.strategy, cfg.train.collective_timeout_seconds)
    where = cfg.train.output_dir
    chief = is_chief()
    backup_dir = runs.backup_dir(where, None if chief else worker_id())
    # A resumed run continues the data streams where the backup left them
    # (built here to report data errors early; `fit` follows the weights).
    start = (
        0 if overwrite else runs.backup_iteration(backup_dir, cfg.train.steps_per_epoch)
    )
    try:  # Data errors first, before the run folder records this config.
        train_ds = make_train_dataset(cfg.data, start_batch=start)
        val_ds = None
        if cfg.data.val_images:  # Whole validation images, one per batch.
            val_ds = with_counted_cardinality(make_test_dataset(cfg.data, split="val"))
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    # Multi-worker: only the chief writes the run folder. Another worker keeps
    # its own backup there (to resume) and writes the rest to a temporary
    # folder that is deleted at the end.
    if chief:
        try:
            status = runs.prepare_run_folder(cfg, overwrite)
        except runs.RunFolderError as err:
            raise SystemExit(f"error: {err}") from None
        scratch, writes = None, where
    else:
        status = worker_id()
        scratch = writes = tempfile.mkdtemp(prefix=f"keras_udd-{worker_id()}-")
    if overwrite and not chief and os.path.isdir(backup_dir):
        shutil.rmtree(backup_dir)
    try:
        run = Run(where, writes, backup_dir, status, start_time)
        stream = training_stream(cfg.data, train_ds, start)
        return train(cfg, strategy, stream, val_ds, run)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as err:
        print(lost_worker_message(err), file=sys.stderr)
        return 1
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Run:
    """Where one process of a run reads and writes."""

    where: str  # The run folder (--output-dir).
    writes: str  # Where this process writes: the run folder, or a worker's temp.
    backup_dir: str  # This process's backup.
    status: str  # "new", "resume" or the worker's id.
    start_time: float  # time.monotonic() at the start (for --time-limit-minutes).


def train(cfg, strategy, stream, val_ds, run):
    """Builds the model under the strategy, restores the backup and fits
    (`stream`: see `fit`); returns the exit status."""
    where, writes, backup_dir = run.where, run.writes, run.backup_dir
    import keras

    from keras_udd.callbacks import (
        LocalValidation,
        StopOnSignal,
        TimeLimitReached,
        TrainingDiverged,
    )
    from keras_udd.data import make_test_dataset
    from keras_udd.distribute import barrier, is_multi_worker, set_precision, use_jit
    from keras_udd.model import UIDGAN

    keras.utils.set_random_seed(cfg.train.seed)  # The same weights on every worker.
    set_precision(cfg.train.mixed_precision)
    total_steps = cfg.train.epochs * cfg.train.steps_per_epoch
    with strategy.scope():
        model = UIDGAN(cfg.model)
        model.compile(
            total_steps=total_steps,
            jit_compile=use_jit(strategy, cfg.train.jit_compile),
        )
    samples = validation_samples(  # Same-size crops for the grid.
        make_test_dataset(cfg.data, 1, split="val", whole=False) if val_ds else None,
        cfg.train.sample_images if val_ds else 0,
    )
    local = []
    if val_ds is not None and is_multi_worker(strategy):
        # Each worker validates alone (Keras would split each one-page batch).
        local = [LocalValidation(val_ds)]
    callbacks, backup = make_callbacks(
        cfg, writes, backup_dir, samples, val_ds is not None, run.start_time, local
    )
    resume = backup.restore(model)
    print(
        f"Run folder: {where} ({'resumed' if resume else run.status}); "
        f"{strategy.num_replicas_in_sync} replica(s); {total_steps} steps",
        flush=True,
    )
    if resume:
        print(
            f"Resuming from {backup_dir}: epoch {resume[0] + 1}, step {resume[1]} "
            f"(iteration {int(model.iterations.numpy())})",
            flush=True,
        )
    start_iteration = int(model.iterations.numpy())
    stop = StopOnSignal()
    with stop.installed():
        try:
            fit(model, stream, None if local else val_ds, callbacks + [stop],
                backup, cfg, resume)  # fmt: skip
            barrier(strategy)  # Multi-worker: no worker leaves before the others.
        except TrainingDiverged as err:
            return report_divergence(err, backup_dir)
        except (KeyboardInterrupt, TimeLimitReached) as err:
            try:
                backup.save_now()
            except TrainingDiverged as diverged:
                return report_divergence(diverged, backup_dir)
            print(
                f"\nStopped ({err or 'interrupted'}) at iteration "
                f"{int(model.iterations.numpy())}; the state is saved "
                f"in {backup_dir}.\nContinue with: {resume_command(cfg)}",
                file=sys.stderr,
            )
            return 0 if isinstance(err, TimeLimitReached) else 130
    iterations = int(model.iterations.numpy())
    rows = runs.read_csv_log(os.path.join(writes, runs.CSV_LOG))
    result = {
        "iterations": iterations,
        "iterations_this_session": iterations - start_iteration,
        "final_epoch": rows[-1] if rows else None,
        "best_val_psnr": runs.best_logged(os.path.join(writes, runs.CSV_LOG)),
        "seconds_this_session": round(time.monotonic() - run.start_time, 1),
    }
    with open(os.path.join(writes, runs.RESULT), "w") as f:
        json.dump(result, f, indent=2)
    print(f"Done: {where} ({iterations} iterations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
