"""The on-device demo: its contract reference, its server, and the web page.

One tiny UIDGAN is exported once (SavedModel + float32 TFLite, module
fixture). `mobile_demo.contract` (uint8 -> contract preprocessing -> LiteRT
with `resize_tensor_input` -> contract postprocessing -> uint8) must equal
the SavedModel's `serving_default` on a real photo; the web page, driven in
headless Chromium through its own file input and download button, must
equal `mobile_demo.contract`. The browser test is skipped only where
Chromium is not installed (`.ci/run` installs it); it saves a screenshot of
the page after a deblur to $WEB_DEMO_SCREENSHOT (default: its tmp_path).
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from PIL import Image  # noqa: E402

from mobile_demo import contract as client  # noqa: E402
from mobile_demo.web import server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "mobile_demo" / "web"
ANDROID_SRC = ROOT / "mobile_demo/android/app/src/main/java/com/kerasudd/deblur"
CHROMIUM = "/usr/bin/chromium"
# The brief's tiny model: 4 filters, one residual block, one small PatchGAN.
TINY_DEMO = dict(
    content_filters=4,
    blur_filters=4,
    disc_filters=4,
    content_res_blocks=1,
    generator_res_blocks=1,
    disc_layers=2,
    disc_scales=1,
    vgg_weights=None,
    perceptual_weight=0,
    random_perceptual_weight=0,
)
TOLERANCE = 2  # uint8 levels, page vs Python and Python vs SavedModel.


def photo_rgb():
    """A real photo (matplotlib's sample of Grace Hopper), uint8 [600, 512, 3]."""
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The export folder of a tiny random UIDGAN (savedmodel + float32)."""
    import keras

    from keras_udd import UIDGAN
    from keras_udd.export.cli import main as export_main

    tmp = tmp_path_factory.mktemp("web_demo")
    keras.utils.set_random_seed(0)
    model = UIDGAN(**TINY_DEMO)
    model.compile()
    model.save(tmp / "tiny.keras")
    args = ["--model", str(tmp / "tiny.keras"), "--out", str(tmp / "out")]
    args += ["--formats", "savedmodel", "tflite", "--quantize", "none"]
    assert export_main([*args, "--latency-size", "0"]) == 0
    return tmp / "out"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """PNG files cut from the photo: a 128x160 face crop, a 37x53 crop, the
    whole 600x512 photo (tiled), and a corrupt file."""
    folder = tmp_path_factory.mktemp("images")
    rgb = photo_rgb()
    crops = {"face": rgb[180:308, 170:330], "odd": rgb[200:237, 200:253], "whole": rgb}
    paths = {}
    for name, array in crops.items():
        paths[name] = folder / f"{name}.png"
        Image.fromarray(np.ascontiguousarray(array)).save(paths[name])
    paths["corrupt"] = folder / "corrupt.jpg"
    paths["corrupt"].write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    return paths


def read_png(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def max_diff(a, b):
    return int(np.max(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def contract_path(out):
    return out / "tflite" / "deblurrer_float32.json"


# ------------------------------------------------------ contract reference
def test_contract_pipeline_matches_serving_default(exported, images):
    import tensorflow as tf

    deblurrer = client.LiteRTDeblurrer(contract_path(exported))
    serving = tf.saved_model.load(str(exported / "savedmodel" / "1")).signatures[
        "serving_default"
    ]
    for name in ("face", "odd"):
        image = read_png(images[name])
        ours = deblurrer.deblur(image)
        theirs = serving(images=tf.constant(image[None]))["deblurred"].numpy()[0]
        assert ours.shape == image.shape and ours.dtype == np.uint8
        print(f"{name}: contract pipeline vs serving_default {max_diff(ours, theirs)}")
        assert max_diff(ours, theirs) <= 1, name
        assert max_diff(ours, image) > 10  # It did run a (random) network.


def test_contract_mapping_is_read_from_the_file(tmp_path):
    """Another range in the JSON changes the mapping (it is not re-typed)."""
    document = {
        "artifact": "tflite",
        "file": "m.tflite",
        "signature_key": "deblur",
        "sizes": {"min_height": 16, "min_width": 16},
        "inputs": [_entry("images", 0, [-1.0, 1.0])],
        "outputs": [_entry("deblurred", 9, [-1.0, 1.0])],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(document))
    spec = client.Contract.load(path)
    levels = np.array([[[0, 51, 255]]], np.uint8)
    np.testing.assert_allclose(spec.preprocess(levels), [[[-1.0, -0.6, 1.0]]], 1e-6)
    outputs = np.array([[[-2.0, 0.0, 1.0]]])
    assert spec.postprocess(outputs).tolist() == [[[0, 128, 255]]]
    with pytest.raises(ValueError, match="uint8"):
        spec.preprocess(levels.astype(np.float32))
    document["inputs"][0]["layout"] = "NCHW"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="NHWC"):
        client.Contract.load(path)


def _entry(name, index, value_range):
    return {
        "name": name,
        "index": index,
        "dtype": "float32",
        "shape": [1, -1, -1, 3],
        "layout": "NHWC",
        "color": "RGB",
        "range": value_range,
    }


def test_contract_must_match_the_model(exported, tmp_path):
    document = json.loads(contract_path(exported).read_text())
    document["outputs"][0]["index"] += 1
    shutil.copy(exported / "tflite" / document["file"], tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="not in the model's signature"):
        client.LiteRTDeblurrer(tmp_path / "bad.json")


def test_page_and_python_share_the_tiling_rule():
    """The page's tile size, overlap and alignment are keras_udd.deblur's."""
    import inspect

    from keras_udd import deblur

    defaults = inspect.signature(deblur.deblur_image).parameters
    assert client.TILE_SIZE == defaults["tile_size"].default
    assert client.TILE_OVERLAP == defaults["overlap"].default
    assert client.ALIGN == deblur.STRIDE
    page = (WEB / "js" / "deblurrer.js").read_text()
    app = (ANDROID_SRC / "Deblurrer.kt").read_text()
    for name, value in (
        ("TILE_SIZE", client.TILE_SIZE),
        ("TILE_OVERLAP", client.TILE_OVERLAP),
        ("ALIGN", client.ALIGN),
    ):
        assert re.search(rf"export const {name} = {value};", page), name
        assert re.search(rf"const val {name} = {value}\n", app), name


def test_android_golden_images(exported, tmp_path):
    """The goldens are the SavedModel's output (TensorFlow), and the Python
    client pipeline on the TFLite model (what the app reimplements) is within
    their tolerance of them, whole and tiled."""
    import tensorflow as tf

    from mobile_demo import golden

    assert golden.main(["--model-dir", str(exported), "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "golden.json").read_text())
    rgb = read_png(tmp_path / document["input"])
    assert rgb.shape == (201, 263, 3)
    expected = read_png(tmp_path / document["expected"])
    serving = tf.saved_model.load(str(exported / "savedmodel" / "1")).signatures[
        "serving_default"
    ]
    theirs = serving(images=tf.constant(rgb[None]))["deblurred"].numpy()[0]
    assert (expected == theirs).all()
    tiled = read_png(tmp_path / document["expected_tiled"])
    python = client.LiteRTDeblurrer(contract_path(exported))
    assert document["tolerance"] == TOLERANCE
    assert max_diff(python.deblur(rgb), expected) <= TOLERANCE
    tiles = document["tile_size"], document["overlap"]
    assert max_diff(python.deblur(rgb, *tiles), tiled) <= TOLERANCE
    assert max_diff(tiled, expected) > 0  # The tiled golden is really tiled.
    assert max_diff(expected, rgb) > 10  # A (random) network ran.


# ------------------------------------------------------------------ server
def test_server_routes_and_isolation_headers(tmp_path):
    (tmp_path / "tflite").mkdir()
    (tmp_path / "tflite" / "m.json").write_text("{}")
    httpd, url = server.serve_in_thread(port=0, model_dir=tmp_path, quiet=True)
    try:
        with urllib.request.urlopen(url) as response:
            assert b"<title>" in response.read()
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        with urllib.request.urlopen(url + "model/m.json") as response:
            assert response.headers["Content-Type"] == "application/json"
        with urllib.request.urlopen(url + "js/app.js") as response:
            assert response.headers["Content-Type"].startswith("text/javascript")
        for hidden in (
            "model/../m.json",
            "%2e%2e/pyproject.toml",
            "contract.py",
            "node_modules/playwright-core/package.json",
            "tools/drive.mjs",
            "model/",
        ):
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(url + hidden)
            assert error.value.code == 404, hidden
    finally:
        httpd.shutdown()
        httpd.server_close()


# ----------------------------------------------------------------- browser
def run_page(job, tmp_path, timeout=150):
    """Runs mobile_demo/web/tools/drive.mjs on `job`; returns its JSON."""
    job = {"userDataDir": str(tmp_path / "chromium-profile"), **job}
    job.setdefault("executablePath", CHROMIUM)
    (tmp_path / "job.json").write_text(json.dumps(job))
    done = subprocess.run(
        ["node", str(WEB / "tools" / "drive.mjs"), str(tmp_path / "job.json")],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=WEB,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def require_browser():
    """Skips where Chromium is absent; fails (with the fix) where only the
    npm side is missing, which `.ci/run` installs."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"Chromium is not installed ({CHROMIUM}); `.ci/run` installs it "
            "with apt-get install chromium"
        )
    assert shutil.which("node"), "node is needed to drive Chromium (apt install nodejs)"
    assert (WEB / "node_modules" / "playwright-core").is_dir() and (
        WEB / "node_modules" / "@litertjs" / "core"
    ).is_dir(), f"npm packages missing: run `npm ci --prefix {WEB}`"


@pytest.mark.slow
def test_web_page_deblurs_like_python(exported, images, tmp_path):
    require_browser()
    started = time.perf_counter()
    model_dir = exported / "tflite"
    # A model that is cut short but still says it is TFLite, and its contract.
    model = (model_dir / "deblurrer_float32.tflite").read_bytes()
    (model_dir / "broken.tflite").write_bytes(model[:4096])
    document = json.loads(contract_path(exported).read_text())
    document["file"] = "broken.tflite"
    (model_dir / "broken.json").write_text(json.dumps(document))
    screenshot = Path(os.environ.get("WEB_DEMO_SCREENSHOT", tmp_path / "page.png"))
    out = {name: tmp_path / f"{name}-page.png" for name in ("face", "odd", "whole")}
    httpd, url = server.serve_in_thread(port=0, model_dir=exported, quiet=True)
    try:
        assert url.startswith("http://127.0.0.1:")
        result = run_page(
            {
                "visits": [
                    {
                        "url": url + "?threads=2",
                        "steps": [
                            {
                                "file": str(images["face"]),
                                "download": str(out["face"]),
                                "screenshot": str(screenshot),
                            },
                            {"file": str(images["odd"]), "download": str(out["odd"])},
                            {"file": str(images["corrupt"])},
                            {"file": str(images["odd"])},  # Still works.
                        ],
                    },
                    {
                        "url": url + "?threads=2&tile=128&overlap=32",
                        "steps": [
                            {
                                "file": str(images["whole"]),
                                "download": str(out["whole"]),
                            }
                        ],
                    },
                    {"url": url + "?contract=model/broken.json"},
                ]
            },
            tmp_path,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    log = "\n".join(result["console"][-30:])
    main, tiled, broken = result["visits"]
    for visit in (main, tiled):
        assert "failure" not in visit, visit.get("failure", "") + log
        assert visit["load"]["state"] == "ready", visit["load"]
        assert visit["load"]["crossOriginIsolated"] is True
        assert visit["load"]["backend"] == "wasm (XNNPACK, 2 threads)"
    face, odd, corrupt, after = main["steps"]

    python = client.LiteRTDeblurrer(contract_path(exported))
    assert face["state"] == "done" and face["suggestedFilename"] == "face-deblurred.png"
    assert odd["state"] == "done" and tiled["steps"][0]["state"] == "done"
    whole = read_png(images["whole"])
    references = {
        "face": python.deblur(read_png(images["face"])),
        "odd": python.deblur(read_png(images["odd"])),
        # Tiles of 128 px overlapping by 32, blended as keras_udd.tiling does.
        "whole": python.deblur(whole, 128, 32),
    }
    diffs = {k: max_diff(read_png(out[k]), ref) for k, ref in references.items()}
    print(f"page vs Python LiteRT, max abs uint8 difference: {diffs}")
    assert max(diffs.values()) <= TOLERANCE, diffs
    assert read_png(out["odd"]).shape == (37, 53, 3)
    assert read_png(out["whole"]).shape == whole.shape
    assert tiled["steps"][0]["stats"]["tiles"] == 30
    # A corrupt image or model: a message in the page, which keeps working.
    assert corrupt["state"] == "error"
    assert "corrupt.jpg" in corrupt["visibleError"]
    assert after["state"] == "done" and after["visibleError"] is None
    assert broken["load"]["state"] == "error"
    assert "Could not load the model" in broken["load"]["visibleError"]
    assert "TFLite" in broken["load"]["visibleError"]
    assert not [line for line in result["console"] if line.startswith("pageerror")]
    with Image.open(screenshot) as image:
        assert image.size[0] >= 800
    seconds = time.perf_counter() - started
    print(f"browser test: {seconds:.1f} s, screenshot {screenshot}")


def test_serve_exports_the_model_once_by_default(exported, tmp_path, monkeypatch):
    """Without --model-dir the page serves an export of --model (the shipped
    `text` by default), made once into the cache folder and reused."""
    from mobile_demo.web.__main__ import parse_args

    model = str(exported.parent / "tiny.keras")
    folder = server.exported_model(model, tmp_path / "cache")
    assert folder.parent == tmp_path / "cache" and folder.name.startswith("tiny-")
    assert (server.model_folder(folder) / "deblurrer_float32.tflite").is_file()
    assert server.missing_files(folder) == [] or all(
        "LiteRT.js" in p for p in server.missing_files(folder)
    )

    def no_second_export(argv):
        raise AssertionError("exported twice")

    monkeypatch.setattr("keras_udd.export.cli.main", no_second_export)
    assert server.exported_model(model, tmp_path / "cache") == folder
    args = parse_args(["serve"])
    assert (args.model, args.model_dir) == ("text", None)
    with pytest.raises(FileNotFoundError, match="--model nope"):
        server.exported_model("nope", tmp_path / "cache")
