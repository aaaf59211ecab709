"""Export parity: how far each exported artifact is from the Keras model.

Exports a model with `python -m export` (every format and quantization, into
a temporary folder that is deleted; no timing) and writes, per artifact, the
worst max abs error and PSNR vs the Keras deblurrer over the verifier's test
sizes (32x32, 37x53, 64x48), per size, and what the XNNPACK delegate takes
of each TFLite model (partitions, delegated ops of all ops).

    python bench/export_parity.py                # default UIDGAN(), random weights
    python bench/export_parity.py --model text   # the shipped text model
    python bench/export_parity.py --model RUN/best.keras [--out PATH]

JSON: bench/results/export_parity.json (random default model, seed 0) or
export_parity_<model name>.json. The figures are deterministic for a model
on one machine (no timing).
"""

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import describe  # noqa: E402  (bench/machine.py)

RESULTS = ROOT / "bench" / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a .keras file or a shipped model's name (default: random)"
    )
    parser.add_argument("--out", help="JSON path (default: see above)")
    args = parser.parse_args(argv)
    if args.out is None:
        name = "" if args.model is None else "_" + Path(args.model).stem
        args.out = str(RESULTS / f"export_parity{name}.json")
    return args


def random_default_model(path):
    """Saves the reference architecture with random weights (seed 0)."""
    import keras

    from keras_udd import UIDGAN

    keras.utils.set_random_seed(0)
    UIDGAN(vgg_weights=None).deblurrer.save(path)
    return str(path)


def summary(report):
    """The parity figures of an export_report.json."""
    rows = {}
    for row in report["rows"][1:]:  # The first is the Keras reference.
        parity = report["parity"][row["kind"]]
        entry = {
            "max_abs_error": row["max_abs_error"],
            "psnr_db": row["psnr_db"],
            "per_size": parity["per_size"],
            "test_images": parity["test_images"],
        }
        if "xnnpack" in parity:
            entry["xnnpack"] = parity["xnnpack"]
        rows[row["name"]] = entry
    return rows


def main(argv=None):
    args = parse_args(argv)
    from keras_udd.export.cli import main as export_main

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_default_model(Path(tmp) / "default.keras")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = export_main(
                [
                    "--model",
                    model,
                    "--out",
                    str(Path(tmp) / "out"),
                    "--latency-size",
                    "0",
                ]
            )
        print(printed.getvalue())
        report = json.loads((Path(tmp) / "out" / "export_report.json").read_text())
    result = {
        "machine": describe(),
        "model": args.model or "UIDGAN(vgg_weights=None), random weights, seed 0",
        "command": "python -m export --model MODEL --out DIR --latency-size 0",
        "exit_status": status,
        "artifacts": summary(report),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["artifacts"], indent=2)[:3000])
    print(f"wrote {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
