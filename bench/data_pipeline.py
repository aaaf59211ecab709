"""Benchmark of the training data pipelines: start-up time and throughput.

Measures, for each case, the seconds from `make_train_dataset(cfg)` to the
first batch (kernel bank synthesis, graph tracing, first renders/decodes), then
the steady-state rate seen by one Python consumer (as a training loop) after
`--warmup` batches over `--batches` batches, at the reference sizes (load 144,
crop 128, batch 2). The kernel bank synthesis alone is timed too. Cases:
`text` (rendered pages, synthetic blur), `face-data-dir` (a temporary folder of
200 JPEGs of 200x180 with synthetic blur) and `folder` (the same JPEGs as real
sharp / blurred halves of 100 each, no synthetic blur). Prints a table and
writes JSON to `bench/results/data_pipeline.json`.

    python bench/data_pipeline.py [--batches 200] [--warmup 20]

A "pair" is one (sharp, blurred) training example; images/s counts both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from keras_udd import blur  # noqa: E402
from keras_udd.config import DataConfig  # noqa: E402
from keras_udd.data import make_train_dataset, pipeline  # noqa: E402


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
        "batches_per_s": round(batches / elapsed, 2),
        "pairs_per_s": round(pairs, 2),
        "images_per_s": round(2 * pairs, 2),
        "ms_per_batch": round(1000 * elapsed / batches, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "data_pipeline.json")
    )
    args = parser.parse_args()

    base = dict(load_size=144, crop_size=128, batch_size=2, seed=0)
    load = os.getloadavg()[0]  # Other processes share the cores.
    start = time.perf_counter()
    blur.make_kernel_bank(DataConfig.blur_kernel_bank, DataConfig.blur_kernel_size)
    results = {"kernel_bank_s": round(time.perf_counter() - start, 3)}
    print("kernel bank", results["kernel_bank_s"], "s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_jpegs(tmp / "all", 200)
        files = sorted((tmp / "all").iterdir())
        for sub, part in (("sharp", files[:100]), ("blur", files[100:])):
            (tmp / sub).mkdir()
            for f in part:
                (tmp / sub / f.name).symlink_to(f)
        cases = {
            "text": DataConfig(domain="text", **base),
            "face-data-dir": DataConfig(
                domain="face", data_dir=str(tmp / "all"), **base
            ),
            "folder": DataConfig(
                domain="folder",
                sharp_dir=str(tmp / "sharp"),
                blur_dir=str(tmp / "blur"),
                **base,
            ),
        }
        for name, cfg in cases.items():
            results[name] = measure(cfg, args.warmup, args.batches)
            print(name, results[name], flush=True)

    report = {
        "settings": {
            **base,
            "blur_kernel_size": DataConfig.blur_kernel_size,
            "blur_kernel_bank": DataConfig.blur_kernel_bank,
            "warmup_batches": args.warmup,
            "batches": args.batches,
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
    print(f"{'case':<15}{'first batch s':>15}{'pairs/s':>10}{'images/s':>10}")
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        print(
            f"{name:<15}{r['first_batch_s']:>15.2f}{r['pairs_per_s']:>10.1f}"
            f"{r['images_per_s']:>10.1f}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
