"""Benchmark of the training data pipelines against what training consumes.

Measures, for each case and `--repeats` times, the seconds from
`make_train_dataset(cfg)` to the first batch (kernel bank synthesis, graph
tracing, first renders/decodes), then the steady-state rate seen by one Python
consumer (as a training loop) after `--warmup` batches over `--batches`
batches. Cases: `text-small` (the shipped text recipe's data: document pages
of the realistic domain, 64-px crops, 8 per page), `text (reference sizes)`
(the default text domain at load 144, crop 128, batch 2), `face-data-dir` (a
temporary folder of 200 JPEGs of 200x180 with synthetic blur) and `folder`
(the same JPEGs as real sharp / blurred halves of 100 each, no synthetic
blur), the last two at the reference sizes too. Also timed: a text page's
layout and photographed look (ms per page), augraphy's effects for the same
look on that page when augraphy is installed (not a dependency), and the
pairs per second that the text-small training step consumes (its model and
training step on a fixed batch), so the pipeline's margin over training is a
ratio of two measurements of one run. Prints a table and writes JSON to
`bench/results/data_pipeline.json`.

    python bench/data_pipeline.py [--batches 200] [--warmup 20] [--repeats 3]

A "pair" is one (sharp, blurred) training example.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from bench.learn_text import PRESET, cpu_model, step_time  # noqa: E402
from keras_udd import blur  # noqa: E402
from keras_udd.config import DataConfig  # noqa: E402
from keras_udd.data import make_train_dataset, pipeline  # noqa: E402

# augraphy's effects for the look of `keras_udd.data.photo` (paper, ink,
# light, camera), timed when augraphy is installed (`pip install augraphy`).
AUGRAPHY_EFFECTS = (
    "ColorPaper", "NoiseTexturize", "BrightnessTexturize", "InkBleed",
    "LowInkRandomLines", "BleedThrough", "LightingGradient", "ShadowCast",
    "SubtleNoise", "Jpeg",
)  # fmt: skip


def write_jpegs(folder: Path, n: int, size=(200, 180), seed: int = 0) -> None:
    """n random-ish JPEGs (colour ramps, blobs and noise), W x H = size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        image = np.zeros((h, w, 3)) + rng.uniform(0, 255, 3)
        for _ in range(6):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 40)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            image[mask] = rng.uniform(0, 255, 3)
        image += rng.normal(0, 8, image.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            folder / f"img{i:04d}.jpg", quality=90
        )


def measure(cfg: DataConfig, warmup: int, batches: int) -> dict:
    pipeline._synth_bank.cache_clear()  # Cold start: synthesise the bank again.
    start = time.perf_counter()
    iterator = iter(make_train_dataset(cfg))
    sharp, blurred = next(iterator)
    first = time.perf_counter() - start
    assert sharp.shape == (cfg.batch_size, cfg.crop_size, cfg.crop_size, 3)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    pairs = batches * cfg.batch_size / elapsed
    return {
        "first_batch_s": round(first, 3),
        "pairs_per_s": round(pairs, 2),
        "ms_per_batch": round(1000 * elapsed / batches, 2),
    }


def page_costs(cfg: DataConfig, pages: int) -> dict:
    """Milliseconds per page of the text domain's layout (fonts, text,
    camera geometry) and of its photographed look (`photograph` + JPEG)."""
    from keras_udd.data.domains import text_renderer

    renderer = text_renderer(cfg)
    renderer.render(0)  # Texture bank, font cache.
    start = time.perf_counter()
    for i in range(1, pages + 1):
        renderer.layout(i)
    layout = (time.perf_counter() - start) / pages
    start = time.perf_counter()
    for i in range(1, pages + 1):
        renderer.render(i)
    total = (time.perf_counter() - start) / pages
    return {
        "layout_ms": round(1000 * layout, 1),
        "look_ms": round(1000 * (total - layout), 1),
        "page_ms": round(1000 * total, 1),
    }


def augraphy_costs(cfg: DataConfig, repeats: int = 3) -> dict | None:
    """Milliseconds per page of augraphy's effects for the same look, on a
    page of the text domain (None when augraphy is not installed)."""
    try:
        import augraphy
    except ImportError:
        return None
    from keras_udd.data.domains import text_renderer

    page = text_renderer(cfg).render(0)
    costs = {"version": augraphy.__version__}
    for name in AUGRAPHY_EFFECTS:
        effect = getattr(augraphy, name)(p=1)
        effect(page.copy())  # Warm-up (numba compilation).
        start = time.perf_counter()
        for _ in range(repeats):
            effect(page.copy())
        costs[name] = round(1000 * (time.perf_counter() - start) / repeats, 1)
    return costs


def span(values, digits: int = 0) -> str:
    """The range "lo-hi" of the values (one number when both round alike)."""
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return lo if lo == hi else f"{lo}-{hi}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case")
    parser.add_argument("--pages", type=int, default=30, help="pages timed")
    parser.add_argument(
        "--train-steps",
        type=int,
        default=30,
        help="text-small training steps timed (0: skip)",
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "data_pipeline.json")
    )
    args = parser.parse_args()

    from keras_udd.presets import preset_config

    text_small = preset_config(PRESET).data
    base = dict(load_size=144, crop_size=128, batch_size=2, seed=0)
    load = os.getloadavg()[0]  # Other processes share the cores.
    start = time.perf_counter()
    blur.make_kernel_bank(DataConfig.blur_kernel_bank, DataConfig.blur_kernel_size)
    results = {"kernel_bank_s": round(time.perf_counter() - start, 3)}
    results["text_pages"] = page_costs(text_small, args.pages)
    print("text-small pages", results["text_pages"], flush=True)
    results["augraphy_ms"] = augraphy_costs(text_small)
    print("augraphy effects", results["augraphy_ms"], flush=True)
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_jpegs(tmp / "all", 200)
        files = sorted((tmp / "all").iterdir())
        for sub, part in (("sharp", files[:100]), ("blur", files[100:])):
            (tmp / sub).mkdir()
            for f in part:
                (tmp / sub / f.name).symlink_to(f)
        configs = {
            "text-small": text_small,
            "text (reference sizes)": DataConfig(domain="text", **base),
            "face-data-dir": DataConfig(
                domain="face", data_dir=str(tmp / "all"), **base
            ),
            "folder": DataConfig(
                domain="folder",
                sharp_dir=str(tmp / "sharp"),
                blur_dir=str(tmp / "blur"),
                test_images=0,  # Real blur: no held-out synthetic pairs.
                val_images=0,
                **base,
            ),
        }
        for repeat in range(args.repeats):
            for name, cfg in configs.items():
                run = measure(cfg, args.warmup, args.batches)
                cases.setdefault(name, []).append(run)
                print(f"run {repeat + 1}: {name} {run}", flush=True)
    results["cases"] = cases
    if args.train_steps:
        train = step_time(preset_config(PRESET), args.train_steps)
        slowest = min(r["pairs_per_s"] for r in cases["text-small"])
        train["slowest_pipeline_margin"] = round(slowest / train["pairs_per_s"], 1)
        results["text_small_training"] = train
        print("text-small training", train, flush=True)

    report = {
        "settings": {
            **base,
            "text_small_data": dataclasses.asdict(text_small),
            "blur_kernel_size": DataConfig.blur_kernel_size,
            "blur_kernel_bank": DataConfig.blur_kernel_bank,
            "warmup_batches": args.warmup,
            "batches": args.batches,
            "repeats": args.repeats,
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_start": round(load, 2),
            "machine": platform.machine(),
            "tensorflow": tf.__version__,
        },
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{cpu_model()}, {args.repeats} runs each (range)")
    print(f"{'case':<24}{'first batch s':>15}{'pairs/s':>12}")
    for name, runs in cases.items():
        first = span([r["first_batch_s"] for r in runs], 1)
        print(f"{name:<24}{first:>15}{span([r['pairs_per_s'] for r in runs]):>12}")
    if args.train_steps:
        train = results["text_small_training"]
        print(
            f"text-small training consumes {train['pairs_per_s']:.1f} pairs/s; the "
            f"slowest text-small run fed {train['slowest_pipeline_margin']}x that"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
