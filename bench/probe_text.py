"""Short training probes of the text recipe, compared at equal step counts.

    python bench/probe_text.py NAME [--steps 4000 --every 500] -- [train.py flags]
    python bench/probe_text.py --table [NAME ...]   # the recorded probes

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

from bench.learn_text import machine  # noqa: E402
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
    args = parser.parse_args(argv)
    args.flags = flags
    if not args.table and len(args.names) != 1:
        parser.error("name exactly one probe to train (or pass --table)")
    return args


def train(args) -> dict:
    name = args.names[0]
    out = Path(args.output_dir) / name
    command = [
        sys.executable, str(ROOT / "train.py"), "--preset", "text-small",
        "--epochs", str(args.steps // args.every),
        "--steps-per-epoch", str(args.every),
        "--val-images", str(args.val_images), "--val-ocr-images", "0",
        "--time-limit-minutes", "0", "--output-dir", str(out), "--overwrite",
        *args.flags,
    ]  # fmt: skip
    env = {
        **os.environ,
        "TF_NUM_INTRAOP_THREADS": str(args.threads),
        "TF_NUM_INTEROP_THREADS": str(args.threads),
    }
    print(" ".join(command), flush=True)
    start = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)
    minutes = (time.monotonic() - start) / 60
    if code:
        raise SystemExit(f"train.py failed with exit code {code}")
    rows = runs.read_csv_log(out / runs.CSV_LOG)
    curve = [
        {
            "iteration": (int(r["epoch"]) + 1) * args.every,
            **{k: r[k] for k in r if k.startswith("val_")},
        }
        for r in rows
    ]
    record = {
        "name": name,
        "flags": args.flags,
        "command": command,
        "threads": args.threads,
        "minutes": round(minutes, 1),
        "machine": machine(),
        "curve": curve,
    }
    PROBES.mkdir(parents=True, exist_ok=True)
    (PROBES / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def table(names) -> str:
    files = [PROBES / f"{n}.json" for n in names] or sorted(PROBES.glob("*.json"))
    records = [json.loads(f.read_text()) for f in files]
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
    record = train(args)
    print(table([record["name"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
