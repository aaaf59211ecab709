"""Runs every exported artifact and compares it with the Keras deblurrer.

Each artifact is run on test images of several sizes (non-multiples of 4
included: crops of the model's own blurred validation images when its training
config is known, from its run folder or a shipped model's record, else
synthetic pictures) and compared with `model.deblurrer` on the same float32 images in
[0, 1]: the largest absolute difference and PSNR (on [0, 1], worst image;
`inf` when identical), plus the median latency. The SavedModel runs through
`tf.saved_model.load` (all three signatures), TFLite through the LiteRT
interpreter with XNNPACK (its default delegate), resizing the input per image.

Usable alone: `python -m export.verify --model RUN/best.keras --out DIR` (from
a checkout; installed: `python -m keras_udd.export.verify`) re-checks whatever
`python -m export` wrote to DIR.
"""

import argparse
import collections
import io
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from keras_udd import console, keras_private, runs
from keras_udd.export import contract, images
from keras_udd.runtime import TFLiteRunner, to_uint8

DEFAULT_SIZES = ((32, 32), (37, 53), (64, 48))
# Pass/fail limits per artifact ("none" is the float32 TFLite model). The
# quantized variants are compared with the float32 Keras model; full int8 is
# reported, not judged.
LIMITS = {
    "savedmodel": {"max_abs_error": 1e-4, "uint8_max_level_difference": 1},
    "none": {"max_abs_error": 1e-4},
    "float16": {"min_psnr_db": 40.0},
    "dynamic": {"min_psnr_db": 30.0},
    "int8": {},
}
ARTIFACT_NAMES = {
    "keras": "keras (reference)",
    "savedmodel": "savedmodel",
    "none": "tflite float32",
    "float16": "tflite float16",
    "dynamic": "tflite dynamic int8",
    "int8": "tflite int8",
}


def load_model(path):
    """Loads a `.keras` UIDGAN checkpoint, a `.keras` Deblurrer, or a shipped
    model by name (`text`); returns `(model, deblurrer)`."""
    import keras

    from keras_udd import Deblurrer, pretrained
    from keras_udd.export.savedmodel import build

    path = Path(pretrained.resolve(str(path)))
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    model = keras.saving.load_model(path, compile=False)
    deblurrer = getattr(model, "deblurrer", model)
    if not isinstance(deblurrer, Deblurrer):
        raise TypeError(
            f"{path} holds a {type(model).__name__}, not a UIDGAN or a Deblurrer"
        )
    return model, build(deblurrer)


# ------------------------------------------------------------------ metrics
def max_abs_error(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def psnr(a, b, peak=1.0):
    """PSNR in dB of two arrays on a [0, peak] scale; `inf` when equal."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def compare(outputs, references):
    """Worst-case figures over image pairs (float [0, 1])."""
    per_size = [
        {
            "size": list(out.shape[1:3]),
            "max_abs_error": max_abs_error(out, ref),
            "psnr_db": psnr(out, ref),
        }
        for out, ref in zip(outputs, references, strict=True)
    ]
    return {
        "max_abs_error": max(p["max_abs_error"] for p in per_size),
        "psnr_db": min(p["psnr_db"] for p in per_size),
        "per_size": per_size,
    }


def median_latency_ms(fn, repeats, warmup=1):
    """Median wall time of `fn()` in ms over `repeats` runs after `warmup`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def check(kind, figures):
    """The limits of `LIMITS[kind]` that `figures` break, as messages."""
    failures = []
    for key, limit in LIMITS[kind].items():
        if key == "min_psnr_db":
            if not figures["psnr_db"] >= limit:
                failures.append(f"PSNR {figures['psnr_db']:.1f} dB < {limit} dB")
        elif not figures[key] <= limit:
            failures.append(f"{key} {figures[key]:.3g} > {limit}")
    return failures


# ---------------------------------------------------------------- runners
def keras_runner(deblurrer):
    """float32 [1, H, W, 3] in [0, 1] -> numpy, through the Keras model
    (a `tf.function`, so that timing it measures TF, not Python)."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    @tf.function(input_signature=[spec], autograph=False)
    def run(images):
        return contract.deblur_unit(deblurrer, images)

    return lambda image: run(image).numpy()


class SavedModelRunner:
    """The SavedModel's signatures, loaded with `tf.saved_model.load`."""

    def __init__(self, path):
        import tensorflow as tf

        self._tf = tf
        self.loaded = tf.saved_model.load(str(path))
        self.signatures = self.loaded.signatures

    def __call__(self, image):
        """float32 [N, H, W, 3] in [0, 1] through `deblur_float`."""
        out = self.signatures[contract.DEBLUR_FLOAT](**{contract.IMAGES: image})
        return out[contract.DEBLURRED].numpy()

    def uint8(self, image):
        """uint8 [N, H, W, 3] through `serving_default`."""
        out = self.signatures[contract.SERVING_DEFAULT](**{contract.IMAGES: image})
        return out[contract.DEBLURRED].numpy()

    def encoded(self, data):
        """A list of encoded images -> list of PNG bytes (`deblur_encoded`)."""
        tensor = self._tf.constant(list(data), self._tf.string)
        out = self.signatures[contract.DEBLUR_ENCODED](**{contract.IMAGE_BYTES: tensor})
        return list(out[contract.PNG_BYTES].numpy())


def xnnpack_delegation(path, size=(64, 64), num_threads=2):
    """What the XNNPACK delegate takes of a TFLite model at one input size.

    Returns `{"partitions": delegate nodes, "delegated": ops inside them,
    "ops": all ops, "not_delegated": {op name: count}}`. Read from the
    interpreter's node list after `allocate_tensors`
    (`keras_private.litert_nodes`): an op is delegated when a delegate node's
    outputs depend on it without passing through that node's inputs.
    """
    runner = TFLiteRunner(path, num_threads)
    runner(np.zeros((1, *size, 3), np.float32))
    nodes = keras_private.litert_nodes(runner.interpreter)
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): n for n in ops for t in n["outputs"]}
    delegated = set()
    for node in delegates:
        stop = {int(t) for t in node["inputs"]}
        pending = [int(t) for t in node["outputs"]]
        while pending:
            tensor = pending.pop()
            if tensor in stop or tensor not in producer:
                continue
            stop.add(tensor)
            op = producer[tensor]
            delegated.add(op["index"])
            pending.extend(int(t) for t in op["inputs"] if t >= 0)
    left = collections.Counter(n["op_name"] for n in ops if n["index"] not in delegated)
    return {
        "partitions": len(delegates),
        "delegated": len(delegated),
        "ops": len(ops),
        "not_delegated": dict(sorted(left.items())),
    }


def tflite_io_details(path):
    """`(inputs, outputs)` of the "deblur" signature as the interpreter
    reports them: signature name, tensor name and index, dtype, shape
    signature (-1 = any)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner(contract.TFLITE_SIGNATURE)
    tensors = {
        d["index"]: d
        for d in interpreter.get_input_details() + interpreter.get_output_details()
    }

    def describe(details):
        return [
            {
                "name": name,
                "tensor_name": tensors[d["index"]]["name"],
                "index": int(d["index"]),
                "dtype": np.dtype(d["dtype"]).name,
                "shape": [int(s) for s in tensors[d["index"]]["shape_signature"]],
            }
            for name, d in details.items()
        ]

    return describe(runner.get_input_details()), describe(runner.get_output_details())


# ------------------------------------------------------------- verification
def encode(image_u8, fmt="PNG"):
    """uint8 [1, H, W, 3] -> encoded bytes (Pillow)."""
    buffer = io.BytesIO()
    Image.fromarray(image_u8[0]).save(buffer, fmt)
    return buffer.getvalue()


def decode(data):
    """Encoded bytes -> uint8 [1, H, W, 3] (Pillow)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))[None]


def verify_savedmodel(path, keras_run, test_images, references):
    """Figures of the SavedModel at `path` (a version folder).

    `references` are `keras_run(image)` for `test_images`. The uint8 and
    encoded signatures are compared, in 0-255 levels, with the Keras output
    on the same 8-bit input.
    """
    runner = SavedModelRunner(path)
    figures = compare([runner(image) for image in test_images], references)
    level_u8 = level_png = 0
    for image in test_images:
        image_u8 = to_uint8(image)
        expected = to_uint8(keras_run(image_u8.astype(np.float32) / 255.0))
        got = runner.uint8(image_u8)
        png = decode(runner.encoded([encode(image_u8)])[0])
        level_u8 = max(level_u8, int(np.abs(got.astype(int) - expected).max()))
        level_png = max(level_png, int(np.abs(png.astype(int) - expected).max()))
    figures["uint8_max_level_difference"] = level_u8
    figures["encoded_png_max_level_difference"] = level_png
    return figures, runner


def verify_tflite(path, test_images, references, num_threads=2):
    """Figures of one TFLite model (with what XNNPACK delegates at the first
    test size); returns `(figures, runner)`."""
    runner = TFLiteRunner(path, num_threads)
    figures = compare([runner(image) for image in test_images], references)
    size = test_images[0].shape[1:3]
    figures["xnnpack"] = xnnpack_delegation(path, size, num_threads)
    return figures, runner


def parity_entry(kind, figures, sizes, test_images):
    """What a contract records about verification (`test_images`: what the
    test images were, `images.describe`)."""
    return {
        "reference": "keras_udd Deblurrer (float32, TensorFlow) on the same "
        "float32 images, mapped [0, 1] -> [-1, 1] -> [0, 1]",
        "test_images": test_images,
        "sizes": [list(s) for s in sizes],
        **{k: v for k, v in figures.items()},
        "limits": LIMITS[kind],
        "passed": not check(kind, figures),
    }


# ------------------------------------------------------------------ report
def format_table(rows, latency_size=None):
    """A markdown table of artifact rows (dicts from `row`)."""
    latency = f"latency {latency_size}px (ms)" if latency_size else "latency (ms)"
    lines = [
        f"| artifact | file | size (MB) | max abs err vs Keras | PSNR vs Keras (dB) "
        f"| {latency} | check |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        size = "-" if r.get("bytes") is None else f"{r['bytes'] / 1e6:.1f}"
        err = "-" if r.get("max_abs_error") is None else f"{r['max_abs_error']:.2e}"
        psnr_db = "-" if r.get("psnr_db") is None else f"{r['psnr_db']:.1f}"
        ms = "-" if r.get("latency_ms") is None else f"{r['latency_ms']:.0f}"
        status = "ok" if not r.get("failures") else "FAIL: " + "; ".join(r["failures"])
        if r["kind"] not in LIMITS:
            status = "reference"
        elif not LIMITS[r["kind"]] and not r.get("failures"):
            status = "reported"
        lines.append(
            f"| {r['name']} | {r.get('file') or '-'} | {size} | {err} | {psnr_db} "
            f"| {ms} | {status} |"
        )
    return "\n".join(lines)


def row(kind, path=None, size_bytes=None, figures=None, latency_ms=None, base=None):
    """One summary-table row; `file` is `path` relative to `base` if given."""
    figures = figures or {}
    file = None
    if path is not None:
        file = str(Path(path).relative_to(base) if base else path)
    return {
        "kind": kind,
        "name": ARTIFACT_NAMES[kind],
        "path": None if path is None else str(path),
        "file": file,
        "bytes": size_bytes,
        "max_abs_error": figures.get("max_abs_error"),
        "psnr_db": figures.get("psnr_db"),
        "latency_ms": latency_ms,
        "failures": check(kind, figures) if figures and kind in LIMITS else [],
    }


def progress(index, total, r, seconds):
    """The one progress line printed per artifact."""
    parts = [f"[{index}/{total}] {r['name']:<20}"]
    if r["file"]:
        parts.append(f"{r['file']} ({r['bytes'] / 1e6:.1f} MB)")
    if r["max_abs_error"] is not None:
        parts.append(f"max|err| {r['max_abs_error']:.2e}, PSNR {r['psnr_db']:.1f} dB")
    if r["latency_ms"] is not None:
        parts.append(f"{r['latency_ms']:.0f} ms")
    if r["failures"]:
        parts.append("FAIL: " + "; ".join(r["failures"]))
    else:
        parts.append("ok" if LIMITS.get(r["kind"]) else "reported")
    print("  ".join(parts) + f"  [{seconds:.0f} s]", flush=True)


# ------------------------------------------------------------------- CLI
def find_artifacts(out_dir):
    """`[(kind, path)]` of what `python -m export` wrote to `out_dir`."""
    from keras_udd.export.tflite import FILE_NAMES

    out_dir = Path(out_dir)
    found = []
    versions = sorted(
        (p for p in (out_dir / "savedmodel").glob("*") if p.name.isdigit()),
        key=lambda p: int(p.name),
    )
    if versions:
        found.append(("savedmodel", versions[-1]))
    for quantization, name in FILE_NAMES.items():
        if (out_dir / "tflite" / name).is_file():
            found.append((quantization, out_dir / "tflite" / name))
    return found


def parse_size(text):
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size must look like 37x53, got {text!r}")
    return int(match[1]), int(match[2])


def add_verify_arguments(parser):
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=list(DEFAULT_SIZES),
        help="test image sizes HxW (default: 32x32 37x53 64x48)",
    )
    parser.add_argument("--threads", type=int, default=2, help="TFLite threads")
    parser.add_argument(
        "--latency-size",
        type=int,
        default=256,
        help="square image side for the latency column; 0 skips timing",
    )
    parser.add_argument("--latency-repeats", type=int, default=3)


class Verifier:
    """Verifies artifacts one at a time against the Keras deblurrer.

    Holds the test images (one per size in `sizes`: crops of the model's
    validation images when `data_config`, its training data, is given, else
    synthetic), the Keras outputs on them and, with `latency_size`, a square
    image to time.
    """

    def __init__(self, deblurrer, sizes=DEFAULT_SIZES, threads=2, latency_size=256,
                 latency_repeats=3, base=None, data_config=None):  # fmt: skip
        self.base = base
        self.sizes = [tuple(s) for s in sizes]
        self.threads = threads
        self.latency_repeats = latency_repeats
        self.test_source = images.describe(data_config=data_config)
        if data_config is not None:
            self.test_images = images.domain_images(data_config, self.sizes, seed=0)
        else:
            self.test_images = images.synthetic_images(self.sizes, seed=0)
        self.keras_run = keras_runner(deblurrer)
        self.references = [self.keras_run(image) for image in self.test_images]
        self.timing_image = None
        if latency_size:
            sizes = [(latency_size, latency_size)]
            self.timing_image = images.synthetic_images(sizes, seed=2)[0]

    def latency(self, run):
        """Median ms of `run` on the timing image (None without one)."""
        if self.timing_image is None:
            return None
        return median_latency_ms(lambda: run(self.timing_image), self.latency_repeats)

    def keras_row(self):
        return row("keras", latency_ms=self.latency(self.keras_run))

    def __call__(self, kind, path):
        """Runs one artifact; returns `(row, parity entry)`."""
        from keras_udd.export.savedmodel import directory_size

        if kind == "savedmodel":
            figures, runner = verify_savedmodel(
                path, self.keras_run, self.test_images, self.references
            )
            size = directory_size(path)
        else:
            figures, runner = verify_tflite(
                path, self.test_images, self.references, self.threads
            )
            size = Path(path).stat().st_size
        r = row(kind, path, size, figures, self.latency(runner), self.base)
        return r, parity_entry(kind, figures, self.sizes, self.test_source)


def verifier_from_args(deblurrer, args, domain=None):
    """A `Verifier` configured by the command-line flags, testing on the
    model's own validation images when `domain`, its training DataConfig
    (`images.readable_domain`), is given; files are shown relative to
    `args.out`."""
    check = Verifier(
        deblurrer,
        args.sizes,
        args.threads,
        args.latency_size,
        args.latency_repeats,
        base=args.out,
        data_config=domain,
    )
    print(f"Verifying on {check.test_source} ({len(check.sizes)} sizes)", flush=True)
    return check


def main(argv=None, prog="python -m keras_udd.export.verify"):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Re-verify exported deblurrers against the Keras model.",
    )
    parser.add_argument("--model", required=True, help="the .keras checkpoint")
    parser.add_argument("--out", required=True, help="the folder `export` wrote")
    add_verify_arguments(parser)
    console.add_verbose_flag(parser)
    args = parser.parse_args(argv)
    artifacts = find_artifacts(args.out)
    if not artifacts:
        parser.error(f"no exported artifacts found in {args.out}")
    _, deblurrer = load_model(args.model)
    domain = images.readable_domain(runs.training_config(args.model))
    check_artifacts = verifier_from_args(deblurrer, args, domain)
    rows, parity = [check_artifacts.keras_row()], {}
    for i, (kind, path) in enumerate(artifacts, 1):
        start = time.perf_counter()
        r, parity[kind] = check_artifacts(kind, path)
        rows.append(r)
        progress(i, len(artifacts), r, time.perf_counter() - start)
    print()
    print(format_table(rows, args.latency_size))
    report = {"rows": rows, "parity": parity}
    (Path(args.out) / "verify_report.json").write_text(
        json.dumps(contract.json_safe(report), indent=2) + "\n"
    )
    return 1 if any(r["failures"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
