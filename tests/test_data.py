"""Tests for keras_udd.data: domains, splits, pairing, bad input, tf.data."""

import contextlib
import dataclasses
import logging
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_udd
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
from keras_udd.data.domains import text_renderer
from keras_udd.data.images import ImageLoader, load_rgb

SMALL = dict(
    crop_size=32,
    load_size=36,
    batch_size=2,
    test_images=4,
    val_images=3,
    blur_kernel_size=9,
    blur_kernel_bank=32,
    blur_families="shake",
    text_pool_size=64,
    unseen_images=2,
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
    parts = [domain.sharp.ids, domain.blurred.ids, domain.test.ids, domain.val.ids]
    sharp, blurred, test, val = map(set, parts)
    assert sum(map(len, parts)) == len(sharp | blurred | test | val)  # Disjoint.
    assert len(sharp | blurred | test | val) == cfg.text_pool_size
    assert test == {f"text/{i}" for i in range(4)}
    assert val == {f"text/{i}" for i in range(4, 7)}
    seen_s, seen_b = set(), set()
    for e in take(make_train_examples(cfg), 20):
        seen_s |= {s.decode() for s in e["sharp_id"]}
        seen_b |= {b.decode() for b in e["blurred_id"]}
    assert seen_s <= sharp and seen_b <= blurred and not (seen_s & seen_b)
    assert len(seen_s) > 10 and len(seen_b) > 10


def test_blurred_half_is_blurrier_than_sharp_half():
    def lap(x):
        return np.mean((x[:, 1:-1, 2:] + x[:, 1:-1, :-2] - 2 * x[:, 1:-1, 1:-1]) ** 2)

    batches = take(make_train_examples(small(noise_std=0.0, text_pages="lines")), 8)
    sharp = np.concatenate([b["sharp"] for b in batches])
    blurred = np.concatenate([b["blurred"] for b in batches])
    assert lap(blurred) < 0.5 * lap(sharp)


def test_sharp_noise_gives_the_sharp_crops_the_blurred_ones_noise_only():
    """--sharp-noise: the same sharp crops (same sources, same places), now
    with noise of up to --noise-std (8-bit, JPEG off here) and no blur; the
    blurred stream is unchanged."""
    plain = take(make_train_examples(small(noise_std=8 / 255)), 4)
    noisy = take(make_train_examples(small(noise_std=8 / 255, sharp_noise=True)), 4)
    for x, y in zip(plain, noisy, strict=True):
        for key in ("sharp_id", "blurred_id", "blurred"):
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    change = np.stack([to_uint8(y["sharp"]) - to_uint8(x["sharp"])
                       for x, y in zip(plain, noisy, strict=True)])  # fmt: skip
    assert 0.5 < np.abs(change).mean() < 8  # Noise of std < 8 levels...
    assert abs(change.mean()) < 0.5  # ...about zero-mean: no tone shift.


def test_train_stream_is_reproducible_from_the_seed():
    a = take(make_train_examples(small(seed=3)), 2)
    b = take(make_train_examples(small(seed=3)), 2)
    c = take(make_train_examples(small(seed=4)), 2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["sharp"], y["sharp"])
        np.testing.assert_array_equal(x["blurred"], y["blurred"])
    assert not np.array_equal(a[0]["sharp"], c[0]["sharp"])


def test_stream_started_at_a_batch_continues_the_uninterrupted_one():
    """What a resumed run sees: from `start_batch` on, the same images, crops,
    blur and noise as the stream from the start (past a reshuffle: the pool
    of 64 pages splits into halves of 28, i.e. 14 batches per pass)."""
    cfg = small(seed=5)
    whole = take(make_train_examples(cfg), 20)
    resumed = take(make_train_examples(cfg, start_batch=13), 7)
    for x, y in zip(whole[13:], resumed, strict=True):
        for key in ("sharp_id", "blurred_id", "sharp", "blurred"):
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.mark.parametrize("split", ["test", "val"])
def test_text_held_out_pairs_are_whole_aligned_and_deterministic(split):
    # Seed 2: no page comes out unchanged (and so left out) under its kernel.
    cfg = small(noise_std=0.0, test_images=6, val_images=5, seed=2)
    examples = make_test_examples(cfg, split=split)
    assert examples.element_spec["blurred"].shape.as_list() == [1, None, None, 3]
    batches = take(examples, 10)
    assert len(batches) == (6 if split == "test" else 5)  # Finite, one per batch.
    bank = kernel_bank(cfg, split)
    renderer = text_renderer(cfg)
    for e in batches:
        (sharp,), (blurred,), (index,), (source,) = (
            e["sharp"], e["blurred"], e["kernel_index"], e["id"]
        )  # fmt: skip
        # The whole page (load_size wide, 1-1.4x as high), not a crop.
        page = renderer(source)
        assert sharp.shape == page.shape and page.shape[1] == cfg.load_size
        assert sharp.shape[0] >= cfg.load_size and sharp.shape != (32, 32, 3)
        np.testing.assert_array_equal(to_uint8(sharp), page)
        # Blurring the page with its kernel reproduces the blurred page (up to
        # 8-bit rounding) everywhere, borders included (both reflect).
        again = blur.blur_image(page, bank[index])
        assert np.abs(again - to_uint8(blurred)).max() <= 0.51
    again = take(make_test_examples(cfg, split=split), 10)
    for x, y in zip(batches, again, strict=True):
        np.testing.assert_array_equal(x["blurred"], y["blurred"])
    ids = {i.decode() for e in batches for i in e["id"]}
    assert ids == set(build_domain(cfg).held_out(split).ids)


def test_text_val_and_test_splits_are_disjoint_with_their_own_kernels():
    cfg = small(test_images=6, val_images=6)
    test = take(make_test_examples(cfg, split="test"), 10)
    val = take(make_test_examples(cfg, split="val"), 10)
    test_ids = {e["id"][0] for e in test}
    val_ids = {e["id"][0] for e in val}
    assert len(test_ids) == len(val_ids) == 6 and not test_ids & val_ids
    test_bank, val_bank = kernel_bank(cfg, "test"), kernel_bank(cfg, "val")
    assert test_bank.shape == val_bank.shape == (6, 9, 9)
    assert not np.allclose(test_bank, val_bank)
    assert not np.allclose(test_bank, kernel_bank(cfg)[:6])
    with pytest.raises(ValueError, match="split"):
        make_test_dataset(cfg, split="train")
    with pytest.raises(ValueError, match="no validation set.*--val-images"):
        make_test_dataset(small(val_images=0), split="val")
    with pytest.raises(ValueError, match="--val-images"):
        build_domain(small(text_pool_size=10, test_images=4, val_images=5))


def test_model_evaluates_whole_pages_of_any_size_with_one_trace():
    """model.evaluate on [1, None, None, 3] batches: one trace for all sizes."""
    model = keras_udd.UIDGAN(
        content_filters=4, blur_filters=4, disc_filters=4, content_res_blocks=1,
        generator_res_blocks=1, disc_layers=2, disc_scales=1, vgg_weights=None,
        perceptual_weight=0, random_perceptual_weight=0,
    )  # fmt: skip
    model.compile()
    shapes = []
    test_step = model.test_step

    def counted(data):
        shapes.append(tuple(data[0].shape))  # Runs once per trace.
        return test_step(data)

    model.test_step = counted
    cfg = small(val_images=5)
    dataset = with_counted_cardinality(make_test_dataset(cfg, split="val"))
    sizes = {tuple(b.shape[1:3]) for b, _ in dataset}
    assert len(sizes) > 1  # The pages differ in size.
    logs = model.evaluate(dataset, return_dict=True, verbose=0)
    assert shapes == [(1, None, None, 3)]
    assert np.isfinite(logs["psnr"]) and logs["psnr_blurred"] > 10


def test_test_pairs_correlate_with_their_own_partner():
    cfg = small(test_images=8)
    blurred, sharp = next(iter(make_test_dataset(cfg, batch_size=8, whole=False)))
    check_batch(sharp.numpy(), small(batch_size=8))
    b = blurred.numpy().reshape(8, -1)
    s = sharp.numpy().reshape(8, -1)
    corr = np.corrcoef(b, s)[:8, 8:]
    assert np.all(np.argmax(corr, axis=1) == np.arange(8))


def test_test_dataset_batching_rules(caplog):
    cfg = small(test_images=5)
    with caplog.at_level(logging.WARNING):
        batches = list(make_test_dataset(cfg, batch_size=2, whole=False))
    assert len(batches) == 2 and "left out" in caplog.text
    assert batches[0][0].shape == (2, 32, 32, 3)  # Centre crops.
    with pytest.raises(ValueError, match="fewer than one batch"):
        make_test_dataset(small(test_images=1), batch_size=2, whole=False)
    with pytest.raises(ValueError, match="batch_size must be 1"):
        make_test_dataset(cfg, batch_size=2)  # Whole images differ in size.
    assert len(list(make_test_dataset(cfg))) == 5  # Whole: one per batch.


def test_counted_cardinality_tells_keras_the_validation_length():
    dataset = make_test_dataset(small(test_images=5), batch_size=2, whole=False)
    assert int(dataset.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    counted = with_counted_cardinality(dataset)
    assert int(counted.cardinality()) == 2 and len(list(counted)) == 2
    whole = with_counted_cardinality(make_test_dataset(small(), split="val"))
    assert int(whole.cardinality()) == 3 and len(list(whole)) == 3


def test_works_with_a_distribution_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    cfg = small()
    train = strategy.experimental_distribute_dataset(make_train_dataset(cfg))
    sharp, blurred = next(iter(train))
    assert sharp.shape == (2, 32, 32, 3) and blurred.shape == (2, 32, 32, 3)
    test = strategy.experimental_distribute_dataset(make_test_dataset(cfg))
    assert sum(1 for _ in test) == 4  # Whole pages, one per batch.
    val = make_test_dataset(cfg, split="val")
    pages = list(strategy.experimental_distribute_dataset(val))
    assert len(pages) == 3 and pages[0][0].shape[0] == 1
    assert min(pages[0][0].shape[1:3]) == cfg.load_size


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
        val_images=3,
    )
    domain = build_domain(cfg)
    test, val, train = map(set, (domain.test.ids, domain.val.ids, domain.sharp.ids))
    assert len(test) == 2 and len(val) == 3 and len(train) == 3
    assert not test & train and not val & train and not test & val
    assert test | val | train == {str(p) for p in sharp}
    assert build_domain(cfg).val.ids == domain.val.ids  # Seeded.
    for split, ids in (("test", test), ("val", val)):
        seen = set()
        for e in take(make_test_examples(cfg, split=split), 10):
            seen.add(e["id"][0].decode())
            # Whole images: 48 x 40 files, shorter side resized to 36.
            assert e["sharp"].shape == e["blurred"].shape == (1, 36, 43, 3)
            assert not np.array_equal(e["blurred"], e["sharp"])
        assert seen == ids
    with pytest.raises(ValueError, match="--test-images.*--val-images"):
        build_domain(dataclasses.replace(cfg, test_images=5))


def test_folder_test_dir_pairs(tmp_path, caplog):
    sharp = write_images(tmp_path / "sharp", 2, seed=1)
    blurred = write_images(tmp_path / "blur", 2, seed=2)
    test = tmp_path / "test"
    sources = write_images(test / "sharp", 5, size=(60, 44), seed=3)
    (test / "blurred").mkdir()
    for path in sources[:4]:  # The fifth has no partner.
        image = np.asarray(Image.open(path)).astype(np.float32)
        out = blur.blur_image(image, blur.defocus_kernel(7, 2.5))
        if path == sources[3]:  # A real pair stays, even one with no blur.
            out = image
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
        val_images=1,
    )
    with caplog.at_level(logging.WARNING):
        test_pairs = take(make_test_examples(cfg), 5)
        val_pairs = take(make_test_examples(cfg, split="val"), 5)
    assert "img004" in caplog.text and "odd" in caplog.text
    # The 4 usable pairs: 1 validates (seeded choice), the other 3 are the test set.
    assert len(test_pairs) == 3 and len(val_pairs) == 1
    test_ids = [e["id"][0].decode() for e in test_pairs]
    val_ids = [e["id"][0].decode() for e in val_pairs]
    assert sorted(test_ids + val_ids) == [p.stem for p in sources[:4]]
    assert not set(test_ids) & set(val_ids)
    assert val_ids == [e["id"][0].decode() for e in take(make_test_examples(
        cfg, split="val"), 5)]  # fmt: skip
    pairs = test_pairs + val_pairs
    for e in pairs:  # Whole images: 60 x 44 files, shorter side resized to 36.
        assert e["blurred"].shape == e["sharp"].shape == (1, 36, 49, 3)
    b = np.stack([e["blurred"][0] for e in pairs]).reshape(4, -1)
    s = np.stack([e["sharp"][0] for e in pairs]).reshape(4, -1)
    corr = np.corrcoef(b, s)[:4, 4:]
    assert np.all(np.argmax(corr, axis=1) == np.arange(4))
    assert np.all(np.diag(corr) > 0.8)
    with pytest.raises(ValueError, match="--val-images"):
        build_domain(dataclasses.replace(cfg, val_images=4))  # None left to test.
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

    cfg = small(domain="face", data_dir=str(faces), test_images=4, val_images=3)
    seen_s, seen_b = set(), set()
    for sharp, blurred in make_train_dataset(cfg).take(25):
        seen_s |= index_of(sharp.numpy())
        seen_b |= index_of(blurred.numpy())
    seen = {}
    for split in ("test", "val"):
        seen[split] = set()
        for blurred, sharp in make_test_dataset(cfg, split=split):
            assert sharp.shape == (1, 43, 36, 3)  # The whole resized image.
            assert index_of(blurred.numpy()) == index_of(sharp.numpy())
            seen[split] |= index_of(sharp.numpy())
    seen_t, seen_v = seen["test"], seen["val"]
    assert len(seen_s) == 3 and len(seen_b) == 4
    assert len(seen_t) == 4 and len(seen_v) == 3
    parts = [seen_s, seen_b, seen_t, seen_v]
    assert len(set().union(*parts)) == sum(map(len, parts)) == 14  # Disjoint.
    domain = build_domain(cfg)
    assert not set(domain.test.ids) & set(domain.val.ids)


def celeb_a_download(outcome):
    """Replaces TFDS' download of CelebA (no network in tests): `outcome` is
    an exception to raise, or None to succeed, after which CelebA counts as
    prepared. Returns the list of the data roots it is called for, filled
    in, and the context that replaces it."""
    import tensorflow_datasets as tfds

    calls, prepared = [], []

    def download_and_prepare(builder, **kwargs):
        calls.append(str(builder.data_dir_root))
        if outcome is not None:
            raise outcome
        prepared.append(True)

    @contextlib.contextmanager
    def replaced():
        builder = tfds.core.DatasetBuilder
        with (
            mock.patch.object(builder, "download_and_prepare", download_and_prepare),
            mock.patch.object(builder, "is_prepared", lambda _: bool(prepared)),
        ):
            yield

    return calls, replaced()


def test_face_without_a_connection_raises_the_clear_error(tmp_path):
    """Nothing prepared and no connection: what to do, no traceback."""
    import requests

    offline = requests.exceptions.ConnectionError("Max retries exceeded\n(DNS)")
    calls, patches = celeb_a_download(offline)
    cfg = small(domain="face", tfds_dir=str(tmp_path))  # Empty: nothing prepared.
    with patches, pytest.raises(FileNotFoundError, match="--data-dir") as info:
        make_train_dataset(cfg)
    assert calls == [str(tmp_path)]
    message = str(info.value)
    assert "celeb_a" in message and str(tmp_path) in message
    assert "ConnectionError: Max retries exceeded" in message
    assert "connected machine" in message


def test_face_failed_download_says_where_to_put_the_files(tmp_path):
    """A download that fails (as CelebA's Google Drive files do once their
    quota is used up): `train.py` ends with the manual-download instructions,
    no traceback."""
    import tensorflow_datasets as tfds

    from keras_udd import train

    quota = tfds.core.download.download_manager.NonMatchingChecksumError(
        "Artifact https://drive.google.com/uc?export=download&id=0B7, "
        "downloaded to ..., has wrong checksum"
    )
    _, patches = celeb_a_download(quota)
    flags = ["--domain", "face", "--tfds-dir", str(tmp_path), "--vgg-weights",
             "none", "--output-dir", str(tmp_path / "run")]  # fmt: skip
    with patches, pytest.raises(SystemExit) as info:
        train.main(flags)
    message = str(info.value)
    assert message.startswith("error: --domain face: TFDS could not download")
    assert "NonMatchingChecksumError: Artifact https://drive.google.com" in message
    manual = str(tmp_path / "downloads" / "manual")
    assert f"in {manual}:" in message
    for name in ("img_align_celeba.zip (1.34 GiB)", "list_eval_partition.txt",
                 "list_attr_celeba.txt", "list_landmarks_align_celeba.txt",
                 "identity_CelebA.txt"):  # fmt: skip
        assert f"\n  {name}" in message
    assert "--tfds-dir DIR" in message and "--data-dir" in message
    assert not (tmp_path / "run").exists()  # Nothing was started.


@pytest.mark.slow
def test_face_first_run_downloads_prepares_and_trains(tmp_path, capsys):
    """`train.py --domain face` with CelebA not prepared: says what it
    downloads and where, has TFDS download and prepare it once (replaced
    here), then trains on it (TFDS' mock of celeb_a: random images)."""
    import tensorflow_datasets as tfds

    from keras_udd import train

    calls, patches = celeb_a_download(None)
    flags = [
        "--domain", "face", "--tfds-dir", str(tmp_path / "tfds"),
        "--output-dir", str(tmp_path / "run"), "--epochs", "1",
        "--steps-per-epoch", "2", "--val-images", "2", "--test-images", "2",
        "--sample-images", "1", "--content-filters", "4", "--blur-filters", "4",
        "--disc-filters", "4", "--content-res-blocks", "1",
        "--generator-res-blocks", "1", "--disc-scales", "2", "--vgg-weights",
        "none", "--vgg-layer", "block2_conv1", "--no-jit-compile",
        "--crop-size", "32", "--load-size", "36", "--blur-kernel-bank", "8",
    ]  # fmt: skip
    with tfds.testing.mock_data(num_examples=8), patches:
        assert train.main(flags) == 0
    assert len(calls) == 1  # Prepared once, then read.
    err = capsys.readouterr().err
    assert "is not prepared in" in err
    assert "downloading its 5 files (1.39 GiB) into" in err
    assert f"{calls[0]}/downloads" in err
    assert (tmp_path / "run" / "latest.keras").is_file()


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
        test = take(make_test_examples(cfg), 10)
        val = take(make_test_examples(cfg, split="val"), 10)
        assert len(test) == 4 and len(val) == 3  # test[:4], validation[:3].
        test_ids = {e["id"][0] for e in test}
        val_ids = {e["id"][0] for e in val}
        assert all(b"test" in i for i in test_ids)
        assert all(b"validation" in i for i in val_ids)
        assert not test_ids & val_ids


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
        val_images=0,
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
