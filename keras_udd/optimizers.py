"""`UIDGAN.optimizer`: its D and E/G optimizers as the one optimizer that
Keras' callbacks look for in `model.optimizer`.

Keras' ReduceLROnPlateau and LearningRateScheduler read and set
`model.optimizer.learning_rate`; TensorBoard reads `iterations` and the
learning rates, BackupAndRestore `built`, SwapEMAWeights the optimizers
inside. `tests/test_callbacks.py` runs every stock callback, so a Keras
release that reads something else fails by name.
"""

import types

import keras


def _unwrapped(optimizer):
    """The optimizer inside a LossScaleOptimizer, else `optimizer`."""
    return getattr(optimizer, "inner_optimizer", optimizer)


class OptimizerPair:
    """The D and E/G optimizers of a compiled `UIDGAN` behind one learning
    rate.

    `learning_rate` is the D optimizer's rate at step 0 (its constant rate,
    or its schedule's first value: `ModelConfig.learning_rate` by default)
    times the model's `learning_rate_factor`, which starts at 1. Setting it
    sets that factor, which multiplies both optimizers' rates at every step
    (`schedules.ScaledLearningRate`): their ratio and the shape of a schedule
    (the linear decay) stay. So ReduceLROnPlateau(factor=0.5) halves both
    rates for the rest of training, and a LearningRateScheduler's
    `schedule(epoch, lr)` gets and returns the D optimizer's undecayed rate.
    The factor is a weight of the model: checkpoints, backups and `.keras`
    files keep it.

    `iterations` is the model's step count (D updates). `inner_optimizer`
    has the two optimizers (inside any LossScaleOptimizer) as `optimizers`:
    where Keras' TensorBoard logs `learning_rate_<name>` from and
    SwapEMAWeights finds the EMA weights, as for a LossScaleOptimizer around
    a MultiOptimizer. `variables` are both optimizers' (`model.summary`).
    """

    built = True  # Both optimizers are built by `UIDGAN.compile`.

    def __init__(self, model, initial_rate):
        self._model = model
        self._initial_rate = float(initial_rate) or 1.0  # A rate of 0 scales as 1.

    @property
    def learning_rate(self):
        factor = keras.ops.convert_to_numpy(self._model.learning_rate_factor)
        return float(factor) * self._initial_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._model.learning_rate_factor.assign(float(value) / self._initial_rate)

    @property
    def iterations(self):
        return self._model.iterations

    @property
    def inner_optimizer(self):
        optimizers = [self._model.d_optimizer, self._model.g_optimizer]
        return types.SimpleNamespace(optimizers=[_unwrapped(o) for o in optimizers])

    @property
    def variables(self):
        return self._model.d_optimizer.variables + self._model.g_optimizer.variables
