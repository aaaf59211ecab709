"""The PSNR/SSIM of validation and of keras_udd.evaluate, against numpy.

Both are checked on a model that is not the identity, with input, output and
target all different: scoring the input in place of the output (or the
target in place of either) gives other numbers.
"""

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY

from keras_udd import evaluate
from keras_udd.model import UIDGAN


def numpy_psnr(x, y):
    """Per image, on [0, 1]: 10 log10(1 / MSE) over pixels and channels."""
    mse = np.mean((np.float64(x) - np.float64(y)) ** 2, axis=(1, 2, 3))
    return 10.0 * np.log10(1.0 / mse)


def numpy_ssim(x, y, size=11, sigma=1.5, k1=0.01, k2=0.03):
    """Per image, on [0, 1]: Wang et al. (2004) with a Gaussian window over the
    valid positions, averaged over them and the channels."""
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filtered(image):  # [N, H, W, C] -> [N, H - size + 1, W - size + 1, C]
        patches = np.lib.stride_tricks.sliding_window_view(image, (size, size), (1, 2))
        return np.einsum("nhwcij,ij->nhwc", patches, window)

    x, y = np.float64(x), np.float64(y)
    c1, c2 = k1**2, k2**2
    mx, my = filtered(x), filtered(y)
    vx, vy = filtered(x * x) - mx**2, filtered(y * y) - my**2
    cov = filtered(x * y) - mx * my
    luminance = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    contrast_structure = (2 * cov + c2) / (vx + vy + c2)
    return np.mean(luminance * contrast_structure, axis=(1, 2, 3))


def unit(x):
    return np.clip((np.asarray(x, np.float64) + 1.0) / 2.0, 0.0, 1.0)


def pairs(n=3, size=32, seed=0):
    """`(blurred, sharp)` in [-1, 1]: smooth sharp images and noisy copies."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (n, size // 8, size // 8, 3))
    sharp = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2).astype("float32")
    blurred = np.clip(sharp + rng.normal(0, 0.2, sharp.shape), -1, 1)
    return blurred.astype("float32"), sharp


def test_validation_values_are_psnr_ssim_of_the_model_output():
    model = UIDGAN(**TINY)
    blurred, sharp = pairs()
    values = {
        k: np.asarray(v) for k, v in model.validation_values(blurred, sharp).items()
    }
    output = unit(model.deblurrer(blurred))
    recon = unit(model.sharp_autoencoder(sharp))
    expected = {
        "psnr": numpy_psnr(output, unit(sharp)),
        "ssim": numpy_ssim(output, unit(sharp)),
        "psnr_blurred": numpy_psnr(unit(blurred), unit(sharp)),
        "ssim_blurred": numpy_ssim(unit(blurred), unit(sharp)),
        "psnr_sharp_recon": numpy_psnr(recon, unit(sharp)),
    }
    assert set(values) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(values[name], value, rtol=1e-4, err_msg=name)
    # The output is not the input: swapping them would change the scores.
    assert np.abs(values["psnr"] - values["psnr_blurred"]).min() > 0.5


def test_evaluate_scores_are_the_means_of_psnr_ssim_per_image():
    blurred, sharp = pairs(n=4, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices((blurred, sharp)).batch(2)

    def fn(images):  # A deblur function on [0, 1]: contrast up, not identity.
        return np.clip((images - 0.5) * 1.3 + 0.5, 0.0, 1.0)

    scores = evaluate.evaluate(fn, dataset, progress=False)
    output = fn(unit(blurred))
    expected = {
        "psnr": numpy_psnr(output, unit(sharp)).mean(),
        "ssim": numpy_ssim(output, unit(sharp)).mean(),
        "psnr_blurred": numpy_psnr(unit(blurred), unit(sharp)).mean(),
        "ssim_blurred": numpy_ssim(unit(blurred), unit(sharp)).mean(),
    }
    assert scores["images"] == 4
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, rel=1e-4), name
    assert abs(scores["psnr"] - scores["psnr_blurred"]) > 0.5


def test_evaluate_names_pairs_whose_blurred_image_is_the_sharp_one(caplog):
    blurred, sharp = pairs(n=3, seed=1)
    blurred[1] = sharp[1]  # E.g. a file copied into both folders.
    ids = tf.constant(["a", "b", "c"])
    dataset = tf.data.Dataset.from_tensor_slices(
        {"blurred": blurred, "sharp": sharp, "id": ids, "kernel_index": [-1] * 3}
    ).batch(3)
    with caplog.at_level(logging.WARNING):
        scores = evaluate.evaluate(lambda x: x, dataset, progress=False)
    assert scores["images"] == 3 and "1 of 3 test pairs" in caplog.text
    assert "(b)" in caplog.text


@pytest.mark.parametrize("flag", ["--batch-size", "--crop-size", "--random-flip"])
def test_evaluate_takes_no_flags_of_training_crops(flag, capsys):
    argv = [
        "--model",
        "m.keras",
        "--no-ocr",
        flag,
        *(["4"] if flag[-4:] != "flip" else []),
    ]
    with pytest.raises(SystemExit) as err:
        evaluate.parse_args(argv)
    assert err.value.code == 2
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_evaluate_load_size_below_the_config_crop_is_accepted():
    _, data = evaluate.parse_args(["--model", "m.keras", "--load-size", "50"])
    assert data.load_size == 50 and data.crop_size <= 50


def test_learn_text_records_portable_commands():
    """The run's command and output dir as text.json records them: the same
    on every machine (no interpreter or checkout path)."""
    import sys

    from bench.learn_text import ROOT, portable

    assert portable(sys.executable) == "python"
    assert portable(str(ROOT / "runs" / "learn-text")) == "runs/learn-text"
    assert portable("/tmp/elsewhere") == "/tmp/elsewhere"
    assert portable("--overwrite") == "--overwrite"


def test_learn_text_ships_only_what_beats_input_and_previous_model_harmlessly():
    """bench/learn_text.py --ship: every criterion of the ship test can fail."""
    from bench.learn_text import ship_failures

    test = {"psnr": 28.0, "ssim": 0.80, "cer": 0.10, "psnr_identity": 31.0,
            "psnr_blurred": 27.0, "ssim_blurred": 0.78,
            "cer_blurred": 0.12,
            "families": {"sharp": {"psnr": 35.0, "psnr_blurred": 34.9}}}  # fmt: skip
    previous = {"psnr": 25.0, "ssim": 0.70, "cer": 0.20}
    report = {"scores": {"test": test}, "previous": {"test": previous}}
    assert ship_failures(report) == []
    for changed, expected in [
        ({"psnr": 26.5}, ["psnr 26.500 not better than the blurred input's 27.000"]),
        ({"cer": 0.15}, ["cer 0.150 not better than the blurred input's 0.120"]),
        ({"ssim": 0.60},
         ["ssim 0.600 not better than the blurred input's 0.780",
          "ssim 0.600 not better than the previous text model's 0.700"]),
        ({"psnr_identity": 29.0}, ["identity PSNR 29.00 dB below 30"]),
        ({"families": {"sharp": {"psnr": 34.8, "psnr_blurred": 34.9}}},
         ["nearly sharp pages 34.80 dB, worse than their input's 34.90"]),
    ]:  # fmt: skip
        worse = {**report, "scores": {"test": {**test, **changed}}}
        assert ship_failures(worse) == expected
    better_previous = {"test": {"psnr": 29.0, "ssim": 0.7, "cer": 0.2}}
    assert ship_failures({**report, "previous": better_previous}) == [
        "psnr 28.000 not better than the previous text model's 29.000"
    ]


def test_diagnose_text_variants():
    """bench/diagnose_text.py: the low-pass swap keeps an output's detail and
    takes the input's low frequencies; scaling interpolates input -> output."""
    from bench.diagnose_text import gaussian_lowpass, page_psnr, variants

    rng = np.random.default_rng(0)
    flat = np.full((1, 40, 48, 3), 0.6, np.float32)
    np.testing.assert_allclose(gaussian_lowpass(flat, 2.0), flat, atol=1e-6)
    ramp = np.broadcast_to(np.linspace(0, 1, 48, dtype=np.float32), (1, 40, 48))
    blurred = np.repeat(ramp[..., None], 3, -1) * 0.5 + 0.25
    detail = rng.normal(0, 0.05, blurred.shape).astype(np.float32)
    shifted = detail + 0.1  # A tone error on top of pure detail.
    found = variants(blurred, blurred + shifted)
    np.testing.assert_allclose(found["output"], blurred + shifted)
    np.testing.assert_allclose(found["scaled 0.5"], blurred + 0.5 * shifted, atol=1e-6)
    swapped = found["lowpass 2"] - blurred
    assert abs(float(swapped.mean())) < 0.01  # The tone error is gone ...
    assert np.std(swapped) > 0.8 * np.std(detail)  # ... most detail is kept.
    assert page_psnr(blurred, blurred)[0] == pytest.approx(100.0)


def test_diagnose_text_code_spread():
    """bench/diagnose_text.py: a blur code equal on every page has no spread;
    one that differs by family has spread over pages and between families."""
    from bench.diagnose_text import code_spread

    families = ["sharp", "shake", "sharp", "shake"]
    same = code_spread(np.tile([[0.1, -0.2]], (4, 1)), families)
    assert same["over_pages"] == same["between_families"] == 0.0
    assert same["by_family"] == {"sharp": [0.1, -0.2], "shake": [0.1, -0.2]}
    apart = code_spread([[0, 0], [1, 2], [0, 0], [1, 2]], families)
    assert apart["over_pages"] == pytest.approx(0.75)  # (0.5 + 1.0) / 2
    assert apart["between_families"] == pytest.approx(0.75)
    assert apart["by_family"]["shake"] == [1.0, 2.0]


def test_diagnose_text_blur_code_use():
    """bench/diagnose_text.py: a G_B that ignores its code puts two codes'
    outputs at the same place and E^b reads nothing back; a G_B that writes
    the code into the image's channel means, read by an E^b of channel means,
    is read back exactly."""
    from types import SimpleNamespace

    from bench.diagnose_text import blur_code_use

    def model(writes_code):
        def blur(inputs):
            h, z, image = inputs
            code = z[:, None, None, :] if writes_code else 0.0
            return image * 0.5 + code

        def read(images):
            mu = np.asarray(images).mean(axis=(1, 2))
            return mu, np.zeros_like(mu)

        same = lambda x: x  # noqa: E731
        return SimpleNamespace(
            config=SimpleNamespace(blur_dim=3, residual_output=True),
            content_encoder_sharp=same, content_shared=same, generator_shared=same,
            decoder_blurred=blur, blur_encoder=read,
        )  # fmt: skip

    sharp = np.zeros((4, 8, 8, 3), np.float32)
    sharp[..., 0] = 0.4
    unused = blur_code_use(model(False), sharp)
    assert unused["change"] == pytest.approx(0.2 / 3, abs=1e-5)
    assert unused["codes_apart"] == 0.0 and unused["read_spread"] == 0.0
    assert 0.3 < unused["read_back"] < 1.5  # Mean |z| of 12 draws (0.80 expected).
    used = blur_code_use(model(True), sharp)
    assert used["codes_apart"] > 0.3
    assert used["read_back"] == pytest.approx(0.2 / 3, abs=1e-4)  # The image's own.
    assert used["read_spread"] > 0.3


def test_diagnose_text_deblur_code_use():
    """bench/diagnose_text.py's G_S code use: a G_S that ignores its code
    gives two codes' outputs 0 apart; one that adds it, their mean distance;
    `change` is the change with the page's own code mu(E^b(b))."""
    from types import SimpleNamespace

    from bench.diagnose_text import deblur_code_use

    def model(reads_code):
        def deblur(inputs):
            h, z, image = inputs
            return image + (z[:, None, None, :] if reads_code else 0.25)

        def encode(images):  # mu = 0.1 whatever the image.
            mu = np.full((len(images), 3), 0.1, np.float32)
            return mu, np.zeros_like(mu)

        same = lambda x: x  # noqa: E731
        return SimpleNamespace(
            config=SimpleNamespace(blur_dim=3, residual_output=True),
            content_encoder_blurred=same, content_shared=same,
            generator_shared=same, decoder_sharp=deblur, blur_encoder=encode,
        )  # fmt: skip

    blurred = np.zeros((4, 8, 8, 3), np.float32)
    unused = deblur_code_use(model(False), blurred)
    assert unused == {"change": 0.25, "codes_apart": 0.0}
    used = deblur_code_use(model(True), blurred)
    assert used["change"] == pytest.approx(0.1, abs=1e-5)
    assert 0.5 < used["codes_apart"] < 2.0  # E|z1 - z2| = 1.13 for N(0, I).


def test_supervised_ceiling_trains_in_the_runs_precision(tmp_path, monkeypatch):
    """bench/learn_text.py's supervised ceiling: the GAN's --mixed-precision
    (bfloat16 here), validated every steps_per_epoch steps, the best-validated
    model kept; the global dtype policy is float32 again afterwards."""
    import keras

    from bench import learn_text
    from keras_udd.config import Config, DataConfig, ModelConfig, TrainConfig
    from keras_udd.data import make_test_dataset
    from keras_udd.deblur import keras_function

    data = DataConfig(domain="text", val_images=2, test_images=2, text_pool_size=64,
                      blur_kernel_bank=8, load_size=36, crop_size=32)  # fmt: skip
    train = TrainConfig(mixed_precision="bfloat16", steps_per_epoch=2)
    cfg = Config(model=ModelConfig(**TINY), data=data, train=train)
    policies, build = [], learn_text.supervised_networks

    def networks(c):  # Notes the policy they are built (and trained) under.
        policies.append(keras.mixed_precision.dtype_policy().name)
        return build(c)

    monkeypatch.setattr(learn_text, "supervised_networks", networks)
    result = learn_text.train_supervised(cfg, 0, tmp_path, steps=6, learning_rate=3e-4)
    assert policies == ["mixed_bfloat16"]
    curve = result["curve"]
    assert [c["steps"] for c in curve] == [2, 4, 6]
    assert all(np.isfinite([c["psnr"], c["loss"]]).all() for c in curve)
    assert not result["stopped_on_nan"]
    assert result["learning_rate"] == pytest.approx(3e-4)  # Not the preset's.
    assert keras.mixed_precision.dtype_policy().name == "float32"
    # The model kept is the best-validated one, not the last.
    best = max(curve, key=lambda c: c["psnr"])
    assert result["best"] == {"psnr": best["psnr"], "steps": best["steps"]}
    model = keras.saving.load_model(result["model"], compile=False)
    val = make_test_dataset(data, split="val")
    again = evaluate.evaluate(keras_function(model), val, progress=False)
    assert again["psnr"] == pytest.approx(best["psnr"], abs=0.01)


def test_probe_table_reads_only_curves(tmp_path, monkeypatch):
    """bench/probe_text.py --table skips the speed and diagnostic records
    kept beside the probes' curves."""
    import json

    from bench import probe_text

    curve = [{"iteration": 500, "val_psnr": 25.0, "val_ssim": 0.7,
              "val_psnr_blurred": 26.0, "val_ssim_blurred": 0.75}]  # fmt: skip
    record = {"name": "P", "flags": [], "curve": curve}
    (tmp_path / "P.json").write_text(json.dumps(record))
    (tmp_path / "speed_P.json").write_text(json.dumps({"s_per_step": 0.3}))
    (tmp_path / "P_diagnose.json").write_text(json.dumps({"psnr": {}}))
    monkeypatch.setattr(probe_text, "PROBES", tmp_path)
    lines = probe_text.table([]).splitlines()
    assert len(lines) == 3
    assert lines[2] == "| P | `(preset)` | 25.00 / 0.700 / nan | 26.00 / 0.750 |"


def test_probe_records_the_validations_of_a_stopped_run(tmp_path, monkeypatch):
    """bench/probe_text.py stopped with Ctrl-C keeps the curve validated so
    far (written as the probe's record), and fails without one."""
    import json

    from bench import probe_text
    from keras_udd import runs

    def stopped_after_one_epoch(command, **kwargs):
        out = Path(command[command.index("--output-dir") + 1])
        out.mkdir(parents=True)
        (out / runs.CSV_LOG).write_text(
            "epoch,val_psnr,val_ssim,val_psnr_blurred,val_ssim_blurred\n"
            "0,25.5,0.79,26.6,0.78\n"
        )
        raise KeyboardInterrupt

    monkeypatch.setattr(probe_text, "PROBES", tmp_path / "probes")
    monkeypatch.setattr(probe_text.subprocess, "call", stopped_after_one_epoch)
    runs_dir = str(tmp_path / "runs")
    argv = ["P", "--steps", "3000", "--every", "1000", "--output-dir", runs_dir,
            "--", "--lowpass-factor", "1"]  # fmt: skip
    probe_text.train(probe_text.parse_args(argv))
    record = json.loads((tmp_path / "probes" / "P.json").read_text())
    assert record["flags"] == ["--lowpass-factor", "1"]
    assert record["curve"] == [
        {"iteration": 1000, "val_psnr": 25.5, "val_ssim": 0.79,
         "val_psnr_blurred": 26.6, "val_ssim_blurred": 0.78}
    ]  # fmt: skip

    monkeypatch.setattr(probe_text.subprocess, "call", lambda *a, **k: 1)
    argv[argv.index(runs_dir)] = str(tmp_path / "empty")
    with pytest.raises(SystemExit, match="before its first validation"):
        probe_text.train(probe_text.parse_args(argv))
