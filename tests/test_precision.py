"""Mixed precision: float16 with loss scaling and bfloat16 train a tiny model
on the CPU, save and restore their state, and still export float32."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_udd import distribute
from keras_udd.export import savedmodel
from keras_udd.model import UIDGAN
from tests.conftest import TINY


@pytest.fixture
def policy():
    """Sets a precision for one test and always restores float32."""
    yield distribute.set_precision
    distribute.set_precision("none")


def unpaired_batches(n=4):
    rng = np.random.default_rng(3)
    data = rng.uniform(-1, 1, (n, 2, 2, 32, 32, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((data[:, 0], data[:, 1]))


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_mixed_precision_trains_restores_and_exports_float32(
    precision, policy, tmp_path
):
    policy(precision)
    model = UIDGAN(**TINY)
    model.compile(jit_compile=False)
    assert model.content_encoder_blurred.compute_dtype == precision
    assert model.content_encoder_blurred.variable_dtype == "float32"
    scaled = precision == "float16"  # bfloat16 has float32's range: no scaling.
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == scaled
    history = model.fit(
        unpaired_batches(), epochs=1, steps_per_epoch=4, verbose=0, shuffle=False
    )
    for name, values in history.history.items():
        assert np.isfinite(values).all(), name
    assert int(model.iterations.numpy()) == 4  # Even if a float16 step was skipped.
    blurred = np.random.default_rng(0).uniform(-1, 1, (1, 20, 28, 3)).astype("float32")
    out = model(blurred)
    assert out.dtype == "float32"  # The output tanh runs in float32.

    # The .keras file restores the optimizers' state, loss scale included.
    path = tmp_path / "mixed.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    if scaled:
        assert isinstance(loaded.d_optimizer, keras.optimizers.LossScaleOptimizer)
        for a, b in ((model.d_optimizer, loaded.d_optimizer),
                     (model.g_optimizer, loaded.g_optimizer)):  # fmt: skip
            assert float(b.dynamic_scale.numpy()) == float(a.dynamic_scale.numpy())
            assert int(b.step_counter.numpy()) == int(a.step_counter.numpy())
            assert int(b.iterations.numpy()) == int(a.iterations.numpy())
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    loaded.fit(
        unpaired_batches(), epochs=1, steps_per_epoch=1, verbose=0, shuffle=False
    )

    # Exported from a float32 process (the export tools' default policy): a
    # float32 SavedModel whose output matches the float32 Keras model.
    policy("none")
    exported_from = keras.saving.load_model(path, compile=False)
    assert exported_from.deblurrer.compute_dtype == "float32"
    reference = np.asarray(exported_from(blurred))
    # Within mixed-precision rounding of the trained model's own output.
    assert np.abs(reference - np.asarray(out)).max() < 0.05
    folder = savedmodel.write_savedmodel(exported_from.deblurrer, tmp_path / "export")
    serving = tf.saved_model.load(str(folder)).signatures["deblur_float"]
    assert serving.structured_input_signature[1]["images"].dtype == tf.float32
    unit = (blurred + 1) / 2
    result = next(iter(serving(images=tf.constant(unit)).values())).numpy()
    assert result.dtype == np.float32
    expected = np.clip((reference + 1) / 2, 0, 1)
    np.testing.assert_allclose(result, expected, atol=1e-5)

    # The deblurrer saved alone while the mixed policy was on loads as one
    # float32 network too (its plain-layer parts do not keep the old policy).
    policy(precision)
    model.deblurrer.save(tmp_path / "deblurrer.keras")
    policy("none")
    alone = keras.saving.load_model(tmp_path / "deblurrer.keras", compile=False)
    for key in alone.NETWORKS:
        assert getattr(alone, key).compute_dtype == "float32", key
    np.testing.assert_allclose(np.asarray(alone(blurred)), reference, atol=1e-5)


@pytest.mark.slow
def test_train_py_mixed_precision_flag(policy, tmp_path):
    """`train.py --mixed-precision`: the run trains under that policy, saves
    its loss-scaled optimizers and records the flag. (float16 only: both
    policies train, save and restore in the test above; this is the flag.)"""
    from tests.test_train import TINY_FLAGS, train

    precision = "float16"
    out = tmp_path / "run"
    argv = ["--domain", "text", *TINY_FLAGS, "--mixed-precision", precision,
            "--epochs", "1", "--steps-per-epoch", "2",
            "--output-dir", str(out)]  # fmt: skip
    assert train.main(argv) == 0
    assert keras.mixed_precision.dtype_policy().name == f"mixed_{precision}"
    model = keras.saving.load_model(out / "latest.keras")
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(model.iterations.numpy()) == 2
    assert (
        json.loads((out / "config.json").read_text())["train"]["mixed_precision"]
        == precision
    )
