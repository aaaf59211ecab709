"""Every stock callback of `keras.callbacks` with `UIDGAN.fit`, by name: a
Keras release that breaks one fails here under its name."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY

from keras_udd import UIDGAN
from keras_udd.schedules import ConstantThenLinearDecay

UNTESTED = {
    "Callback": "the base class: every callback here is one",
    "RemoteMonitor": "posts to an HTTP server (tests use no network)",
    "OrbaxCheckpoint": "needs the orbax-checkpoint package (JAX), not a dependency",
}
D_RATE = ConstantThenLinearDecay(2e-4, total_steps=40)  # Constant, then decays.
G_RATE = 1e-4  # Constant: the two kinds of rate, in a 2:1 ratio at first.
STEPS = 2  # Per epoch.


def images(n, seed):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 32, 32, 3)).astype("float32")


def unpaired(sharp, blurred):
    return tf.data.Dataset.from_tensor_slices((sharp, blurred)).batch(2).repeat()


TRAIN = unpaired(images(4, 0), images(4, 1))
VAL = tf.data.Dataset.from_tensor_slices((images(2, 2), images(2, 3))).batch(1)


def state(model):
    """Every variable that training changes: weights, both optimizers."""
    return model.weights + model.d_optimizer.variables + model.g_optimizer.variables


def snapshot(model):
    return [np.array(v) for v in state(model)]


def assert_state_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def rates(model):
    """The two optimizers' learning rates at the model's current step."""
    return float(model.d_optimizer.learning_rate), float(
        model.g_optimizer.learning_rate
    )


def expected_rates(model, factor):
    step = int(model.iterations)
    return float(D_RATE(step)) * factor, G_RATE * factor


def fit(model, callbacks, epochs=2, data=TRAIN, **kwargs):
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("shuffle", False)  # A dataset: nothing to shuffle.
    return model.fit(
        data, steps_per_epoch=STEPS, epochs=epochs, validation_data=VAL,
        callbacks=callbacks, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def shared_model():
    """One compiled model for every case (its steps are traced once): D on
    the constant-then-decay schedule, E/G on a constant rate, both with EMA
    weights (for SwapEMAWeights)."""
    model = UIDGAN(**TINY)
    model.compile(
        d_optimizer=keras.optimizers.Adam(D_RATE, use_ema=True),
        g_optimizer=keras.optimizers.Adam(G_RATE, use_ema=True),
    )
    return model


@pytest.fixture
def model(shared_model):
    """The shared model, put back as it was after each case."""
    before = snapshot(shared_model)
    yield shared_model
    for variable, value in zip(state(shared_model), before):
        variable.assign(value)


# --------------------------------------------------------------- the cases
def backup_and_restore(model, tmp_path, capsys):
    """An interrupted fit resumes at the next epoch with the weights, both
    optimizers, the step count and the learning-rate factor of the backup."""

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.saved = snapshot(self.model)
            raise RuntimeError("interrupted")

    interrupt = Interrupt()
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2)
    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(model, [halve, backup, interrupt], epochs=3)
    assert float(model.learning_rate_factor) == 0.5
    for variable in state(model):  # Another state, which the backup replaces.
        variable.assign(keras.ops.zeros_like(variable))
    restored = {}
    seen = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: restored.update(state=snapshot(model))
    )
    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    history = fit(model, [backup, seen], epochs=3)
    assert_state_equal(restored["state"], interrupt.saved)
    assert history.epoch == [1, 2]
    assert int(model.iterations) == 3 * STEPS


def callback_list(model, tmp_path, capsys):
    epochs = []
    hook = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: epochs.append(e))
    fit(model, keras.callbacks.CallbackList([hook], add_history=True, model=model))
    assert epochs == [0, 1]


def csv_logger(model, tmp_path, capsys):
    path = tmp_path / "log.csv"
    fit(model, [keras.callbacks.CSVLogger(path)])
    header, *rows = path.read_text().splitlines()
    columns = header.split(",")
    assert len(rows) == 2 and {"loss", "d_loss", "g_loss", "val_psnr"} <= set(columns)
    assert all(math.isfinite(float(r.split(",")[columns.index("loss")])) for r in rows)


def early_stopping(model, tmp_path, capsys):
    stop = keras.callbacks.EarlyStopping(
        monitor="val_psnr", mode="max", patience=0, min_delta=1e9
    )
    history = fit(model, [stop], epochs=5)
    assert history.epoch == [0, 1] and stop.stopped_epoch == 1


def history(model, tmp_path, capsys):
    record = keras.callbacks.History()
    fit(model, [record])
    assert record.epoch == [0, 1]
    logs = record.history
    assert {"loss", "d_loss", "g_loss", "cycle", "val_psnr", "val_ssim"} <= set(logs)
    assert all(len(values) == 2 for values in logs.values())


def lambda_callback(model, tmp_path, capsys):
    """`loss` is logged at every step, as d_loss + g_loss."""
    steps = []
    fit(model, [keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: (
        steps.append({k: float(logs[k]) for k in ("loss", "d_loss", "g_loss")})
    ))])  # fmt: skip
    assert len(steps) == 2 * STEPS
    for logs in steps:
        assert logs["loss"] == pytest.approx(logs["d_loss"] + logs["g_loss"])


def learning_rate_scheduler(model, tmp_path, capsys):
    """The schedule gets and sets the D optimizer's undecayed rate; both
    optimizers' rates follow, their ratio and the decay kept."""
    seen = []

    def schedule(epoch, lr):
        seen.append(lr)
        return lr / 2

    fit(model, [keras.callbacks.LearningRateScheduler(schedule)])
    assert seen == pytest.approx([2e-4, 1e-4])
    assert float(model.learning_rate_factor) == 0.25
    assert rates(model) == pytest.approx(expected_rates(model, 0.25))


def model_checkpoint(model, tmp_path, capsys):
    """A `.keras` checkpoint loads with the weights, both optimizers and the
    learning-rate factor (which ReduceLROnPlateau changed)."""
    path = tmp_path / "latest.keras"
    reduce = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", patience=1, min_delta=1e9, factor=0.5
    )
    fit(model, [reduce, keras.callbacks.ModelCheckpoint(path)])
    loaded = keras.saving.load_model(path)
    assert float(loaded.learning_rate_factor) == 0.5
    assert rates(loaded) == pytest.approx(rates(model))
    assert_state_equal(snapshot(loaded), snapshot(model))


def model_checkpoint_weights(model, tmp_path, capsys):
    path = tmp_path / "latest.weights.h5"
    fit(model, [keras.callbacks.ModelCheckpoint(path, save_weights_only=True)])
    trained = snapshot(model)
    for variable in state(model):
        variable.assign(keras.ops.zeros_like(variable))
    model.load_weights(path)
    assert_state_equal(snapshot(model), trained)


def progbar_logger(model, tmp_path, capsys):
    fit(model, [keras.callbacks.ProgbarLogger()], verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "- loss:" in out and "- d_loss:" in out


def reduce_lr_on_plateau(model, tmp_path, capsys):
    """Both rates halve at each plateau (two here), ratio and decay kept."""
    reduce = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", patience=1, min_delta=1e9, factor=0.5
    )
    history = fit(model, [reduce], epochs=3)
    assert float(model.learning_rate_factor) == 0.25
    assert rates(model) == pytest.approx(expected_rates(model, 0.25))
    # The rate each epoch ran at (logged before that epoch's reduction).
    assert history.history["learning_rate"] == pytest.approx([2e-4, 2e-4, 1e-4])


def swap_ema_weights(model, tmp_path, capsys):
    """Validation runs on the EMA weights of both optimizers; training goes
    on with the trained ones."""

    def weights():
        return [np.array(v) for v in model.trainable_weights]

    seen = {}
    record = keras.callbacks.LambdaCallback(
        on_test_begin=lambda logs: seen.update(weights=weights())
    )
    fit(model, [keras.callbacks.SwapEMAWeights(), record])
    trained = weights()
    for optimizer, variables in (
        (model.d_optimizer, model._d_variables()),
        (model.g_optimizer, model._g_variables()),
    ):
        optimizer.finalize_variable_values(variables)  # The EMA weights, now.
    ema = weights()
    assert_state_equal(seen["weights"], ema)
    assert any(not np.array_equal(a, b) for a, b in zip(trained, ema))


def tensorboard(model, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    def tags(folder):
        events = EventAccumulator(str(tmp_path / folder), size_guidance={"tensors": 0})
        events.Reload()
        return set(events.Tags()["tensors"])

    fit(model, [keras.callbacks.TensorBoard(tmp_path, write_steps_per_second=True)])
    names = [o.name for o in (model.d_optimizer, model.g_optimizer)]
    train = tags("train")
    assert {"epoch_loss", "epoch_d_loss", "epoch_steps_per_second"} <= train
    assert {f"epoch_learning_rate_{name}" for name in names} <= train
    assert "evaluation_psnr_vs_iterations" in tags("validation")


def terminate_on_nan(model, tmp_path, capsys):
    """A NaN step stops the run after that step."""
    nan = np.full((4, 32, 32, 3), np.nan, "float32")
    start = int(model.iterations)
    history = fit(model, [keras.callbacks.TerminateOnNaN()], epochs=3,
                  data=unpaired(nan, nan))  # fmt: skip
    assert int(model.iterations) == start + 1
    assert history.epoch == [0] and model.stop_training


CASES = {
    "CallbackList": callback_list,
    "CSVLogger": csv_logger,
    "EarlyStopping": early_stopping,
    "History": history,
    "LambdaCallback": lambda_callback,
    "LearningRateScheduler": learning_rate_scheduler,
    "ModelCheckpoint": model_checkpoint,
    "ModelCheckpoint-weights": model_checkpoint_weights,
    "ProgbarLogger": progbar_logger,
    "ReduceLROnPlateau": reduce_lr_on_plateau,
    "SwapEMAWeights": swap_ema_weights,
    "TensorBoard": tensorboard,
    "TerminateOnNaN": terminate_on_nan,
    # Last: a resumed fit leaves the epoch it resumed at on the model, where
    # Keras' next fit of it would start (Keras 3.15).
    "BackupAndRestore": backup_and_restore,
}


def test_every_stock_callback_has_a_case():
    stock = {
        name
        for name, value in vars(keras.callbacks).items()
        if isinstance(value, type)
        and (issubclass(value, keras.callbacks.Callback) or name == "CallbackList")
    }
    covered = {name.split("-")[0] for name in CASES}
    assert stock - covered - set(UNTESTED) == set()
    assert covered <= stock


@pytest.mark.parametrize("name", list(CASES))
def test_stock_callback(name, model, tmp_path, capsys):
    CASES[name](model, tmp_path, capsys)


@pytest.mark.parametrize("setting", ["mixed_float16", "MirroredStrategy"])
def test_one_learning_rate_for_both_optimizers(setting):
    """`model.optimizer.learning_rate` (what the callbacks set) scales both
    optimizers also inside LossScaleOptimizers (mixed float16) and with
    mirrored variables (set outside the replicas, read inside as a step
    does); a model compiled from the saved compile config scales the same."""
    strategy = tf.distribute.get_strategy()
    if setting == "MirroredStrategy":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    else:
        keras.mixed_precision.set_global_policy(setting)
    try:
        with strategy.scope():
            model = UIDGAN(**TINY)
            model.compile(total_steps=40)
            clone = UIDGAN.from_config(model.get_config())
            clone.compile_from_config(model.get_compile_config())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    start = ConstantThenLinearDecay(model.config.learning_rate, 40)(0)
    assert model.optimizer.learning_rate == pytest.approx(float(start))
    for m in (model, clone):
        m.optimizer.learning_rate = float(start) / 4
        if setting == "mixed_float16":
            assert isinstance(m.d_optimizer, keras.optimizers.LossScaleOptimizer)
        got = strategy.run(lambda m=m: (m.d_optimizer.learning_rate,
                                        m.g_optimizer.learning_rate))  # fmt: skip
        assert [float(r) for r in got] == pytest.approx([float(start) / 4] * 2)
