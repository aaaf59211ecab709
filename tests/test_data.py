"""Tests for keras_udd.data: domains, splits, pairing, bad input, tf.data."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_udd import blur
from keras_udd.config import DataConfig
from keras_udd.data import (
    build_domain,
    kernel_bank,
    make_test_dataset,
    make_test_examples,
    make_train_dataset,
    make_train_examples,
    with_counted_cardinality,
)
from keras_udd.data.images import ImageLoader, load_rgb

SMALL = dict(
    crop_size=32,
    load_size=36,
    batch_size=2,
    test_images=4,
    blur_kernel_size=9,
    blur_kernel_bank=32,
    text_pool_size=64,
    deterministic=True,
)


def small(**overrides) -> DataConfig:
    return DataConfig(**{**SMALL, **overrides})


def write_images(folder, n, size=(48, 40), seed=0, fmt="png", prefix="img"):
    """n random-ish RGB images (smooth colour ramps plus noise), W x H = size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    paths = []
    for i in range(n):
        ramp = np.linspace(0, 1, w)[None, :, None] * rng.uniform(0, 255, 3)
        image = ramp + rng.normal(0, 20, (h, w, 3)) + rng.uniform(0, 60)
        path = folder / f"{prefix}{i:03d}.{fmt}"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def take(ds, n):
    return [{k: v.numpy() for k, v in e.items()} for e in ds.take(n)]


def check_batch(x, cfg):
    assert x.shape == (cfg.batch_size, cfg.crop_size, cfg.crop_size, 3)
    assert x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0


def to_uint8(x):
    return np.round((np.asarray(x) + 1.0) * 127.5).astype(np.float64)


# --- text domain -------------------------------------------------------------


def test_text_train_stream_shapes_and_range():
    cfg = small()
    ds = make_train_dataset(cfg)
    spec = ds.element_spec
    assert spec[0].shape == (2, 32, 32, 3) and spec[1].shape == (2, 32, 32, 3)
    for sharp, blurred in ds.take(3):
        check_batch(sharp.numpy(), cfg)
        check_batch(blurred.numpy(), cfg)
        assert sharp.numpy().std() > 0.05  # Not blank pages.


def test_text_sharp_and_blurred_come_from_disjoint_sources():
    cfg = small()
    domain = build_domain(cfg)
    sharp, blurred, test = map(
        set, (domain.sharp.ids, domain.blurred.ids, domain.test.ids)
    )
    assert not (sharp & blurred) and not (sharp & test) and not (blurred & test)
    assert len(sharp | blurred | test) == cfg.text_pool_size
    seen_s, seen_b = set(), set()
    for e in take(make_train_examples(cfg), 20):
        seen_s |= {s.decode() for s in e["sharp_id"]}
        seen_b |= {b.decode() for b in e["blurred_id"]}
    assert seen_s <= sharp and seen_b <= blurred and not (seen_s & seen_b)
    assert len(seen_s) > 10 and len(seen_b) > 10


def test_blurred_half_is_blurrier_than_sharp_half():
    def lap(x):
        return np.mean((x[:, 1:-1, 2:] + x[:, 1:-1, :-2] - 2 * x[:, 1:-1, 1:-1]) ** 2)

    batches = take(make_train_examples(small(noise_std=0.0)), 8)
    sharp = np.concatenate([b["sharp"] for b in batches])
    blurred = np.concatenate([b["blurred"] for b in batches])
    assert lap(blurred) < 0.5 * lap(sharp)


def test_train_stream_is_reproducible_from_the_seed():
    a = take(make_train_examples(small(seed=3)), 2)
    b = take(make_train_examples(small(seed=3)), 2)
    c = take(make_train_examples(small(seed=4)), 2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["sharp"], y["sharp"])
        np.testing.assert_array_equal(x["blurred"], y["blurred"])
    assert not np.array_equal(a[0]["sharp"], c[0]["sharp"])


def test_text_test_set_is_aligned_and_deterministic():
    cfg = small(noise_std=0.0, test_images=6)
    batches = take(make_test_examples(cfg, batch_size=3), 10)
    assert len(batches) == 2  # Finite: 6 images in batches of 3.
    bank = kernel_bank(cfg, test=True)
    r = cfg.blur_kernel_size // 2
    for e in batches:
        for sharp, blurred, index in zip(
            e["sharp"], e["blurred"], e["kernel_index"], strict=True
        ):
            # Blurring sharp[i] with its kernel reproduces blurred[i] (up to 8-bit
            # rounding) wherever the kernel stays inside the crop.
            again = blur.blur_image(to_uint8(sharp), bank[index])
            diff = np.abs(again - to_uint8(blurred))[r:-r, r:-r]
            assert diff.max() <= 1.01
    again = take(make_test_examples(cfg, batch_size=3), 10)
    for x, y in zip(batches, again, strict=True):
        np.testing.assert_array_equal(x["blurred"], y["blurred"])
    ids = {i.decode() for e in batches for i in e["id"]}
    assert ids == set(build_domain(cfg).test.ids)


def test_test_pairs_correlate_with_their_own_partner():
    cfg = small(test_images=8)
    blurred, sharp = next(iter(make_test_dataset(cfg, batch_size=8)))
    check_batch(sharp.numpy(), small(batch_size=8))
    b = blurred.numpy().reshape(8, -1)
    s = sharp.numpy().reshape(8, -1)
    corr = np.corrcoef(b, s)[:8, 8:]
    assert np.all(np.argmax(corr, axis=1) == np.arange(8))


def test_test_dataset_batching_rules(caplog):
    with caplog.at_level(logging.WARNING):
        batches = list(make_test_dataset(small(test_images=5), batch_size=2))
    assert len(batches) == 2 and "left out" in caplog.text
    with pytest.raises(ValueError, match="fewer than one batch"):
        make_test_dataset(small(test_images=1), batch_size=2)


def test_counted_cardinality_tells_keras_the_validation_length():
    dataset = make_test_dataset(small(test_images=5), batch_size=2)
    assert int(dataset.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    counted = with_counted_cardinality(dataset)
    assert int(counted.cardinality()) == 2 and len(list(counted)) == 2


def test_works_with_a_distribution_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    cfg = small()
    train = strategy.experimental_distribute_dataset(make_train_dataset(cfg))
    sharp, blurred = next(iter(train))
    assert sharp.shape == (2, 32, 32, 3) and blurred.shape == (2, 32, 32, 3)
    test = strategy.experimental_distribute_dataset(make_test_dataset(cfg))
    assert sum(1 for _ in test) == 2


def test_kernel_bank_file_is_written_then_read(tmp_path):
    path = tmp_path / "kernels.npy"
    cfg = small(blur_kernel_file=str(path))
    first = kernel_bank(cfg)
    assert path.exists()
    np.testing.assert_allclose(kernel_bank(cfg), first, atol=1e-6)
    np.save(path, np.ones((3, 5, 5)))  # A user-supplied bank wins.
    assert kernel_bank(cfg).shape == (3, 5, 5)
    sharp, blurred = next(iter(make_train_dataset(cfg)))
    check_batch(blurred.numpy(), cfg)


# --- folder domain -------------------------------------------------------------


@pytest.fixture
def folders(tmp_path):
    sharp = write_images(tmp_path / "sharp", 8, seed=1)
    blurred = write_images(tmp_path / "blur", 6, size=(40, 52), seed=2, fmt="jpg")
    return tmp_path, sharp, blurred


def test_folder_train_stream(folders):
    root, sharp, blurred = folders
    cfg = small(
        domain="folder", sharp_dir=str(root / "sharp"), blur_dir=str(root / "blur")
    )
    for e in take(make_train_examples(cfg), 6):
        check_batch(e["sharp"], cfg)
        check_batch(e["blurred"], cfg)
        assert all(i.decode().startswith(str(root / "sharp")) for i in e["sharp_id"])
        assert all(i.decode().startswith(str(root / "blur")) for i in e["blurred_id"])
    sharp_b, blurred_b = next(iter(make_train_dataset(cfg)))
    check_batch(sharp_b.numpy(), cfg)


def test_folder_without_test_dir_holds_out_sharp_images(folders):
    root, sharp, _ = folders
    cfg = small(
        domain="folder",
        sharp_dir=str(root / "sharp"),
        blur_dir=str(root / "blur"),
        test_images=2,
    )
    domain = build_domain(cfg)
    assert len(domain.test.ids) == 2 and len(domain.sharp.ids) == 6
    assert not set(domain.test.ids) & set(domain.sharp.ids)
    blurred_t, sharp_t = next(iter(make_test_dataset(cfg)))
    check_batch(blurred_t.numpy(), cfg)
    assert not np.array_equal(blurred_t.numpy(), sharp_t.numpy())
    with pytest.raises(ValueError, match="--test-images"):
        build_domain(
            small(
                domain="folder",
                sharp_dir=str(root / "sharp"),
                blur_dir=str(root / "blur"),
                test_images=8,
            )
        )


def test_folder_test_dir_pairs(tmp_path, caplog):
    sharp = write_images(tmp_path / "sharp", 2, seed=1)
    blurred = write_images(tmp_path / "blur", 2, seed=2)
    test = tmp_path / "test"
    sources = write_images(test / "sharp", 5, size=(60, 44), seed=3)
    (test / "blurred").mkdir()
    for path in sources[:4]:  # The fifth has no partner.
        image = np.asarray(Image.open(path)).astype(np.float32)
        out = blur.blur_image(image, blur.defocus_kernel(7, 2.5))
        Image.fromarray(np.round(out).astype(np.uint8)).save(
            test / "blurred" / path.name
        )
    Image.new("RGB", (30, 30)).save(test / "blurred" / "odd.png")
    Image.new("RGB", (31, 30)).save(test / "sharp" / "odd.png")  # Size mismatch.
    cfg = small(
        domain="folder",
        sharp_dir=str(sharp[0].parent),
        blur_dir=str(blurred[0].parent),
        test_dir=str(test),
    )
    with caplog.at_level(logging.WARNING):
        batches = take(make_test_examples(cfg, batch_size=4), 5)
    assert "img004" in caplog.text and "odd" in caplog.text
    assert len(batches) == 1
    e = batches[0]
    assert [i.decode() for i in e["id"]] == [p.stem for p in sources[:4]]
    corr = np.corrcoef(e["blurred"].reshape(4, -1), e["sharp"].reshape(4, -1))[:4, 4:]
    assert np.all(np.argmax(corr, axis=1) == np.arange(4))
    assert np.all(np.diag(corr) > 0.8)
    # Without the subfolders: a clear error.
    with pytest.raises(FileNotFoundError, match="--test-dir"):
        build_domain(
            small(
                domain="folder",
                sharp_dir=cfg.sharp_dir,
                blur_dir=cfg.blur_dir,
                test_dir=str(tmp_path / "sharp"),
            )
        )


# --- face domain ---------------------------------------------------------------


def test_face_data_dir_split_is_disjoint(tmp_path):
    """Each face image is one flat colour that encodes its index; flat colours
    survive cropping and blurring, so the stream shows where images came from."""
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(14):
        colour = (10 + 17 * i, 240 - 17 * i, 128)
        Image.new("RGB", (40, 48), colour).save(faces / f"face{i:02d}.png")

    def index_of(batch):
        red = to_uint8(batch)[..., 0].mean(axis=(1, 2))
        return {int(round((r - 10) / 17)) for r in red}

    cfg = small(domain="face", data_dir=str(faces), test_images=4)
    seen_s, seen_b = set(), set()
    for sharp, blurred in make_train_dataset(cfg).take(25):
        seen_s |= index_of(sharp.numpy())
        seen_b |= index_of(blurred.numpy())
    seen_t = set()
    for blurred, sharp in make_test_dataset(cfg):
        assert index_of(blurred.numpy()) == index_of(sharp.numpy())
        seen_t |= index_of(sharp.numpy())
    assert len(seen_s) == 5 and len(seen_b) == 5 and len(seen_t) == 4
    assert not (seen_s & seen_b) and not (seen_s & seen_t) and not (seen_b & seen_t)


def test_face_without_tfds_data_raises_a_clear_error(tmp_path):
    cfg = small(domain="face", tfds_dir=str(tmp_path))  # Empty: nothing prepared.
    with pytest.raises(FileNotFoundError, match="--data-dir") as info:
        make_train_dataset(cfg)
    assert "celeb_a" in str(info.value) and str(tmp_path) in str(info.value)


def test_face_tfds_failure_is_reported_with_the_fix(monkeypatch):
    import tensorflow_datasets as tfds

    def broken(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tfds, "builder", broken)
    with pytest.raises(FileNotFoundError, match="no network.*--data-dir"):
        make_test_dataset(small(domain="face"))


def test_face_tfds_path_with_mock_data(monkeypatch):
    """The TFDS stream, on TFDS' offline mock of celeb_a (random images)."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda _: True)
        cfg = small(domain="face")
        for e in take(make_train_examples(cfg), 3):
            check_batch(e["sharp"], cfg)
            check_batch(e["blurred"], cfg)
            assert all(b"train[:50%]" in i for i in e["sharp_id"])
            assert all(b"train[50%:]" in i for i in e["blurred_id"])
        assert len(list(make_test_dataset(cfg))) == 2  # test[:4], batches of 2.


# --- bad input -----------------------------------------------------------------


def write_bad_folder(folder):
    """Three good images plus every kind of awkward file."""
    write_images(folder, 3, seed=5)
    (folder / "zero.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is not an image")
    good = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(good).save(folder / "full.png")
    data = (folder / "full.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    (folder / "full.png").unlink()
    Image.fromarray(good).save(folder / "full.jpg", quality=90)
    data = (folder / "full.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    (folder / "full.jpg").unlink()
    ramp = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (40, 1))
    Image.fromarray(ramp, "L").save(folder / "gray.png")
    rgba = np.zeros((40, 48, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 24:, 3] = 255  # Left half transparent.
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(good[:40, :48]).convert("P", palette=Image.Palette.ADAPTIVE).save(
        folder / "palette.png"
    )
    Image.fromarray(ramp.astype(np.uint16) * 257).save(folder / "gray16.png")
    rgb16 = np.full((40, 48, 3), 32768, np.uint16)
    (folder / "rgb16.png").write_bytes(tf.io.encode_png(rgb16).numpy())
    Image.fromarray(good[:20, :24]).save(folder / "tiny.png")  # < 32-px crop.
    (folder / ".DS_Store").write_bytes(b"\0\1")  # Hidden: ignored silently.


def test_bad_files_are_skipped_with_named_warnings(tmp_path, caplog):
    folder = tmp_path / "sharp"
    folder.mkdir()
    write_bad_folder(folder)
    write_images(tmp_path / "blur", 3, seed=6)
    cfg = small(
        domain="folder",
        sharp_dir=str(folder),
        blur_dir=str(tmp_path / "blur"),
        test_images=0,
    )
    with caplog.at_level(logging.WARNING):
        domain = build_domain(cfg)
        text = caplog.text
        for name in ("zero.png", "notes.jpg", "cut.png"):
            assert name in text
        assert f"skipped 3 of 13 files in --sharp-dir {folder}" in text
        assert "tiny.png" in text and "upscaled" in text
        assert ".DS_Store" not in text
        names = {p.rsplit("/", 1)[-1] for p in domain.sharp.ids}
        assert "cut.jpg" in names  # Its header is fine; decoding fails later.
        for e in take(make_train_examples(cfg), 30):  # ~6 passes over 10 files.
            check_batch(e["sharp"], cfg)
            assert not any(i.endswith(b"cut.jpg") for i in e["sharp_id"])
        assert "cut.jpg" in caplog.text and "could not decode" in caplog.text


def test_odd_image_modes_become_rgb(tmp_path):
    write_bad_folder(tmp_path)
    gray = load_rgb(tmp_path / "gray.png")
    assert gray.shape == (40, 48, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    gray16 = load_rgb(tmp_path / "gray16.png")
    assert gray16.dtype == np.uint8 and np.abs(gray16.astype(int) - gray).max() <= 1
    rgb16 = load_rgb(tmp_path / "rgb16.png")
    assert rgb16.shape == (40, 48, 3) and np.all(np.abs(rgb16.astype(int) - 128) <= 1)
    rgba = load_rgb(tmp_path / "rgba.png")
    assert np.all(rgba[:, :24] == 255)  # Transparent -> white paper.
    assert np.all(rgba[:, 24:] == (200, 0, 0))
    palette = load_rgb(tmp_path / "palette.png")
    assert palette.shape == (40, 48, 3) and palette.dtype == np.uint8
    with pytest.raises(OSError):
        load_rgb(tmp_path / "cut.jpg")


def test_decoder_gives_up_when_every_file_fails(tmp_path):
    write_bad_folder(tmp_path)
    loader = ImageLoader(36, "--sharp-dir", str(tmp_path), total=1)
    with pytest.raises(RuntimeError, match="none of the 1 files in --sharp-dir"):
        loader(str(tmp_path / "cut.jpg").encode())


def test_missing_empty_and_useless_folders_are_clear_errors(tmp_path):
    good = tmp_path / "good"
    write_images(good, 2)
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_text("nope")
    missing = tmp_path / "missing"

    def folder_cfg(sharp, blur):
        return small(domain="folder", sharp_dir=str(sharp), blur_dir=str(blur))

    with pytest.raises(FileNotFoundError, match=f"--sharp-dir {missing}"):
        make_train_dataset(folder_cfg(missing, good))
    with pytest.raises(ValueError, match=f"--blur-dir {tmp_path / 'empty'}.*empty"):
        make_train_dataset(folder_cfg(good, tmp_path / "empty"))
    with pytest.raises(ValueError, match="--blur-dir .*no usable images"):
        make_train_dataset(folder_cfg(good, tmp_path / "junk"))
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        make_train_dataset(small(domain="face", data_dir=str(missing)))
    with pytest.raises(ValueError, match="same folder"):
        make_train_dataset(folder_cfg(good, good))
    with pytest.raises(ValueError, match="--sharp-dir and --blur-dir"):
        make_train_dataset(small(domain="folder"))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="--domain 'plates' is unknown"):
        make_train_dataset(small(domain="plates"))
    with pytest.raises(ValueError, match="--load-size"):
        make_train_dataset(small(load_size=16))
    with pytest.raises(ValueError, match="--blur-kernel-size"):
        make_test_dataset(small(blur_kernel_size=72))
