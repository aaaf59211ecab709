"""Tests of the deblur entry point, model loading and tiled processing."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY
from PIL import Image

from keras_udd import tiling
from keras_udd.data.images import load_rgb
from keras_udd.deblur import (
    STRIDE,
    deblur_image,
    load_deblur_function,
    main,
    read_image,
    write_image,
)
from keras_udd.model import UIDGAN


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a) - np.asarray(b)) ** 2))


def smooth_image(height, width, seed=0):
    """A test picture with structure at several scales, in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((height // 16 + 2, width // 16 + 2, 3)) * 255).astype("uint8")
    image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    image = np.asarray(image, np.float32) / 255
    return np.clip(image + 0.1 * rng.standard_normal(image.shape), 0, 1).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras_model = UIDGAN(**TINY)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    keras_model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def deblur_fn(model_path):
    return load_deblur_function(model_path)


def save(path, array, mode="RGB", exif_orientation=None):
    image = Image.fromarray(array).convert(mode)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif)
    else:
        image.save(path)


def test_cli_keeps_sizes_of_odd_gray_rgba_palette_and_tiny_images(tmp_path, model_path):
    rng = np.random.default_rng(1)
    inputs = tmp_path / "in"
    inputs.mkdir()
    pixels = (rng.random((333, 517, 3)) * 255).astype(np.uint8)
    save(inputs / "odd.png", pixels)
    save(inputs / "gray.png", pixels[:41, :37], mode="L")
    save(inputs / "rgba.png", pixels[:70, :100], mode="RGBA")
    save(inputs / "palette.png", pixels[:50, :60], mode="P")
    save(inputs / "tiny.jpg", pixels[:7, :10])
    # Stored 333 wide x 517 high, EXIF says "rotate 90": upright it is 517 x 333.
    save(inputs / "rotated.jpg", pixels, exif_orientation=6)
    out = tmp_path / "out"

    assert main([str(inputs), "--model", model_path, "-o", str(out)]) == 0

    expected = {
        "odd.png": ((517, 333), "RGB"),
        "gray.png": ((37, 41), "RGB"),
        "rgba.png": ((100, 70), "RGBA"),
        "palette.png": ((60, 50), "RGB"),
        "tiny.jpg": ((10, 7), "RGB"),
        "rotated.jpg": ((333, 517), "RGB"),
    }
    for name, (size, mode) in expected.items():
        with Image.open(out / name) as image:
            assert (image.size, image.mode) == (size, mode), name
    with Image.open(out / "rgba.png") as image:  # The alpha channel is kept.
        original = np.asarray(Image.open(inputs / "rgba.png").getchannel("A"))
        np.testing.assert_array_equal(np.asarray(image.getchannel("A")), original)


def test_cli_writes_the_model_output_pixels(tmp_path, model_path):
    """The written file holds the model's output on the decoded input, to the
    rounding of 8-bit storage (not, say, the input passed through)."""
    import keras

    pixels = (smooth_image(45, 61, seed=3) * 255).astype(np.uint8)
    save(tmp_path / "in.png", pixels)
    assert main([str(tmp_path / "in.png"), "--model", model_path, "-o",
                 str(tmp_path / "out")]) == 0  # fmt: skip
    written = np.asarray(Image.open(tmp_path / "out" / "in.png"), np.int16)
    network = keras.saving.load_model(model_path, compile=False).deblurrer
    signed = pixels[None].astype(np.float32) / 127.5 - 1.0
    output = (np.asarray(network(signed))[0] + 1.0) * 127.5
    expected = np.round(np.clip(output, 0, 255)).astype(np.int16)
    assert np.abs(written - expected).max() <= 1
    assert np.abs(written - pixels).mean() > 10  # The model changed the image.


def test_cli_tiles_a_large_image(tmp_path, model_path):
    path = tmp_path / "large.jpg"
    Image.fromarray((smooth_image(2000, 3000) * 255).astype(np.uint8)).save(path)
    out = tmp_path / "out"
    assert main([str(path), "--model", model_path, "-o", str(out)]) == 0
    with Image.open(out / "large.jpg") as image:
        assert image.size == (3000, 2000)
        result = np.asarray(image, np.float32) / 255
    assert np.isfinite(result).all() and result.std() > 0


def test_tiled_output_matches_whole_image_output(deblur_fn):
    image = smooth_image(333, 517)
    whole = deblur_image(image, deblur_fn, tile_size=1024)
    tiled = deblur_image(image, deblur_fn, tile_size=256, overlap=64)
    assert whole.shape == tiled.shape == image.shape
    assert psnr(whole, tiled) > 40


def test_read_image_applies_exif_orientation(tmp_path):
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[0, :] = 255  # The top row is white.
    save(tmp_path / "r.jpg", pixels, exif_orientation=6)  # Rotate 90 clockwise.
    rgb, alpha = read_image(tmp_path / "r.jpg")
    assert rgb.shape == (30, 20, 3) and alpha is None
    assert rgb[:, -1].mean() > 0.8  # The top row is now the right column.


def test_dark_16_bit_and_alpha_images_read_as_training_reads_them(tmp_path):
    # A dark 16-bit PNG (every value below 256): value / 257, not "rescaled by
    # its maximum", which would make it 257 times brighter.
    dark = (np.arange(24 * 32).reshape(24, 32) % 256).astype(np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    rgb, alpha = read_image(tmp_path / "dark16.png")
    assert alpha is None and rgb.shape == (24, 32, 3)
    trained_on = load_rgb(tmp_path / "dark16.png").astype(np.float32) / 255.0
    np.testing.assert_array_equal(rgb, trained_on)
    assert rgb.max() <= 1 / 255

    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., :3] = (200, 40, 90)
    rgba[..., 3] = np.repeat([0, 128, 255, 255], 8)[None]  # Columns of alpha.
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    rgb, alpha = read_image(tmp_path / "rgba.png")
    trained_on = load_rgb(tmp_path / "rgba.png").astype(np.float32) / 255.0
    np.testing.assert_array_equal(rgb, trained_on)
    np.testing.assert_array_equal(alpha, rgba[..., 3])
    assert np.all(rgb[:, :8] == 1.0)  # Fully transparent: white, as in training.

    # Written back unchanged, the colour under alpha comes back too.
    write_image(tmp_path / "out.png", rgb, alpha)
    with Image.open(tmp_path / "out.png") as image:
        out = np.asarray(image.convert("RGBA")).astype(int)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    assert np.abs(out[:, 8:, :3] - rgba[:, 8:, :3]).max() <= 2


def test_process_tiled_blends_exactly_for_a_pointwise_function():
    image = np.random.default_rng(0).random((203, 150, 3)).astype(np.float32)
    boxes = []

    def fn(batch):
        boxes.append(batch.shape)
        return batch * 2.0 - 0.5

    out = tiling.process_tiled(image, fn, tile_size=64, overlap=16, batch_size=3)
    np.testing.assert_allclose(out, image * 2.0 - 0.5, atol=1e-5)
    assert all(shape[1:3] == (64, 64) for shape in boxes)


def test_tiles_cover_the_image_and_start_on_the_stride():
    for height, width in ((2000, 3000), (333, 517), (17, 700)):
        boxes = tiling.tiles(height, width, 256, 32, align=STRIDE)
        covered = np.zeros((height + 3, width + 3), bool)
        for y, x, h, w in boxes:
            assert y % STRIDE == 0 and x % STRIDE == 0
            covered[y : y + h, x : x + w] = True
        assert covered[:height, :width].all()
    starts = tiling.tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 32 for a, b in zip(starts, starts[1:]))
    window = tiling.blend_window(64, 16)
    assert window.min() > 0 and window[16:48].min() == 1.0


def test_loads_a_saved_model_with_a_deblur_float_signature(tmp_path):
    class Brighten(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def deblur_float(self, images):
            return {"deblurred": tf.clip_by_value(images + 0.25, 0.0, 1.0)}

    module = Brighten()
    version = tmp_path / "savedmodel" / "3"  # The layout of `python -m export`.
    tf.saved_model.save(
        module, str(version), signatures={"deblur_float": module.deblur_float}
    )
    for path in (version, version.parent, tmp_path):
        fn = load_deblur_function(path)
        out = fn(np.full((2, 20, 24, 3), 0.5, np.float32))
        np.testing.assert_allclose(out, 0.75)


def test_errors_name_the_problem(tmp_path, model_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(image)
    assert main([str(image), "--model", str(tmp_path / "nope.keras"), "-o", "x"]) == 2
    assert "nope.keras: no such file" in capsys.readouterr().err
    assert main([str(image), "--model", model_path, "-o", str(tmp_path)]) == 2
    assert "would overwrite its input" in capsys.readouterr().err
    for flags, named in (
        (["--tile-size", "8"], "--tile-size must be >= 16"),
        (["--tile-overlap", "512"], "--tile-overlap must be in [0, --tile-size)"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
    ):
        with pytest.raises(SystemExit):
            main([str(image), "--model", model_path, "-o", "x", *flags])
        assert named in capsys.readouterr().err, flags
