"""Command line: export a trained UIDGAN's deblurring path and verify it.

    python -m export --model RUN/best.keras --out DIR \\
        [--formats savedmodel tflite] [--quantize none float16 dynamic int8] \\
        [--calibration-dir DIR]

(`python -m export` from a checkout; installed, `keras-udd-export` or
`python -m keras_udd.export`.)

Writes DIR/savedmodel/1/ (+ DIR/savedmodel/contract.json),
DIR/tflite/deblurrer_<variant>.tflite (+ a .json contract beside each) and
DIR/export_report.json; prints a line per artifact as it is written and
verified, then a summary table. Exits 1 if an artifact misses its parity limit.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from keras_udd import console, runs
from keras_udd.export import contract, images, savedmodel, tflite, verify

FORMATS = ("savedmodel", "tflite")


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Export the deblurring path s = G_S(E^c_B(b), mu(E^b(b))) "
        "of a trained UIDGAN as a SavedModel and TFLite models, and verify "
        "each against the Keras model.",
    )
    parser.add_argument("--model", required=True, help="the .keras checkpoint")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument(
        "--quantize",
        nargs="+",
        choices=tflite.QUANTIZATIONS,
        default=list(tflite.QUANTIZATIONS),
        help="TFLite variants: none (float32), float16 (weights), dynamic "
        "(dynamic-range int8), int8 (full integer, calibrated)",
    )
    parser.add_argument(
        "--calibration-dir",
        help="images for int8 calibration (random crops); default: the "
        "model's own validation images when its training config is known (the "
        "config.json of its run folder, or a shipped model's) and they can be "
        "read here, else synthetic",
    )
    parser.add_argument("--calibration-samples", type=int, default=32)
    parser.add_argument(
        "--calibration-size", type=int, default=128, help="crop side in pixels"
    )
    verify.add_verify_arguments(parser)
    console.add_verbose_flag(parser)
    return parser.parse_args(argv)


def write_artifacts(deblurrer, args, domain=None):
    """Yields `(kind, path)` as each artifact is written; full int8 is
    calibrated on `--calibration-dir`, else on the validation images of
    `domain` (the model's training DataConfig, `images.readable_domain`)
    when given, else on synthetic images."""
    if "savedmodel" in args.formats:
        yield "savedmodel", savedmodel.write_savedmodel(deblurrer, args.out)
    quantizations = args.quantize if "tflite" in args.formats else []
    if not quantizations:
        return
    calibration = None
    if "int8" in quantizations:
        origin = dict(directory=args.calibration_dir, data_config=domain)
        described = images.describe(**origin)
        print(f"int8 calibration: {args.calibration_samples} crops of {described}")
        calibration = images.calibration_images(
            count=args.calibration_samples, size=args.calibration_size, seed=1,
            **origin,
        )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        source = tflite.write_source_savedmodel(deblurrer, Path(tmp) / "source")
        for quantization in quantizations:
            yield (
                quantization,
                tflite.write_tflite(
                    deblurrer, args.out, quantization, source, calibration
                ),
            )


def write_contract(kind, path, config, parity):
    if kind == "savedmodel":
        document = contract.savedmodel_contract(config, parity)
        return contract.write_contract(path.parent / "contract.json", document)
    details = verify.tflite_io_details(path)
    ops = tflite.op_counts(path)
    document = contract.tflite_contract(details, kind, path.name, config, parity, ops)
    return contract.write_contract(path.with_suffix(".json"), document)


def main(argv=None, prog=None):
    """Runs the CLI; returns the exit status. `prog`: the name in --help
    (default: the script's name, e.g. keras-udd-export)."""
    args = parse_args(argv, prog)
    out = Path(args.out)
    started = time.perf_counter()
    model, deblurrer = verify.load_model(args.model)
    out.mkdir(parents=True, exist_ok=True)
    config = model.get_config()
    total = ("savedmodel" in args.formats) + (
        len(args.quantize) if "tflite" in args.formats else 0
    )
    print(
        f"Exporting {args.model} ({deblurrer.count_params():,} deblurring "
        f"parameters): {total} artifact(s) -> {out}",
        flush=True,
    )
    domain = images.readable_domain(runs.training_config(args.model))
    check = verify.verifier_from_args(deblurrer, args, domain)
    rows, parity = [check.keras_row()], {}
    step_start = time.perf_counter()
    for i, (kind, path) in enumerate(write_artifacts(deblurrer, args, domain), 1):
        r, parity[kind] = check(kind, path)
        r["contract"] = str(write_contract(kind, path, config, parity[kind]))
        rows.append(r)
        verify.progress(i, total, r, time.perf_counter() - step_start)
        step_start = time.perf_counter()
    print()
    print(verify.format_table(rows, args.latency_size))
    report = {
        "model": str(args.model),
        "model_config": config,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
        "parity": parity,
    }
    (out / "export_report.json").write_text(
        json.dumps(contract.json_safe(report), indent=2) + "\n"
    )
    failed = [r["name"] for r in rows if r["failures"]]
    if failed:
        print(f"\nParity check failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
