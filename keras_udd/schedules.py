"""Learning rates: the reference schedule (constant, then linear decay to 0) and
the factor on both optimizers' rates that Keras' callbacks set."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_udd")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate` for the first `decay_start_fraction` of `total_steps`
    optimizer steps, then linear decay reaching 0 at `total_steps`."""

    def __init__(self, learning_rate, total_steps, decay_start_fraction=0.5):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.learning_rate = learning_rate
        self.total_steps = int(total_steps)
        self.decay_start_fraction = decay_start_fraction

    def __call__(self, step):
        step = ops.cast(step, "float32")
        start = float(int(self.total_steps * self.decay_start_fraction))
        span = max(float(self.total_steps) - start, 1.0)
        factor = ops.clip(1.0 - (step - start) / span, 0.0, 1.0)
        return self.learning_rate * factor

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "decay_start_fraction": self.decay_start_fraction,
        }


@keras.saving.register_keras_serializable(package="keras_udd")
class ScaledLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """`rate` (a float or a schedule) times `factor`, a scalar variable:
    `UIDGAN.learning_rate_factor`, which both of its optimizers' rates share
    and Keras' learning-rate callbacks set (through `UIDGAN.optimizer`).

    `UIDGAN.compile` gives the factor (`scale_by_factor`); a rate loaded from
    a config has none (factor 1) until then.
    """

    def __init__(self, rate, factor=None):
        self.rate = rate
        self.factor = factor

    def unscaled(self, step):
        """The rate at `step` without the factor."""
        if isinstance(self.rate, keras.optimizers.schedules.LearningRateSchedule):
            return self.rate(step)
        return self.rate

    def __call__(self, step):
        rate = self.unscaled(step)
        if self.factor is None:
            return rate
        return ops.cast(rate, "float32") * ops.cast(self.factor, "float32")

    def get_config(self):
        rate = self.rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            rate = keras.optimizers.schedules.serialize(rate)
        return {"rate": rate}

    @classmethod
    def from_config(cls, config):
        rate = config["rate"]
        if isinstance(rate, dict):
            rate = keras.optimizers.schedules.deserialize(rate)
        return cls(rate)


def scale_by_factor(optimizer, factor) -> ScaledLearningRate:
    """Makes the learning rate of `optimizer` (of the optimizer inside, for a
    LossScaleOptimizer) its current rate or schedule times `factor`, and
    returns that `ScaledLearningRate` (a rate scaled before is rescaled, not
    scaled twice)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = inner.get_config()["learning_rate"]  # A float or a serialized schedule.
    if isinstance(rate, dict):
        rate = keras.optimizers.schedules.deserialize(rate)
    if isinstance(rate, ScaledLearningRate):
        rate = rate.rate
    scaled = ScaledLearningRate(rate, factor)
    inner.learning_rate = scaled
    return scaled
