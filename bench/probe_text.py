"""Short training probes of the text recipe, compared at equal step counts.

    python bench/probe_text.py NAME [--steps 4000 --every 500] -- [train.py flags]
    python bench/probe_text.py --table [NAME ...]   # the recorded probes
    python bench/probe_text.py NAME --speed 40 --threads 2 -- [flags]  # s/step

A probe is `train.py --preset text-small` plus the flags after `--`, for
`--steps` iterations, validated every `--every` iterations on `--val-images`
whole validation pages (PSNR, SSIM, the blurred input's, and the diagnostic
sharp -> E^c_S -> G_S PSNR). Its curve is written to
`bench/results/probes/NAME.json` with the flags, the CPU and the minutes it
took; `--table` prints the recorded curves as the Markdown table of
docs/experiments.md. Probes run with `--threads` TensorFlow threads (1 by
default, so two probes can run side by side: compare steps, not minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.learn_text import machine, portable, thread_env  # noqa: E402
from keras_udd import runs  # noqa: E402

PROBES = ROOT / "bench" / "results" / "probes"
COLUMNS = ("val_psnr", "val_ssim", "val_psnr_sharp_recon")


def parse_args(argv):
    if "--" in argv:
        cut = argv.index("--")
        argv, flags = argv[:cut], argv[cut + 1 :]
    else:
        flags = []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="probe name (one to train)")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--val-images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", default=str(ROOT / "runs" / "probes"))
    parser.add_argument("--table", action="store_true", help="print the table")
    parser.add_argument(
        "--speed",
        type=int,
        default=0,
        metavar="STEPS",
        help="only time STEPS training steps of the preset with the flags "
        "(bench.learn_text.step_time) into probes/speed_NAME.json",
    )
    parser.add_argument(
        "--supervised",
        action="store_true",
        help="train the supervised ceiling instead (the deblurring networks, "
        "paired L1) with the preset and the flags after --",
    )
    args = parser.parse_args(argv)
    args.flags = flags
    if not args.table and len(args.names) != 1:
        parser.error("name exactly one probe to train (or pass --table)")
    return args


def preset_with_flags(flags):
    """The preset's Config with train.py flags written over it."""
    from keras_udd import cli
    from keras_udd.presets import preset_config

    parser = argparse.ArgumentParser(prog="probe flags")
    base = preset_config("text-small")
    owners = cli.add_config_flags(parser, defaults=base)
    return cli.config_from_args(parser.parse_args(flags), owners, base)


def speed(args) -> dict:
    from bench.learn_text import step_time

    set_threads(args.threads)
    result = {
        "name": args.names[0],
        "flags": args.flags,
        "threads": args.threads,
        "machine": machine(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        **step_time(preset_with_flags(args.flags), args.speed),
    }
    PROBES.mkdir(parents=True, exist_ok=True)
    path = PROBES / f"speed_{args.names[0]}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(result)
    return result


def set_threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def train_supervised(args) -> dict:
    """The supervised ceiling of the preset with the flags: its curve."""
    from bench.learn_text import train_supervised

    set_threads(args.threads)
    cfg = preset_with_flags(args.flags)
    cfg.train.steps_per_epoch = args.every
    cfg.data.val_images = args.val_images
    out = Path(args.output_dir) / args.names[0]
    out.mkdir(parents=True, exist_ok=True)
    result = train_supervised(cfg, 0, out, steps=args.steps)
    return [
        {"iteration": c["steps"], "val_psnr": c["psnr"], "val_ssim": c["ssim"],
         "val_psnr_blurred": c["psnr_blurred"], "val_ssim_blurred": c["ssim_blurred"]}
        for c in result["curve"]
    ]  # fmt: skip


def train(args) -> dict:
    name = args.names[0]
    if args.supervised:
        start = time.monotonic()
        curve = train_supervised(args)
        return record(args, curve, ["(supervised)"], (time.monotonic() - start) / 60)
    out = Path(args.output_dir) / name
    command = [
        sys.executable, str(ROOT / "train.py"), "--preset", "text-small",
        "--epochs", str(args.steps // args.every),
        "--steps-per-epoch", str(args.every),
        "--val-images", str(args.val_images), "--val-ocr-images", "0",
        "--time-limit-minutes", "0", "--output-dir", str(out), "--overwrite",
        *args.flags,
    ]  # fmt: skip
    print(" ".join(command), flush=True)
    start = time.monotonic()
    try:
        code = subprocess.call(command, cwd=ROOT, env=thread_env(args.threads))
    except KeyboardInterrupt:  # Ctrl-C: the epochs validated so far count.
        code = "interrupted"
    minutes = (time.monotonic() - start) / 60
    rows = runs.read_csv_log(out / runs.CSV_LOG)
    if code and not rows:
        raise SystemExit(f"train.py stopped ({code}) before its first validation")
    if code:
        print(f"train.py stopped ({code}): recording {len(rows)} validations")
    curve = [
        {
            "iteration": (int(r["epoch"]) + 1) * args.every,
            **{k: r[k] for k in r if k.startswith("val_")},
        }
        for r in rows
    ]
    return record(args, curve, command, minutes)


def record(args, curve, command, minutes: float) -> dict:
    """Writes and returns the probe's record."""
    name = args.names[0]
    result = {
        "name": name,
        "flags": (["--supervised"] if args.supervised else []) + args.flags,
        "command": [portable(arg) for arg in command],
        "threads": args.threads,
        "minutes": round(minutes, 1),
        "machine": machine(),
        "curve": curve,
    }
    PROBES.mkdir(parents=True, exist_ok=True)
    (PROBES / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(names) -> str:
    files = [PROBES / f"{n}.json" for n in names] or sorted(PROBES.glob("*.json"))
    records = [json.loads(f.read_text()) for f in files]
    # The folder also holds speed records and diagnostics: only curves count.
    records = [r for r in records if "curve" in r]
    steps = sorted({c["iteration"] for r in records for c in r["curve"]})
    lines = [
        "| probe | flags | " + " | ".join(f"{s:,}" for s in steps) + " | blurred |",
        "|---|---|" + "---:|" * (len(steps) + 1),
    ]
    for r in records:
        by_step = {c["iteration"]: c for c in r["curve"]}
        cells = [
            f"{by_step[s]['val_psnr']:.2f} / {by_step[s]['val_ssim']:.3f} / "
            f"{by_step[s].get('val_psnr_sharp_recon', float('nan')):.1f}"
            if s in by_step
            else ""
            for s in steps
        ]
        blurred = r["curve"][0]
        base = f"{blurred['val_psnr_blurred']:.2f} / {blurred['val_ssim_blurred']:.3f}"
        flags = " ".join(r["flags"]) or "(preset)"
        row = f"| {r['name']} | `{flags}` | " + " | ".join(cells)
        lines.append(row + f" | {base} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.table:
        print(table(args.names))
        return 0
    if args.speed:
        speed(args)
        return 0
    result = train(args)
    print(table([result["name"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
