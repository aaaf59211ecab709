"""Tests of train.py: flags, run folder, strategy, callbacks, kill and resume."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_udd import callbacks, cli, distribute, runs, train
from keras_udd.config import Config, DataConfig, ModelConfig, TrainConfig
from keras_udd.model import UIDGAN

ROOT = Path(__file__).resolve().parents[1]

TINY_FLAGS = [
    "--content-filters", "4", "--blur-filters", "4", "--disc-filters", "4",
    "--content-res-blocks", "1", "--generator-res-blocks", "1",
    "--disc-scales", "2", "--vgg-weights", "none", "--vgg-layer", "block2_conv1",
    "--no-jit-compile",
    "--crop-size", "32", "--load-size", "36", "--test-images", "4",
    "--val-images", "4",
    "--text-pool-size", "64", "--blur-kernel-bank", "8",
]  # fmt: skip


def tiny_config(tmp_path, **train):
    return Config(
        model=ModelConfig(content_filters=4, blur_filters=4, disc_filters=4,
                          content_res_blocks=1, generator_res_blocks=1,
                          disc_scales=2, vgg_weights=None),
        data=DataConfig(crop_size=32, load_size=36, test_images=4, val_images=4),
        train=TrainConfig(output_dir=str(tmp_path / "run"), **train),
    )  # fmt: skip


# ----------------------------------------------------------------- flags
def other_value(name, default, tmp_path):
    """`(flag arguments, value)` setting field `name` to a value other than
    its `default` that the parser accepts."""
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        return [flag if not default else "--no-" + flag[2:]], not default
    if name in cli.CHOICES:
        value = next(c for c in cli.CHOICES[name] if c != default)
    elif name in cli.DIRECTORY_FIELDS:
        value = str(tmp_path)
    elif name == "vgg_weights":
        value = str(tmp_path / "vgg.h5")
    elif name == "content_network_weights":
        value = str(tmp_path / "content.npz")
    elif isinstance(default, int):
        value = default + (4 if name in ("crop_size", "load_size") else 1)
    elif isinstance(default, float):
        value = default / 2 if default else 0.5
    else:  # str or None
        accepted = {"vgg_layer": "block2_conv1", "photo_families": "defocus"}
        value = accepted.get(name, "x")
    return [flag, str(value)], value


def test_every_config_field_has_a_flag(tmp_path):
    """Each field is set by its own flag (parsed alone, to another value than
    its default) in every section that has it."""
    (tmp_path / "vgg.h5").write_bytes(b"")
    (tmp_path / "content.npz").write_bytes(b"")
    for section in ("model", "data", "train"):
        for f in dataclasses.fields(getattr(Config(), section)):
            args, value = other_value(f.name, f.default, tmp_path)
            cfg, _ = train.parse_args(["--output-dir", "x", *args])
            for name in ("model", "data", "train"):
                if hasattr(getattr(cfg, name), f.name) and f.name != "output_dir":
                    assert getattr(getattr(cfg, name), f.name) == value, (name, f.name)


def test_flags_set_types_bools_none_and_shared_seed():
    cfg, overwrite = train.parse_args(
        ["--domain", "text", "--epochs", "3", "--cycle-weight", "5.5",
         "--no-random-branch", "--vgg-weights", "none", "--seed", "7",
         "--no-jit-compile", "--overwrite", "--output-dir", "out"]
    )  # fmt: skip
    assert cfg.train.epochs == 3 and cfg.model.cycle_weight == 5.5
    assert cfg.model.random_branch is False and cfg.model.vgg_weights is None
    assert cfg.data.seed == 7 and cfg.train.seed == 7
    assert cfg.train.jit_compile is False and overwrite
    assert cfg.train.output_dir == "out"


def test_default_output_dir_names_the_domain():
    cfg, _ = train.parse_args(["--domain", "text"])
    assert Path(cfg.train.output_dir).parent == Path("runs")
    assert Path(cfg.train.output_dir).name.startswith("text-")


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--domain", "faces"], "argument --domain: invalid choice: 'faces'"),
        (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
        (["--batch-size", "two"], "argument --batch-size: expected int, got 'two'"),
        (["--crop-size", "30"], "--crop-size must be a multiple of 4"),
        (["--crop-size", "64", "--load-size", "48"], "--load-size (48) must be >="),
        (["--cycle-weight", "-1"], "argument --cycle-weight: must be >= 0"),
        (["--vgg-weights", "/no/such/vgg.h5"], "argument --vgg-weights: expected"),
        (
            ["--content-network-weights", "/no/such.npz"],
            "argument --content-network-weights: expected 'none' or an existing",
        ),
        (["--strategy", "tpu"], "argument --strategy: invalid choice: 'tpu'"),
        (["--domain", "folder"], "--domain folder needs --sharp-dir and --blur-dir"),
        (
            ["--domain", "folder", "--sharp-dir", "/no/such/dir", "--blur-dir", "."],
            "argument --sharp-dir: no such folder: '/no/such/dir'",
        ),
    ],
)
def test_bad_flag_values_are_rejected_naming_the_flag(flags, named, capsys):
    with pytest.raises(SystemExit) as err:
        train.parse_args(flags)
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "error:" in message and named in message, message


def test_crop_too_small_for_the_discriminators_names_flags_and_minimum(capsys):
    with pytest.raises(SystemExit) as err:
        train.parse_args(["--crop-size", "60", "--load-size", "72"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    for text in ("--crop-size 60", "--disc-layers 4", "--disc-scales 3", " 64;"):
        assert text in message, message
    cfg, _ = train.parse_args(["--crop-size", "64", "--load-size", "72"])
    assert cfg.data.crop_size == 64
    cfg, _ = train.parse_args(["--crop-size", "32", "--disc-scales", "2"])
    assert cfg.data.crop_size == 32


@pytest.mark.parametrize("layers, scales", [(4, 3), (3, 3), (4, 2)])
def test_min_crop_size_is_the_smallest_the_discriminator_takes(layers, scales):
    from keras_udd.discriminators import MultiScaleDiscriminator

    smallest = cli.min_crop_size(ModelConfig(disc_layers=layers, disc_scales=scales))
    assert smallest == {(4, 3): 64, (3, 3): 32, (4, 2): 32}[layers, scales]

    def gives_logits(size):
        disc = MultiScaleDiscriminator(2, layers, scales)
        try:
            maps = disc(np.zeros((1, size, size, 3), "float32"))
        except Exception:  # noqa: BLE001 - TF's error for a too-small input.
            return False
        return all(min(m.shape[1:3]) >= 1 for m in maps)

    assert gives_logits(smallest) and not gives_logits(smallest - 4)


def test_help_is_grouped_by_config_section(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = capsys.readouterr().out
    for title in cli.TITLES.values():
        assert title in text
    assert "--random-branch, --no-random-branch" in text
    assert "--vgg-weights" in text and "--steps-per-epoch" in text


def test_config_flag_supplies_defaults(tmp_path):
    saved = tiny_config(tmp_path, epochs=5)
    saved.save(tmp_path / "config.json")
    cfg, _ = train.parse_args(
        ["--config", str(tmp_path / "config.json"), "--epochs", "6"]
    )
    assert cfg.model.content_filters == 4 and cfg.train.epochs == 6
    assert cfg.train.output_dir == saved.train.output_dir


def test_preset_supplies_defaults_that_flags_override(capsys):
    from keras_udd.presets import PRESETS, describe

    values = PRESETS["text-small"]
    cfg, _ = train.parse_args(["--preset", "text-small", "--epochs", "3"])
    for section, fields in values.items():
        for name, value in fields.items():
            if (section, name) != ("train", "epochs"):
                assert getattr(getattr(cfg, section), name) == value, name
    assert cfg.train.epochs == 3
    printed = capsys.readouterr().out
    assert printed.startswith("Preset text-small:")
    assert all(line in printed for line in describe("text-small"))
    with pytest.raises(SystemExit):  # --config and --preset exclude each other.
        train.parse_args(["--preset", "text-small", "--config", "x.json"])
    assert "argument --config: not allowed with argument --preset" in (
        capsys.readouterr().err
    )


def test_offline_imagenet_weights_fail_with_the_fix(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)  # The download.
    with pytest.raises(SystemExit) as err:
        train.check_vgg_weights(ModelConfig())
    assert "--vgg-weights none" in str(err.value)
    train.check_vgg_weights(ModelConfig(vgg_weights=None))
    train.check_vgg_weights(ModelConfig(perceptual_weight=0, random_branch=False))


VGG_THEN_MULTIWORKER = """
import hashlib, json, os, socket, sys
folder = sys.argv[1]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}"]},
                                      "task": {"type": "worker", "index": 0}})
import keras
from keras_udd import distribute, train
from keras_udd.config import ModelConfig

# The download's stand-in: a local file served at a file:// URL. (Where a
# check would build Keras' VGG19 instead, it builds one with random weights.)
local = os.path.join(folder, "vgg19_notop.h5")
with open(local, "wb") as f:
    f.write(b"weights")
train.VGG19_NOTOP_URL = "file://" + local
train.VGG19_NOTOP_MD5 = hashlib.md5(b"weights").hexdigest()
vgg19 = keras.applications.VGG19
keras.applications.VGG19 = lambda **kw: vgg19(**{**kw, "weights": None})
train.check_vgg_weights(ModelConfig())
strategy = distribute.select_strategy("multiworker", 30)
print("replicas", strategy.num_replicas_in_sync)
cached = os.path.join(folder, "keras", "models", train.VGG19_NOTOP)
assert open(cached, "rb").read() == b"weights", "not fetched into the cache"
"""


def test_vgg_weights_fetched_before_a_multiworker_strategy_is_created(tmp_path):
    """train.main checks the VGG19 weights before it creates the strategy:
    the check must run no TF op, or MultiWorkerMirroredStrategy fails with
    "Collective ops must be configured at program startup" (one worker on
    loopback, in a fresh process; HOME and KERAS_HOME in tmp_path)."""
    env = {**os.environ, "HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / "keras"),
           "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", VGG_THEN_MULTIWORKER, str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas 1" in done.stdout


# ------------------------------------------------------------ run folder
def test_run_folder_new_resume_different_finished_overwrite(tmp_path):
    cfg = tiny_config(tmp_path)
    assert runs.prepare_run_folder(cfg) == "new"
    assert Config.load(tmp_path / "run" / "config.json") == cfg
    assert runs.prepare_run_folder(cfg) == "resume"
    # How it runs may change on resume; what it learns may not.
    no_xla = dataclasses.replace(cfg.train, jit_compile=False)
    assert runs.prepare_run_folder(dataclasses.replace(cfg, train=no_xla)) == "resume"
    other_model = dataclasses.replace(cfg.model, cycle_weight=1.0)
    other = dataclasses.replace(cfg, model=other_model)
    with pytest.raises(runs.RunFolderError, match=r"model.cycle_weight: 10.0 -> 1.0"):
        runs.prepare_run_folder(other)
    (tmp_path / "run" / runs.RESULT).write_text("{}")
    with pytest.raises(runs.RunFolderError, match="finished run"):
        runs.prepare_run_folder(cfg)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    assert runs.prepare_run_folder(other, overwrite=True) == "new"
    assert not (tmp_path / "run" / runs.RESULT).exists()
    assert (tmp_path / "run" / "notes.txt").exists()  # Only run files go.


def test_a_config_with_an_unknown_setting_names_file_and_setting(tmp_path):
    """A run folder written by another version (a setting since removed)."""
    d = Config().to_dict()
    d["model"]["mode_seeking_weight"] = 0.0
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="config.json: unknown model settings "
                       "mode_seeking_weight"):  # fmt: skip
        Config.load(tmp_path / "config.json")


def test_changing_only_how_often_a_run_backs_up_or_logs_still_resumes(tmp_path):
    cfg = tiny_config(tmp_path)
    assert runs.prepare_run_folder(cfg) == "new"
    for field, value in (("backup_freq", 7), ("log_freq", 3)):
        changed = dataclasses.replace(cfg.train, **{field: value})
        assert runs.prepare_run_folder(dataclasses.replace(cfg, train=changed)) == (
            "resume"
        ), field


def test_training_config_resolves_a_shipped_name_before_a_run_folder(
    tmp_path, monkeypatch
):
    """`--model tiny` run from inside a run folder names the shipped model
    (as `pretrained.resolve` does): its record, not the folder's config.json;
    a file of that name in the folder is the model, then the folder's config
    is its own."""
    from keras_udd import pretrained

    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    (shipped / "tiny.keras").write_bytes(b"")
    record = Config(data=DataConfig(domain="face")).to_dict()
    (shipped / "tiny.json").write_text(json.dumps({"config": record}))
    monkeypatch.setattr(pretrained, "_folder", lambda: shipped)
    run = tmp_path / "run"
    run.mkdir()
    Config(data=DataConfig(domain="text")).save(run / runs.CONFIG)
    monkeypatch.chdir(run)
    assert runs.training_config("tiny").data.domain == "face"
    (run / "tiny").write_bytes(b"")  # Now "tiny" is this folder's file.
    assert runs.training_config("tiny").data.domain == "text"


def test_resume_hint_drops_overwrite(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path)
    argv = ["train.py", "--domain", "text", "--overwrite", "--epochs", "3"]
    monkeypatch.setattr(sys, "argv", argv)
    hint = train.resume_command(cfg)
    assert hint.startswith("python train.py --domain text")
    assert "--overwrite" not in hint and "--epochs 3" in hint
    assert f"--output-dir {cfg.train.output_dir}" in hint
    argv[0] = "/venv/bin/keras-udd-train"  # The console script.
    assert train.resume_command(cfg).startswith("keras-udd-train --domain text")


def test_csv_log_keeps_the_last_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,val_psnr\n0,2.0,20.0\n1,1.0,21.5\n1,0.5,21.0\n")
    rows = runs.read_csv_log(path)
    assert [r["epoch"] for r in rows] == [0, 1] and rows[1]["loss"] == 0.5
    assert runs.best_logged(path) == 21.0 and runs.best_logged(tmp_path / "x") is None


# -------------------------------------------------------------- strategy
def test_strategy_selection_on_one_device():
    assert distribute.select_strategy("auto") is tf.distribute.get_strategy()
    default = distribute.select_strategy("default")
    assert distribute.use_jit(default, True) and not distribute.use_jit(default, False)
    mirrored = distribute.select_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError):
        distribute.select_strategy("tpu")


def test_chief_detection(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief()
    cluster = {"worker": ["a:1", "b:1"]}
    for index, chief in ((0, True), (1, False)):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        assert distribute.is_chief() is chief
    assert distribute.worker_id() == "worker-1"


# ------------------------------------------------------------- callbacks
def test_sample_grid_writes_png_and_tensorboard_image(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    model = UIDGAN(tiny_config(tmp_path).model)
    rng = np.random.default_rng(0)
    blurred, sharp = rng.uniform(-1, 1, (2, 2, 32, 32, 3)).astype("float32")
    grid = callbacks.SampleGrid(blurred, sharp, tmp_path / "png", tmp_path / "tb")
    grid.set_model(model)
    grid.on_train_begin()
    grid.on_epoch_end(0)
    for name in ("epoch_000.png", "epoch_001.png"):
        with Image.open(tmp_path / "png" / name) as image:
            assert image.size == (3 * 32 + 2 * 2, 2 * 32 + 2)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    events.Reload()
    assert events.Tags()["tensors"] == ["blurred | deblurred | sharp"]


def test_tensorboard_steps_follow_the_model_across_fit_calls(tmp_path):
    """Batch scalars every update_freq steps at the model's step count (so a
    resumed run, a new callback, continues the curve), epoch scalars at the
    epoch whatever update_freq is, both learning rates, validation apart."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    def scalars(folder, tag):
        """(step, value) sorted by step (the two event files of one folder,
        written within a second, are read in either order)."""
        events = EventAccumulator(str(tmp_path / folder), size_guidance={"tensors": 0})
        events.Reload()
        return sorted(
            (e.step, float(tf.make_ndarray(e.tensor_proto)))
            for e in events.Tensors(tag)
        )

    model = types.SimpleNamespace(
        iterations=keras.Variable(0, dtype="int64"),
        d_optimizer=keras.optimizers.SGD(0.5),
        g_optimizer=keras.optimizers.SGD(0.25),
    )
    for epoch, steps in ((0, (1, 2, 3, 4)), (1, (5, 6))):  # Two runs of one epoch.
        board = callbacks.RunTensorBoard(tmp_path, update_freq=2)
        board.set_model(model)
        for step in steps:
            model.iterations.assign(step)
            logs = {"d_loss": float(step), "g_loss": np.array([1.0]), "note": "x"}
            board.on_train_batch_end(step - 1, logs)
        board.on_epoch_end(epoch, {"d_loss": 10.0 + epoch, "val_psnr": 20.0 + epoch})
        board.on_train_end()
    assert scalars("train", "batch_d_loss") == [(2, 2.0), (4, 4.0), (6, 6.0)]
    assert scalars("train", "batch_g_loss") == [(2, 1.0), (4, 1.0), (6, 1.0)]
    assert scalars("train", "epoch_d_loss") == [(0, 10.0), (1, 11.0)]
    assert scalars("train", "epoch_learning_rate_g") == [(0, 0.25), (1, 0.25)]
    assert scalars("validation", "epoch_psnr") == [(0, 20.0), (1, 21.0)]


def poll(condition, timeout=30.0):
    """Waits until `condition()` holds (checked every millisecond, so that a
    pending signal's handler runs), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


def test_signals_wait_until_a_write_is_done():
    seen = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with callbacks.interrupts_deferred() as held:
            os.kill(os.getpid(), signal.SIGTERM)
            poll(lambda: held)  # The signal has arrived and is held...
            assert seen == []  # ...not passed on.
        assert seen == [signal.SIGTERM]  # Delivered after the block.
    finally:
        signal.signal(signal.SIGTERM, before)


def test_first_signal_stops_between_steps_second_at_once():
    with callbacks.StopOnSignal().installed() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        poll(lambda: stop.received is not None)  # Recorded, nothing raised.
        with pytest.raises(callbacks.StopRequested):
            stop.on_train_batch_end(0)
        with pytest.raises(KeyboardInterrupt, match="twice"):
            os.kill(os.getpid(), signal.SIGINT)
            poll(lambda: False)  # The handler raises within the wait.


def test_checkpoints_are_renamed_into_place_once_complete(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    latest = callbacks.SafeModelCheckpoint(str(tmp_path / "latest.keras"))
    best = callbacks.SafeModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="val_psnr", mode="max",
        save_best_only=True,
    )  # fmt: skip
    for checkpoint in (latest, best):
        checkpoint.set_model(model)
        checkpoint.on_epoch_end(0, {"val_psnr": 20.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "latest.keras"]
    model.layers[0].kernel.assign(np.ones((2, 1)))
    (tmp_path / "best.partial.keras").write_text("left by a killed run")
    best.on_epoch_end(1, {"val_psnr": 19.0})  # Not better: the old file stays.
    kernel = keras.models.load_model(tmp_path / "best.keras").layers[0].kernel
    assert not np.allclose(kernel, 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "latest.keras"]


def test_image_grid_layout():
    columns = [np.full((2, 4, 5, 3), v, "float32") for v in (-1.0, 0.0, 1.0)]
    grid = callbacks.image_grid(columns, gap=1)
    assert grid.shape == (2 * 4 + 1, 3 * 5 + 2, 3) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 0 and grid[0, 6, 0] == 128 and grid[0, 12, 0] == 255


# ------------------------------------------------------ NaN and infinities
def _compiled_dense():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _h5_values(path):
    import h5py

    values = []

    def collect(name, item):
        if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
            values.append(np.asarray(item))

    with h5py.File(path, "r") as f:
        f.visititems(collect)
    return values


def test_every_non_finite_log_entry_stops_with_the_step_and_terms():
    model = _compiled_dense()
    stop = callbacks.TerminateOnNonFinite()
    stop.set_model(model)
    stop.on_epoch_begin(1)
    stop.on_train_batch_end(0, {"d_loss": 1.0, "g_loss": 2.0})  # No "loss".
    model.optimizer.iterations.assign(7)
    with pytest.raises(callbacks.TrainingDiverged) as err:
        stop.on_train_batch_end(3, {"d_loss": 1.0, "g_loss": np.nan, "kl": np.inf})
    assert str(err.value) == (
        "training diverged at step 7 (epoch 2): non-finite g_loss=nan, kl=inf"
    )


def test_checkpoints_and_backup_keep_their_last_finite_state(tmp_path):
    model = _compiled_dense()
    latest = callbacks.SafeModelCheckpoint(str(tmp_path / "latest.keras"))
    backup = callbacks.TrainingBackup(str(tmp_path / "backup"), steps_per_epoch=2)
    for callback in (latest, backup):
        callback.set_model(model)
        callback.on_epoch_end(0, {})
    model.layers[0].kernel.assign(np.full((2, 1), np.nan))
    model.optimizer.iterations.assign(1)  # save_now skips a state already saved.
    for save in (lambda: latest.on_epoch_end(1, {}), backup.save_now):
        with pytest.raises(callbacks.TrainingDiverged, match="kernel.*not written"):
            save()
    kernel = keras.saving.load_model(tmp_path / "latest.keras").layers[0].kernel
    assert np.isfinite(keras.ops.convert_to_numpy(kernel)).all()
    assert all(np.isfinite(v).all() for v in _h5_values(backup.weights_path))


@pytest.mark.slow
def test_diverging_run_exits_1_naming_the_step_and_saves_nothing_non_finite(
    tmp_path, capsys
):
    """An absurd learning rate makes the losses non-finite within a few steps:
    the run stops there with exit status 1, and the backup it leaves (one per
    step here) holds the last finite weights."""
    out = tmp_path / "run"
    argv = [
        "--domain", "text", *TINY_FLAGS, "--learning-rate", "1e30",
        "--epochs", "1", "--steps-per-epoch", "6", "--backup-freq", "1",
        "--output-dir", str(out),
    ]  # fmt: skip
    assert train.main(argv) == 1
    message = capsys.readouterr().err
    # A loss term (or, had the losses stayed finite, a weight to be saved).
    found = re.search(r"training diverged (at|by) step (\d+).*: non-finite", message)
    assert found, message
    step = int(found[2])
    assert 1 <= step <= 6 and "the last finite backup is kept" in message
    meta = json.loads((out / "backup" / "training_metadata.json").read_text())
    assert meta["batch"] < step
    weights = _h5_values(out / "backup" / "latest.weights.h5")
    assert weights and all(np.isfinite(v).all() for v in weights)
    assert not (out / runs.LATEST).exists() and not (out / runs.RESULT).exists()


# ------------------------------------------------------- resume: the data
class BatchRecorder(keras.Model):
    """Records each `(sharp, blurred)` batch it trains on, one fingerprint per
    step (the sums of every image), and counts steps as UIDGAN does."""

    def __init__(self):
        super().__init__()
        self.iterations = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False
        )
        self.built = True
        self.seen = []

    def train_step(self, data):
        sums = [np.round(np.asarray(x).sum(axis=(1, 2, 3)), 3) for x in data]
        self.seen.append(np.concatenate(sums).tolist())
        self.iterations.assign_add(1)
        return {"step": keras.ops.convert_to_tensor(self.iterations)}


class StopAfter(keras.callbacks.Callback):
    """Stops training at once after step `step` (as a kill would)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.iterations.numpy()) == self.step:
            raise KeyboardInterrupt("killed")


def test_mid_epoch_resume_sees_the_batches_of_an_uninterrupted_run(tmp_path):
    """Kill after step 6 of 3 x 4 (mid-epoch 2), resume from the backup: the
    resumed run trains on batches 6-11 of the uninterrupted run's stream, in
    order, none twice (the rest of epoch 2 and epoch 3 are two fit calls)."""
    from keras_udd.data import make_train_dataset

    cfg = tiny_config(tmp_path, epochs=3, steps_per_epoch=4)
    cfg.data = dataclasses.replace(cfg.data, text_pool_size=64, blur_kernel_bank=8,
                                   deterministic=True)  # fmt: skip

    def run(model, backup_dir, start, extra=(), resume=None):
        backup = callbacks.TrainingBackup(backup_dir, 4, save_freq=1)
        if resume:
            resume = backup.restore(model)
        model.compile(run_eagerly=True)
        stream = train.training_stream(
            cfg.data, make_train_dataset(cfg.data, start_batch=start), start
        )
        train.fit(model, stream, None, [backup, *extra], backup, cfg, resume)
        return model.seen

    whole = run(BatchRecorder(), tmp_path / "whole", 0)
    assert len(whole) == 12
    killed = BatchRecorder()
    with pytest.raises(KeyboardInterrupt):
        run(killed, tmp_path / "backup", 0, [StopAfter(6)])
    assert killed.seen == whole[:6]
    start = runs.backup_iteration(tmp_path / "backup", 4)
    assert start == 6
    resumed = run(BatchRecorder(), tmp_path / "backup", start, resume=True)
    assert resumed == whole[6:]


# ------------------------------------------------- end to end: kill, resume
def _wait_for_backup(meta_path, process, condition, timeout=300):
    """Polls the backup metadata until `condition(meta)` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before the interruption"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = None
        if meta and condition(meta):
            return meta
        time.sleep(0.02)
    process.kill()
    raise AssertionError("no backup appeared in time")


@pytest.mark.slow
def test_interrupted_and_killed_run_resumes_and_finishes(tmp_path):
    """Ctrl-C mid-epoch 1, rerun, SIGKILL mid-epoch 2, rerun: the run picks up
    at the saved step each time (epoch and optimizer iterations go on) and
    ends with every artifact and exactly epochs x steps iterations."""
    out = tmp_path / "run"
    epochs, steps = 2, 30
    command = [
        sys.executable, str(ROOT / "train.py"), "--domain", "text", *TINY_FLAGS,
        "--epochs", str(epochs), "--steps-per-epoch", str(steps),
        "--backup-freq", "4", "--log-freq", "5", "--output-dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    meta_path = out / "backup" / "training_metadata.json"

    def start():
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    # 1. Ctrl-C in the middle of epoch 1: a backup of that exact step is saved.
    first = start()
    _wait_for_backup(meta_path, first, lambda m: m["epoch"] == 0 and m["batch"] >= 4)
    first.send_signal(signal.SIGINT)
    log = first.communicate(timeout=120)[0]
    assert first.returncode == 130, log
    assert "Continue with:" in log
    meta = json.loads(meta_path.read_text())
    assert meta["epoch"] == 0 and 4 <= meta["batch"] < steps

    # 2. Rerun; SIGKILL (no chance to save) in the middle of epoch 2.
    second = start()
    _wait_for_backup(meta_path, second, lambda m: m["epoch"] == 1 and m["batch"] >= 4)
    second.kill()
    log = second.communicate(timeout=60)[0]
    assert f"epoch 1, step {meta['batch']} (iteration {meta['batch']})" in log, log[
        :3000
    ]

    # 3. Rerun: continues from the last mid-epoch backup and finishes.
    third = start()
    log = third.communicate(timeout=300)[0]
    assert third.returncode == 0, log
    resumed = re.search(
        r"Resuming .*: epoch (\d+), step (\d+) \(iteration (\d+)\)", log
    )
    epoch, step, iteration = map(int, resumed.groups())
    assert epoch == 2 and 4 <= step < steps and iteration == steps + step
    result = json.loads((out / runs.RESULT).read_text())
    assert result["iterations"] == epochs * steps
    assert result["iterations_this_session"] == epochs * steps - iteration

    rows = runs.read_csv_log(out / runs.CSV_LOG)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(np.isfinite(r["val_psnr"]) and r["val_psnr_blurred"] > 0 for r in rows)
    for name in ("config.json", "latest.keras", "best.keras", "log.csv"):
        assert (out / name).is_file(), name
    assert not (out / "backup").exists()  # Deleted once training has finished.
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "epoch_000.png",
        "epoch_001.png",
        "epoch_002.png",
    ]
    for logs in ("train", "validation", "samples"):
        assert list((out / "logs" / logs).glob("events.out.tfevents.*")), logs
    latest = keras.saving.load_model(out / "latest.keras")
    assert int(latest.d_optimizer.iterations.numpy()) == epochs * steps
    # An E/G update every second step, two optimizer steps each (main terms,
    # then the random branch's).
    assert int(latest.g_optimizer.iterations.numpy()) == epochs * steps // 2 * 2
