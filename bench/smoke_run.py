"""Benchmark: the README's smoke run of train.py, timed end to end.

Runs `python train.py` with the README's flags (the reference-size model, 2
epochs x 10 steps of 64-px crops of the synthetic text domain, random VGG19,
validation after each epoch) in a new process writing to a temporary run
folder (deleted), and writes the wall time from start to exit (imports, data,
tracing, training, validation, checkpoints), the size of each checkpoint and
the machine to JSON.

    python bench/smoke_run.py [--out bench/results/smoke_run.json] [-- FLAGS]

FLAGS are appended to the README's (e.g. `-- --epochs 1 --steps-per-epoch 1`
for a quick check of this script; the README's figure is without them).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
README_FLAGS = [
    "--domain", "text", "--vgg-weights", "none", "--epochs", "2",
    "--steps-per-epoch", "10", "--crop-size", "64", "--load-size", "72",
    "--no-jit-compile",
]  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench/results/smoke_run.json"))
    parser.add_argument("extra", nargs="*", help="flags appended (after --)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "text-demo"
        command = [sys.executable, str(ROOT / "train.py"), *README_FLAGS,
                   "--output-dir", str(run), *args.extra]  # fmt: skip
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        before = describe()
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env)
        seconds = time.perf_counter() - start
        sizes = {
            p.name: p.stat().st_size for p in sorted(run.glob("*.keras")) if p.is_file()
        }
    result = {
        "machine": before,
        "command": [
            "python",
            "train.py",
            *README_FLAGS,
            "--output-dir",
            "runs/text-demo",
            *args.extra,
        ],  # fmt: skip
        "exit_status": done.returncode,
        "wall_s": round(seconds, 1),
        "checkpoint_bytes": sizes,
        "load_average_1min_after": describe()["load_average_1min"],
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
