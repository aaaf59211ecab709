"""The private Keras 3.15 and LiteRT API keras_udd relies on (all in
keras_udd.keras_private).

A release that renames one, changes its signature or stops calling it fails
here, by name, before it breaks training or export less obviously.
"""

import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_udd
from keras_udd import keras_private
from keras_udd.generators import Decoder
from keras_udd.layers import ConvTranspose3x3Stride2

PRIVATE = [
    (keras.layers.Layer, "_flatten_layers", ["self", "include_self", "recursive"]),
    (keras.Model, "_make_function", ["self", "step_function"]),
    (keras.Model, "_maybe_symbolic_build", ["self", "iterator", "data_batch"]),
]


@pytest.mark.parametrize("cls, name, parameters", PRIVATE, ids=[p[1] for p in PRIVATE])
def test_private_keras_api_is_still_there(cls, name, parameters):
    member = getattr(cls, name, None)
    assert callable(member), f"{cls.__name__}.{name} is gone"
    assert list(inspect.signature(member).parameters) == parameters, name


def test_fit_still_calls_the_overridden_symbolic_build():
    source = inspect.getsource(keras.Model.fit)
    assert "_maybe_symbolic_build" in source
    ours = inspect.signature(keras_private.PrebuiltModel._maybe_symbolic_build)
    theirs = inspect.signature(keras.Model._maybe_symbolic_build)
    assert list(ours.parameters) == list(theirs.parameters)


def test_sublayers_finds_layers_nested_in_plain_layers():
    decoder = Decoder(8, 1, 4)
    decoder((keras.KerasTensor((None, 8, 8, 8)), keras.KerasTensor((None, 4))))
    found = keras_private.sublayers(decoder)
    assert found[0] is decoder
    assert sum(isinstance(x, ConvTranspose3x3Stride2) for x in found) == 2
    assert decoder not in keras_private.sublayers(decoder, include_self=False)


def test_compiled_step_runs_a_step_function_on_an_iterator():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    data = tf.data.Dataset.from_tensors((np.ones((4, 2), "f"), np.ones((4, 1), "f")))
    step = keras_private.compiled_step(model, model.train_step)
    logs = step(iter(data.repeat(2)))
    assert np.isfinite(float(logs["loss"]))
    assert int(model.optimizer.iterations) == 1


def _keras_udd_classes():
    for info in pkgutil.walk_packages(keras_udd.__path__, "keras_udd."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == info.name and cls.__module__ != keras_private.__name__:
                yield cls


def test_no_other_module_overrides_a_private_keras_member():
    """Outside keras_private, no keras_udd subclass of a Keras class defines
    a `_name` that a Keras base class has (an override of private API, or a
    clash with one)."""
    clashes = []
    for cls in _keras_udd_classes():
        bases = [b for b in cls.__mro__[1:] if b.__module__.startswith("keras.")]
        for name in vars(cls):
            if name.startswith("_") and not name.startswith("__"):
                clashes += [
                    f"{cls.__name__}.{name}" for b in bases[:1] if hasattr(b, name)
                ]
    assert not clashes


def test_litert_nodes_list_ops_and_the_delegate_partition(tmp_path):
    """A two-op model: without delegates the interpreter lists both ops; with
    XNNPACK (its default) one DELEGATE node that reads the input and writes
    the output."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    params = inspect.signature(Interpreter._get_ops_details).parameters
    assert list(params) == ["self"]

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def model(x):
        kernel = tf.ones([3, 3, 3, 4]) / 27.0
        return tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") - 0.5)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [model.get_concrete_function()], model
    )
    path = tmp_path / "m.tflite"
    path.write_bytes(converter.convert())
    plain = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    plain.allocate_tensors()
    nodes = keras_private.litert_nodes(plain)
    assert {n["op_name"] for n in nodes} >= {"CONV_2D"}
    assert all({"index", "op_name", "inputs", "outputs"} <= set(n) for n in nodes)
    delegated = Interpreter(model_path=str(path))
    delegated.allocate_tensors()
    nodes = keras_private.litert_nodes(delegated)
    (delegate,) = [n for n in nodes if n["op_name"] == "DELEGATE"]
    tensors = {d["index"] for d in delegated.get_input_details()}
    assert set(int(t) for t in delegate["inputs"]) & tensors
