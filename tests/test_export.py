"""Export: the SavedModel and TFLite models compute what the Keras deblurrer does.

One tiny model, trained for two steps and saved as `.keras`, is exported once
with every format and quantization (module fixture); the tests then check the
artifacts independently of the exporter's own verification.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402
from conftest import TINY  # noqa: E402
from PIL import Image  # noqa: E402

from keras_udd import UIDGAN, keras_private  # noqa: E402
from keras_udd.export import contract, tflite, verify  # noqa: E402
from keras_udd.export.cli import main as export_main  # noqa: E402
from keras_udd.layers import ConvTranspose3x3Stride2  # noqa: E402
from keras_udd.runtime import to_uint8  # noqa: E402

SIZES = [(32, 32), (37, 53), (64, 48)]
# Every op the float32 model may contain: all TFLite builtins that XNNPACK
# runs, plus the int32 shape arithmetic of the pad-to-4 and crop.
EXPECTED_FLOAT32_OPS = {
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTH_TO_SPACE",
    "FLOOR_MOD",
    "FULLY_CONNECTED",
    "LEAKY_RELU",
    "MEAN",
    "MUL",
    "NEG",
    "PACK",
    "PAD",
    "RELU",
    "RESHAPE",
    "RSQRT",
    "SHAPE",
    "SQUARED_DIFFERENCE",
    "STRIDED_SLICE",
    "SUB",
    "TANH",
}


def train_and_save(path, crop, **overrides):
    """A tiny UIDGAN fitted for 2 steps on random [crop, crop] batches."""
    keras.utils.set_random_seed(0)
    model = UIDGAN(**{**TINY, **overrides})
    model.compile(run_eagerly=True)  # Two steps: tracing would cost more.
    rng = np.random.default_rng(0)
    sharp, blurred = rng.uniform(-1, 1, (2, 2, crop, crop, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors((sharp, blurred)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    model.save(path)
    return model


def export_args(model_path, out, *extra):
    return [
        *("--model", str(model_path), "--out", str(out), "--latency-size", "0"),
        *("--calibration-samples", "4", "--calibration-size", "32", *extra),
    ]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`(out folder, loaded Keras deblurrer, model config)` of a full export."""
    tmp = tmp_path_factory.mktemp("export")
    train_and_save(tmp / "m.keras", 32)
    assert export_main(export_args(tmp / "m.keras", tmp / "out")) == 0
    model, deblurrer = verify.load_model(tmp / "m.keras")
    return tmp / "out", deblurrer, model.get_config(), tmp / "m.keras"


def keras_unit(deblurrer, image):
    """The Keras reference on float32 [N, H, W, 3] in [0, 1]."""
    return np.asarray(contract.deblur_unit(deblurrer, tf.constant(image)))


def random_images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 1, (1, h, w, 3)).astype("float32") for h, w in sizes]


def tflite_path(out, quantization):
    return out / "tflite" / tflite.FILE_NAMES[quantization]


def interpreter_ops(path):
    """Op names as the interpreter reads them (no delegate applied)."""
    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    return {op["op_name"] for op in keras_private.litert_nodes(interpreter)}


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.float64(a) - np.float64(b)) ** 2))


# ------------------------------------------------------------------- layout
def test_export_writes_every_artifact_and_contract(exported):
    out, _, _, _ = exported
    assert (out / "savedmodel" / "1" / "saved_model.pb").is_file()
    assert (out / "savedmodel" / "contract.json").is_file()
    for quantization in tflite.QUANTIZATIONS:
        assert tflite_path(out, quantization).is_file()
        assert tflite_path(out, quantization).with_suffix(".json").is_file()
    report = json.loads((out / "export_report.json").read_text())
    assert [r["kind"] for r in report["rows"]] == ["keras", "savedmodel",
                                                    *tflite.QUANTIZATIONS]  # fmt: skip
    assert not any(r["failures"] for r in report["rows"])


def test_missing_model_file_is_named(tmp_path):
    missing = tmp_path / "no_such_model.keras"
    with pytest.raises(FileNotFoundError, match="no_such_model.keras"):
        export_main(export_args(missing, tmp_path / "out"))


# -------------------------------------------------------------- SavedModel
def test_savedmodel_signatures_have_documented_names_and_dtypes(exported):
    out, _, _, _ = exported
    loaded = tf.saved_model.load(str(out / "savedmodel" / "1"))
    expected = {
        "serving_default": ("images", tf.uint8, "deblurred", tf.uint8),
        "deblur_float": ("images", tf.float32, "deblurred", tf.float32),
        "deblur_encoded": ("image_bytes", tf.string, "png_bytes", tf.string),
    }
    assert set(loaded.signatures) == set(expected)
    for name, (in_name, in_dtype, out_name, out_dtype) in expected.items():
        signature = loaded.signatures[name]
        inputs = signature.structured_input_signature[1]
        assert list(inputs) == [in_name]
        assert inputs[in_name].dtype == in_dtype
        outputs = signature.structured_outputs
        assert list(outputs) == [out_name]
        assert outputs[out_name].dtype == out_dtype
    images_spec = loaded.signatures["deblur_float"].structured_input_signature[1]
    assert images_spec["images"].shape.as_list() == [None, None, None, 3]


def test_savedmodel_float_signature_matches_keras(exported):
    out, deblurrer, _, _ = exported
    signature = tf.saved_model.load(str(out / "savedmodel" / "1")).signatures
    batch = random_images([(37, 53), (37, 53)], seed=1)
    for image in random_images(SIZES) + [np.concatenate(batch)]:
        got = signature["deblur_float"](images=tf.constant(image))["deblurred"]
        assert got.shape == image.shape
        np.testing.assert_allclose(got.numpy(), keras_unit(deblurrer, image), atol=1e-4)


def test_savedmodel_uint8_and_encoded_signatures_round_trip_files(exported):
    out, deblurrer, _, _ = exported
    signature = tf.saved_model.load(str(out / "savedmodel" / "1")).signatures
    picture = to_uint8(random_images([(37, 53)], seed=2)[0])
    expected = to_uint8(keras_unit(deblurrer, picture / np.float32(255)))
    got = signature["serving_default"](images=tf.constant(picture))["deblurred"]
    assert got.dtype == tf.uint8
    assert np.abs(got.numpy().astype(int) - expected).max() <= 1

    files = []
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        Image.fromarray(picture[0]).save(buffer, fmt)
        files.append(buffer.getvalue())
    png = signature["deblur_encoded"](image_bytes=tf.constant(files))["png_bytes"]
    assert png.shape == (2,)
    for data, result in zip(files, png.numpy(), strict=True):
        assert result.startswith(b"\x89PNG")
        decoded = np.asarray(Image.open(io.BytesIO(result)))[None]
        # The JPEG's pixels as the SavedModel decoded them (TF's decoder).
        pixels = tf.io.decode_image(data, channels=3).numpy()[None]
        reference = to_uint8(keras_unit(deblurrer, pixels / np.float32(255)))
        assert decoded.shape == picture.shape
        assert np.abs(decoded.astype(int) - reference).max() <= 1


# ------------------------------------------------------------------ TFLite
def test_no_tflite_model_reads_resource_variables(exported):
    out, _, _, _ = exported
    for quantization in tflite.QUANTIZATIONS:
        ops = interpreter_ops(tflite_path(out, quantization))
        assert not ops & {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}
        assert not any(op.startswith(("CUSTOM", "Flex")) for op in ops)


def test_float32_tflite_has_only_the_expected_builtin_ops(exported):
    out, _, _, _ = exported
    ops = interpreter_ops(tflite_path(out, "none"))
    assert ops <= EXPECTED_FLOAT32_OPS, ops - EXPECTED_FLOAT32_OPS
    # The ops that split the XNNPACK graph before the rewrites are gone.
    assert not ops & {"TRANSPOSE_CONV", "MIRROR_PAD", "BROADCAST_TO", "FILL"}


def test_xnnpack_takes_everything_but_shape_arithmetic_and_crops(exported):
    out, _, _, _ = exported
    # int32 shape arithmetic of the pad-to-4, and the two dynamic crops.
    allowed = {"SHAPE", "STRIDED_SLICE", "PACK", "FLOOR_MOD", "NEG", "ADD"}
    for quantization in ("none", "dynamic"):
        path = tflite_path(out, quantization)
        report = verify.xnnpack_delegation(path, size=(37, 53))
        assert report["partitions"] <= 3, report
        assert set(report["not_delegated"]) <= allowed, report
        assert report["delegated"] >= report["ops"] - 20, report


def test_float32_tflite_matches_keras_at_three_sizes(exported):
    out, deblurrer, _, _ = exported
    run = verify.TFLiteRunner(tflite_path(out, "none"), num_threads=2)
    for image in random_images(SIZES, seed=3):
        got = run(image)
        assert got.shape == image.shape
        np.testing.assert_allclose(got, keras_unit(deblurrer, image), atol=1e-4)


def test_quantized_tflite_models_stay_close_to_float32(exported):
    out, _, _, _ = exported
    from keras_udd.export import images

    pictures = images.synthetic_images(SIZES, seed=4)
    float32 = verify.TFLiteRunner(tflite_path(out, "none"))
    reference = np.concatenate([float32(p).ravel() for p in pictures])
    figures = {}
    for quantization in ("float16", "dynamic", "int8"):
        run = verify.TFLiteRunner(tflite_path(out, quantization))
        got = np.concatenate([run(p).ravel() for p in pictures])
        figures[quantization] = psnr(got, reference)
    print(f"PSNR vs float32 TFLite (dB): {figures}")
    assert figures["float16"] >= 40
    assert figures["dynamic"] >= 30
    # Full int8 (4 synthetic calibration crops): 35.6 dB measured on the
    # development machine. This 2-step model cannot judge the calibration
    # (crops scaled x255 or x0.1 still gave 32.7 and 33.2 dB); the shipped
    # model's int8 test in test_pretrained.py does.
    assert figures["int8"] >= 25


# ---------------------------------------------------------------- contract
def test_tflite_contracts_match_the_interpreter(exported):
    out, _, config, _ = exported
    for quantization in tflite.QUANTIZATIONS:
        path = tflite_path(out, quantization)
        document = json.loads(path.with_suffix(".json").read_text())
        interpreter = Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner(document["signature_key"])
        for entries, details, all_details in (
            (document["inputs"], runner.get_input_details(),
             interpreter.get_input_details()),
            (document["outputs"], runner.get_output_details(),
             interpreter.get_output_details()),
        ):  # fmt: skip
            assert [e["name"] for e in entries] == list(details)
            by_index = {d["index"]: d for d in all_details}
            for entry in entries:
                real = details[entry["name"]]
                assert entry["index"] == real["index"]
                assert entry["dtype"] == np.dtype(real["dtype"]).name == "float32"
                shape = by_index[real["index"]]["shape_signature"].tolist()
                assert entry["shape"] == shape == [1, -1, -1, 3]
                assert entry["tensor_name"] == by_index[real["index"]]["name"]
                assert entry["layout"] == "NHWC" and entry["range"] == [0.0, 1.0]
        assert document["file"] == path.name
        assert document["quantization"] == quantization
        assert document["sizes"]["min_height"] == document["sizes"]["min_width"] == 16
        assert document["model_config"] == config
        assert document["parity"]["sizes"] == [list(s) for s in SIZES]
        assert set(document["op_set"]) == interpreter_ops(path)


def test_savedmodel_contract_lists_the_real_signatures(exported):
    out, _, config, _ = exported
    document = json.loads((out / "savedmodel" / "contract.json").read_text())
    loaded = tf.saved_model.load(str(out / "savedmodel" / "1"))
    assert set(document["signatures"]) == set(loaded.signatures)
    for name, entry in document["signatures"].items():
        real = loaded.signatures[name].structured_input_signature[1]
        assert {e["name"]: e["dtype"] for e in entry["inputs"]} == {
            k: v.dtype.name for k, v in real.items()
        }
        real_out = loaded.signatures[name].structured_outputs
        assert {e["name"]: e["dtype"] for e in entry["outputs"]} == {
            k: v.dtype.name for k, v in real_out.items()
        }
    assert document["model_config"] == config
    assert document["parity"]["max_abs_error"] <= 1e-4


def test_verify_alone_rechecks_an_export(exported, capsys):
    out, _, _, model_path = exported
    args = ["--model", str(model_path), "--out", str(out), "--latency-size", "0"]
    assert verify.main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("ok") >= 5 and "| tflite int8 |" in printed
    assert "Verifying on synthetic images (3 sizes)" in printed  # No config.


def test_export_falls_back_to_synthetic_images_saying_why(exported, tmp_path, capsys):
    """A run folder whose validation images cannot be read here (its config
    has `--val-images 0`): export says why, verifies on synthetic images and
    the contract says so."""
    import shutil

    from keras_udd.config import Config, DataConfig

    _, _, _, model_path = exported
    shutil.copy(model_path, tmp_path / "best.keras")
    Config(data=DataConfig(val_images=0)).save(tmp_path / "config.json")
    out = tmp_path / "exported"
    assert export_main(export_args(tmp_path / "best.keras", out,
                                   "--formats", "savedmodel")) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "text validation images cannot be read here (--domain text: no " in printed
    assert "Verifying on synthetic images (3 sizes)" in printed
    document = json.loads((out / "savedmodel" / "contract.json").read_text())
    assert document["parity"]["test_images"] == "synthetic images"


def test_contract_names_the_domain_images_it_was_verified_on(exported):
    from keras_udd.config import Config, DataConfig
    from keras_udd.export import images

    out, deblurrer, _, _ = exported
    pages = DataConfig(domain="text", val_images=2, test_images=2, text_pool_size=64,
                       blur_kernel_bank=8, load_size=36, crop_size=32)  # fmt: skip
    assert images.readable_domain(Config(data=pages)) == pages
    check = verify.Verifier(deblurrer, latency_size=0, data_config=pages)
    _, parity = check("savedmodel", out / "savedmodel" / "1")
    assert parity["test_images"] == "text validation images"


def test_checkout_entry_points_and_library_without_the_exporter():
    """`python -m export` / `export.verify` run the package's CLIs from a
    checkout, and the library's deblur and evaluate tools load no exporter."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for module in ("export", "export.verify"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            cwd=root, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"usage: python -m {module} " in done.stdout
    check = (
        "import sys, keras_udd.deblur, keras_udd.evaluate\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'export'"
        " or m.startswith('keras_udd.export')]\n"
        "assert not bad, bad"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=root, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------ pieces
def test_subpixel_rewrite_equals_conv2d_transpose():
    layer = ConvTranspose3x3Stride2(5)
    holder = keras.Sequential([keras.Input((None, None, 4)), layer])
    layer.bias.assign(np.random.default_rng(5).normal(size=5).astype("float32"))
    x = np.random.default_rng(6).normal(size=(2, 7, 9, 4)).astype("float32")
    expected = np.asarray(layer(x))
    with tflite.subpixel_transposed_convs(holder) as count:
        got = np.asarray(layer(x))
    assert count == 1
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer(x)), expected)  # Restored.


def test_calibration_folder_is_read_as_training_reads_images(tmp_path, caplog):
    """Through keras_udd.data.images: a dark 16-bit PNG is value / 257 (not
    clipped to 8 bits), a transparent one is white, a damaged file is skipped
    with a warning naming it."""
    from keras_udd.export import images

    dark = (np.arange(40 * 40).reshape(40, 40) % 256).astype(np.uint16)
    Image.fromarray(dark).save(tmp_path / "a_dark16.png")
    Image.new("RGBA", (40, 40), (200, 40, 90, 0)).save(tmp_path / "b_clear.png")
    (tmp_path / "c_damaged.png").write_bytes(b"\x89PNG not really")
    crops = images.folder_crops(tmp_path, 2, 32)
    assert crops[0].max() <= 1 / 255 and np.all(crops[1] == 1.0)
    assert "c_damaged.png in --calibration-dir" in caplog.text


def test_conversion_refuses_flex_ops(tmp_path):
    class NeedsFlex(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
        def deblur(self, images):
            return {"deblurred": tf.linalg.det(images[0, :, :3, :])}

    module = NeedsFlex()
    tf.saved_model.save(module, str(tmp_path), signatures={"deblur": module.deblur})
    with pytest.raises(RuntimeError, match="Flex.*MatrixDeterminant"):
        tflite.convert(tmp_path, "none")


# ------------------------------------------------------------ other configs
@pytest.mark.slow
def test_other_crop_size_and_loss_config_still_export(tmp_path):
    overrides = dict(
        random_branch=False,
        perceptual_weight=0.0,
        random_perceptual_weight=0.0,
        blur_dim=3,
        content_filters=6,
    )
    model = train_and_save(tmp_path / "m.keras", 48, **overrides)
    out = tmp_path / "out"
    args = export_args(tmp_path / "m.keras", out, "--quantize", "none", "dynamic")
    assert export_main(args) == 0
    document = json.loads(tflite_path(out, "none").with_suffix(".json").read_text())
    assert document["model_config"]["blur_dim"] == 3
    assert document["model_config"] == model.get_config()
    run = verify.TFLiteRunner(tflite_path(out, "none"))
    image = random_images([(41, 29)], seed=7)[0]
    np.testing.assert_allclose(
        run(image), keras_unit(model.deblurrer, image), atol=1e-4
    )
