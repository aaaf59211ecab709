"""Deblur latency per image (batch 1) of the Keras model, SavedModel and TFLite.

    python bench/latency.py [--sizes 128 256 512] [--repeats 10] [--warmup 2]
        [--threads 2] [--model RUN/best.keras | --artifacts EXPORT_DIR]
        [--backends keras savedmodel tflite] [--quantize none float16 dynamic int8]
        [--keep-artifacts DIR]

Without `--artifacts` it exports the model (default: the reference
architecture `UIDGAN(vgg_weights=None)` with random weights, which time the
same as trained ones) to a temporary folder that is deleted at the end, or to
`--keep-artifacts DIR` (`bench/results/artifacts/` is git-ignored). Reports
the median of `--repeats` runs after `--warmup` runs per backend and size, on
TensorFlow
and LiteRT (XNNPACK) limited to `--threads` threads, plus the file sizes;
writes bench/results/latency.json and prints a markdown table. Numbers from a
machine that other processes load are inflated: the JSON records the load.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_model  # bench/machine.py

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("none", "float16", "dynamic", "int8")
NAMES = {
    "keras": "keras (tf.function)",
    "savedmodel": "savedmodel (deblur_float)",
    "none": "tflite float32",
    "float16": "tflite float16",
    "dynamic": "tflite dynamic int8",
    "int8": "tflite int8",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help=".keras checkpoint (default: random weights)")
    parser.add_argument("--artifacts", help="an existing `python -m export` folder")
    parser.add_argument(
        "--keep-artifacts",
        metavar="DIR",
        help="export into DIR and keep it (default: a temporary folder, deleted)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=("keras", "savedmodel", "tflite"),
        default=["keras", "savedmodel", "tflite"],
    )
    parser.add_argument("--quantize", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument("--out", default=str(RESULTS / "latency.json"))
    return parser.parse_args(argv)


def configure_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def load_deblurrer(model_path):
    """`(deblurrer, config)` from a checkpoint or the random reference model."""
    import keras

    from keras_udd import UIDGAN
    from keras_udd.export import verify
    from keras_udd.export.savedmodel import build

    if model_path:
        model, deblurrer = verify.load_model(model_path)
        return deblurrer, model.get_config()
    keras.utils.set_random_seed(0)
    model = UIDGAN(vgg_weights=None)
    return build(model.deblurrer), model.get_config()


def export_artifacts(deblurrer, out_dir, backends, variants):
    """Writes what the backends need; returns `{kind: path}`."""
    from keras_udd.export import images, savedmodel, tflite

    paths = {}
    if "savedmodel" in backends:
        paths["savedmodel"] = savedmodel.write_savedmodel(deblurrer, out_dir)
        print(f"  wrote {paths['savedmodel']}", flush=True)
    if "tflite" in backends:
        calibration = None
        if "int8" in variants:
            calibration = images.calibration_images(None, 16, 128, seed=1)
        with tempfile.TemporaryDirectory() as tmp:
            source = tflite.write_source_savedmodel(deblurrer, Path(tmp) / "source")
            for variant in variants:
                paths[variant] = tflite.write_tflite(
                    deblurrer, out_dir, variant, source, calibration
                )
                print(f"  wrote {paths[variant]}", flush=True)
    return paths


def existing_artifacts(out_dir, backends, variants):
    from keras_udd.export import verify

    found = dict(verify.find_artifacts(out_dir))
    wanted = (["savedmodel"] if "savedmodel" in backends else []) + (
        list(variants) if "tflite" in backends else []
    )
    missing = [kind for kind in wanted if kind not in found]
    if missing:
        raise FileNotFoundError(f"{out_dir} lacks {missing}; run `python -m export`")
    return {kind: found[kind] for kind in wanted}


def time_runs(run, image, warmup, repeats):
    for _ in range(warmup):
        run(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(image)
        times.append((time.perf_counter() - start) * 1000.0)
    return {
        "median_ms": float(np.median(times)),
        "min_ms": float(np.min(times)),
        "runs": repeats,
    }


def file_bytes(path):
    from keras_udd.export.savedmodel import directory_size

    path = Path(path)
    return directory_size(path) if path.is_dir() else path.stat().st_size


def markdown(results, sizes, file_sizes):
    head = " | ".join(f"{s}x{s} (ms)" for s in sizes)
    lines = [
        f"| backend | {head} | file (MB) |",
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    for kind, by_size in results.items():
        cells = " | ".join(f"{by_size[str(s)]['median_ms']:.0f}" for s in sizes)
        size = f"{file_bytes_mb(file_sizes.get(kind))}"
        lines.append(f"| {NAMES[kind]} | {cells} | {size} |")
    return "\n".join(lines)


def file_bytes_mb(n):
    return "-" if n is None else f"{n / 1e6:.1f}"


def time_backends(deblurrer, paths, args):
    """`{kind: {size: time_runs stats}}` of the Keras model and each artifact."""
    from keras_udd.export import images, verify

    runners = {}
    if "keras" in args.backends:
        runners["keras"] = lambda: verify.keras_runner(deblurrer)
    for kind, path in paths.items():
        if kind == "savedmodel":
            runners[kind] = lambda p=path: verify.SavedModelRunner(p)
        else:
            runners[kind] = lambda p=path: verify.TFLiteRunner(p, args.threads)
    results = {}
    for kind, make in runners.items():
        run = make()
        results[kind] = {}
        for size in args.sizes:
            image = images.synthetic_images([(size, size)], seed=size)[0]
            stats = time_runs(run, image, args.warmup, args.repeats)
            results[kind][str(size)] = stats
            print(
                f"{NAMES[kind]:<26} {size:>4}px  median {stats['median_ms']:7.1f} ms"
                f"  min {stats['min_ms']:7.1f} ms",
                flush=True,
            )
        del run
    return results


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_threads(args.threads)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} on {os.cpu_count()} cores")
    deblurrer, config = load_deblurrer(args.model)
    variants = [v for v in VARIANTS if v in args.quantize]
    with tempfile.TemporaryDirectory() as tmp:
        if args.artifacts:
            paths = existing_artifacts(args.artifacts, args.backends, variants)
        else:
            out_dir = Path(args.keep_artifacts or tmp)
            print(f"exporting to {out_dir}", flush=True)
            paths = export_artifacts(deblurrer, out_dir, args.backends, variants)
        results = time_backends(deblurrer, paths, args)
        file_sizes = {kind: file_bytes(path) for kind, path in paths.items()}
    report = {
        "settings": {
            "sizes": args.sizes,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": args.threads,
            "batch": 1,
            "model": args.model or "UIDGAN(vgg_weights=None), random weights",
        },
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "model_config": config,
        "latency": results,
        "file_bytes": file_sizes,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(markdown(results, args.sizes, file_sizes))
    print(f"\nwrote {out}; load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
