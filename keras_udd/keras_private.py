"""Every private framework API keras_udd uses, in one place: Keras 3.15 (TF
backend) and one of LiteRT's (ai-edge-litert 2.3) interpreter.

Each is used here only because no public API does the job; each says why.
tests/test_keras_private.py fails by name if a release renames one or changes
what it is called with.
"""

import keras


def sublayers(layer, include_self=True):
    """Every layer nested in `layer` (recursively), e.g. to find the layers of
    one type inside a model for export.

    Private `Layer._flatten_layers`: `Model.layers` lists only the top level,
    and a plain `Layer` (our encoders, decoders) has no public list of the
    layers it holds.
    """
    return list(layer._flatten_layers(include_self=include_self, recursive=True))


def compiled_step(model, step):
    """`step(data) -> logs` compiled as `model.fit` compiles `train_step`:
    tf.function, XLA when `model.jit_compile`, run by the distribution
    strategy on every replica with the logs reduced.

    Private `Model._make_function`: the public `make_train_function` builds
    only the one function for `train_step`, and UIDGAN needs two (a D-only
    step and a D + E/G step, chosen per step in Python, because a `tf.cond`
    around optimizer updates cannot run under MirroredStrategy).
    """
    return model._make_function(step)


class PrebuiltModel(keras.Model):
    """A `keras.Model` built in `__init__`, whose `fit` must not build it again.

    Overrides private `Model._maybe_symbolic_build` to do nothing: under a
    distribution strategy `fit` takes a first batch from the iterator to build
    the model symbolically, and under MultiWorkerMirroredStrategy its
    cross-replica reduction of a `(sharp, blurred)` tuple fails
    (keras-team/keras#20585). There is no public switch.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        pass


def litert_nodes(interpreter):
    """The nodes of a LiteRT interpreter's execution plan, as dicts with
    `index`, `op_name`, `inputs` and `outputs` (tensor indices); after
    `allocate_tensors`, a delegate's partition is one node named "DELEGATE".

    Private `Interpreter._get_ops_details`: the public API lists tensors and
    signatures only, not the ops nor which of them a delegate (XNNPACK) took.
    """
    return interpreter._get_ops_details()
