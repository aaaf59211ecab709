"""The reference learning-rate schedule: constant, then linear decay to 0."""

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
