"""The realistic text domain: pinned fonts, document pages, the blur families
of real photos with their labels, the unseen-fonts split, and scores sliced
by blur family (keras_udd.data.fonts, .document, .photo, keras_udd.blur,
keras_udd.evaluate.summarize)."""

import hashlib
import os
import shutil

import numpy as np
import pytest

from keras_udd import blur
from keras_udd.config import DataConfig
from keras_udd.data import build_domain, make_test_examples, make_train_examples
from keras_udd.data import fonts as font_set
from keras_udd.data.document import DocumentRenderer
from keras_udd.data.domains import text_renderer
from keras_udd.data.pipeline import kernel_bank, kernel_labels
from keras_udd.evaluate import summarize

PAGES = dict(
    load_size=48,
    crop_size=32,
    batch_size=2,
    test_images=10,
    val_images=5,
    unseen_images=5,
    text_pool_size=40,
    blur_kernel_size=23,
    blur_kernel_bank=40,
    deterministic=True,
)
# sha256 (16 hex digits) of the ink of pages 0-3 of DocumentRenderer(160, 0,
# the training fonts): the fonts, the layout and the camera geometry.
PINNED_LAYOUTS = ("2bd4238bf7f6adc4", "7622a0ce840d9fc3", "76c365254bd4ee21",
                  "619d5561239607c3")  # fmt: skip


def pages(**overrides) -> DataConfig:
    return DataConfig(**{**PAGES, **overrides})


# --- fonts -------------------------------------------------------------------


def test_fonts_are_pinned_files_of_the_installed_packages():
    families = font_set.pinned_families()
    files = [path for f in families for path in f.faces.values()]
    assert len(files) == len(set(files)) >= 20
    packages = [font_set._package_dir(p) for p in ("matplotlib", "reportlab")]
    assert all(any(p in os.path.realpath(f) for p in map(str, packages)) for f in files)
    assert font_set.changed_fonts() == ()  # Same bytes as when pinned.
    train = font_set.families(split="train")
    assert {f.role for f in train} == {"serif", "sans", "mono"}
    styles = {style for f in train for style in f.faces}
    assert {"regular", "bold", "italic", "bolditalic"} <= styles
    names = " ".join(f.name for f in train)
    for face in ("Times", "Helvetica", "Courier", "Computer Modern"):
        assert face in names
    unseen = font_set.families(split="unseen")
    unseen_files = {path for f in unseen for path in f.faces.values()}
    train_files = {path for f in train for path in f.faces.values()}
    assert unseen_files and not unseen_files & train_files


def test_a_changed_font_file_is_reported(monkeypatch, caplog):
    monkeypatch.setitem(font_set.PINNED, "cmr10.ttf", "0" * 16)
    font_set.changed_fonts.cache_clear()
    try:
        assert [os.path.basename(f) for f in font_set.changed_fonts()] == ["cmr10.ttf"]
        font_set.families()
        assert "differ from the ones the text domain was pinned with" in caplog.text
    finally:
        monkeypatch.undo()
        font_set.changed_fonts.cache_clear()


def test_font_dir_replaces_the_set_and_holds_out_every_fifth(tmp_path):
    files = sorted(
        path for f in font_set.pinned_families() for path in f.faces.values()
    )[:6]
    for path in files:
        shutil.copy(path, tmp_path)
    train = font_set.families(str(tmp_path), "train")
    unseen = font_set.families(str(tmp_path), "unseen")
    assert len(train) == 5 and len(unseen) == 1
    assert all(str(tmp_path) in f.face("regular") for f in train + unseen)
    page = text_renderer(pages(font_dir=str(tmp_path)), "unseen").render(0)
    assert page.shape[1] == PAGES["load_size"]


# --- pages -------------------------------------------------------------------


def test_rendered_pages_are_pinned_and_deterministic():
    renderer = DocumentRenderer(160, 0, font_set.families())
    digests = tuple(
        hashlib.sha256(renderer.layout(i).tobytes()).hexdigest()[:16] for i in range(4)
    )
    assert digests == PINNED_LAYOUTS
    again = DocumentRenderer(160, 0, font_set.families())
    for i in range(2):
        page = renderer.render(i)
        assert page.dtype == np.uint8 and page.shape[1] == 160
        assert 160 <= page.shape[0] <= 224  # Portrait: 1-1.4x as high.
        np.testing.assert_array_equal(page, again.render(i))


def test_pages_look_photographed_and_the_clean_look_is_black_on_white():
    fonts = font_set.families()
    photo = [DocumentRenderer(128, 0, fonts).render(i) for i in range(8)]
    clean = [DocumentRenderer(128, 0, fonts, look="clean").render(i) for i in range(8)]
    paper = [np.percentile(p, 90) for p in photo]
    # Paper well below white on some pages, tinted on others, light uneven.
    assert min(paper) < 225
    tints = [np.ptp(np.median(p.reshape(-1, 3), 0)) for p in photo]
    assert max(tints) > 6
    for page in clean:
        assert page.max() == 255 and page.min() < 60
        assert np.all(page[..., 0] == page[..., 1])  # Grey.
    ink = [DocumentRenderer(128, 0, fonts).layout(i) for i in range(8)]
    assert all(0.02 < (i > 128).mean() < 0.5 for i in ink)  # Text on every page.


# --- blur families -----------------------------------------------------------


def second_moment(kernel):
    r = np.arange(kernel.shape[0]) - (kernel.shape[0] - 1) / 2
    cy = (kernel.sum(1) * r).sum()
    return (kernel.sum(1) * (r - cy) ** 2).sum()


def test_every_photo_blur_family_with_its_size():
    names = tuple(blur.PHOTO_FAMILIES)
    bank, family, value = blur.photo_kernel_bank(25, 23, (0, 1), stratified=True)
    assert [names[f] for f in family] == list(names) * 5
    np.testing.assert_allclose(bank.sum((1, 2)), 1.0, atol=1e-5)
    for kernel, f, v in zip(bank, family, value, strict=True):
        name = names[f]
        lo, hi = blur.PHOTO_FAMILIES[name][1]
        assert lo <= v <= hi
        support = (kernel > 1e-3).sum()
        if name == "sharp":  # Nearly a delta.
            assert np.sqrt(second_moment(kernel)) <= v + 0.05 and kernel.max() > 0.35
        elif name == "gaussian":  # Variance sigma^2.
            assert abs(np.sqrt(second_moment(kernel)) - v) < 0.05 + 0.05 * v
        elif name == "defocus":  # A disc of radius v.
            assert abs(support - np.pi * max(v, 0.5) ** 2) < 2 * np.pi * v + 4
        elif name == "linear":  # A line of length v.
            rows, cols = np.nonzero(kernel > 1e-3)
            extent = np.hypot(np.ptp(rows), np.ptp(cols))
            assert v - 2 <= extent <= v + 2
        else:  # Camera shake within v px.
            rows, cols = np.nonzero(kernel > 1e-3)
            assert max(np.ptp(rows), np.ptp(cols)) <= v + 2
    # Stratified: the sizes of a family spread over its range.
    for f in range(len(names)):
        lo, hi = blur.PHOTO_FAMILIES[names[f]][1]
        values = np.sort(value[family == f])
        assert values[0] < lo + (hi - lo) / 5 and values[-1] > hi - (hi - lo) / 5
    drawn = blur.photo_kernel_bank(400, 23, 0)[1]
    shares = np.bincount(drawn, minlength=5) / 400
    expected = np.array([blur.PHOTO_FAMILIES[n][2] for n in names])
    np.testing.assert_allclose(shares, expected, atol=0.06)


def test_training_blur_of_chosen_families_only(tmp_path):
    names = tuple(blur.PHOTO_FAMILIES)
    saved = str(tmp_path / "bank.npy")
    blur.save_kernel_bank(saved, np.ones((2, 3, 3), np.float32) / 9)
    every = blur.photo_kernel_bank(300, 23, 0)
    for a, b in zip(every, blur.photo_kernel_bank(300, 23, 0, only=names)):
        np.testing.assert_array_equal(a, b)  # Naming all of them changes nothing.
    two = blur.photo_kernel_bank(300, 23, 0, only=("sharp", "defocus"))[1]
    assert set(two) == {names.index("sharp"), names.index("defocus")}
    assert 0.15 < np.mean(two == names.index("sharp")) < 0.45  # 0.10 / 0.35.
    # --photo-families: the training bank only; held-out splits keep all five.
    cfg = pages(photo_families="defocus, linear")
    assert set(kernel_labels(cfg).family) == {"defocus", "linear"}
    assert kernel_labels(cfg, "test").family == kernel_labels(pages(), "test").family
    with pytest.raises(ValueError, match="--photo-families .* got 'blurry'"):
        make_train_examples(pages(photo_families="blurry"))
    with pytest.raises(ValueError, match="--photo-families .* needs --blur-families"):
        make_train_examples(pages(photo_families="defocus", blur_families="shake"))
    with pytest.raises(ValueError, match="--blur-kernel-file .* already holds one"):
        kernel_bank(pages(photo_families="defocus", blur_kernel_file=saved))


def test_held_out_pages_carry_their_blur_family_and_size():
    cfg = pages(noise_std=0.0, jpeg_prob=0.0)
    labels = kernel_labels(cfg, "test")
    bank = kernel_bank(cfg, "test")
    assert labels.family[:5] == tuple(blur.PHOTO_FAMILIES)
    renderer = text_renderer(cfg)
    for e in make_test_examples(cfg, split="test").take(5):
        index, source = int(e["kernel_index"][0]), e["id"][0].numpy()
        page = renderer(source)
        again = blur.blur_image(page, bank[index])
        blurred = np.round((e["blurred"][0].numpy() + 1) * 127.5)
        assert np.abs(again - blurred).max() <= 0.51
    assert (
        kernel_labels(pages(blur_families="shake", blur_kernel_size=9), "test").family[
            0
        ]
        in blur.KINDS
    )
    with pytest.raises(ValueError, match="--blur-kernel-size >= 23"):
        make_test_examples(pages(blur_kernel_size=15))


def test_held_out_pairs_with_nothing_to_deblur_are_left_out():
    # No noise, no JPEG: a nearly sharp kernel of small sigma moves no pixel
    # by half a grey level, so its page comes out unchanged.
    cfg = pages(noise_std=0.0, jpeg_prob=0.0)
    bank, family = kernel_bank(cfg, "test"), kernel_labels(cfg, "test").family
    kept = {}
    for e in make_test_examples(cfg, split="test"):
        assert np.any(e["blurred"][0].numpy() != e["sharp"][0].numpy())
        kept[e["id"][0].numpy().decode()] = int(e["kernel_index"][0])
    ids = build_domain(cfg).test.ids
    assert kept == {s: i % len(bank) for i, s in enumerate(ids) if s in kept}
    left_out = [i % len(bank) for i, s in enumerate(ids) if s not in kept]
    assert 0 < len(left_out) < len(ids)
    assert all(family[k] == "sharp" and bank[k].max() > 0.99 for k in left_out)


# --- splits and the training stream ------------------------------------------


def test_unseen_fonts_split_is_disjoint_and_rendered_with_held_out_fonts():
    cfg = pages()
    domain = build_domain(cfg)
    others = set(domain.sharp.ids) | set(domain.blurred.ids)
    others |= set(domain.test.ids) | set(domain.val.ids)
    assert len(domain.unseen.ids) == 5 and not set(domain.unseen.ids) & others
    assert {f.split for f in domain.unseen.load.families} == {"unseen"}
    assert {f.split for f in domain.sharp.load.families} == {"train"}
    unseen = list(make_test_examples(cfg, split="unseen"))
    assert len(unseen) == 5
    assert {e["id"][0].numpy().decode() for e in unseen} == set(domain.unseen.ids)
    assert not np.allclose(kernel_bank(cfg, "unseen"), kernel_bank(cfg, "test")[:5])
    with pytest.raises(ValueError, match="no unseen-fonts set.*--unseen-images"):
        make_test_examples(pages(unseen_images=0), split="unseen")


def test_crops_per_image_interleave_pages_and_resume_exactly():
    cfg = pages(crops_per_image=3)
    stream = [
        {k: v.numpy() for k, v in e.items()} for e in make_train_examples(cfg).take(12)
    ]
    ids = [i for e in stream[:9] for i in e["sharp_id"]]  # 18 crops = 2 cycles.
    assert len(set(ids)) == 6 and all(ids.count(i) == 3 for i in set(ids))
    assert ids[0] != ids[1]  # Interleaved: neighbours come from other pages.
    resumed = [
        {k: v.numpy() for k, v in e.items()}
        for e in make_train_examples(cfg, start_batch=5).take(7)
    ]
    for x, y in zip(stream[5:], resumed, strict=True):
        for key in ("sharp_id", "blurred_id", "sharp", "blurred"):
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


# --- scores by family ---------------------------------------------------------


def test_scores_are_sliced_by_family_and_size():
    cfg = pages()
    labels = kernel_labels(cfg, "test")
    records = [
        {
            "kernel_index": i,
            "psnr": float(i),
            "ssim": 0.5,
            "psnr_blurred": 10.0,
            "ssim_blurred": 0.4,
        }
        for i in range(10)
    ]
    scores = summarize(records, labels)
    assert scores["images"] == 10 and scores["psnr"] == 4.5
    families = scores["families"]
    assert list(families) == list(blur.PHOTO_FAMILIES)
    assert families["sharp"]["images"] == 2 and families["sharp"]["psnr"] == 2.5
    assert families["shake"]["psnr"] == 6.5  # Images 4 and 9.
    for name, entry in families.items():
        assert sum(b["images"] for b in entry["bins"]) == entry["images"]
        lo, hi = blur.PHOTO_FAMILIES[name][1]
        for b in entry["bins"]:
            assert lo - 0.01 <= b["range"][0] < b["range"][1] <= hi + 0.01
            members = [
                r for r in records if labels.family[r["kernel_index"]] == name
                and b["range"][0] <= labels.value[r["kernel_index"]] <= b["range"][1]
            ]  # fmt: skip
            assert b["images"] == len(members)
    assert "families" not in summarize(records)  # No labels, no slices.
