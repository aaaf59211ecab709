"""Benchmark: seconds per training iteration of the default UIDGAN on this CPU.

Times the compiled D-only step and the D + E/G step separately (batch 2,
128x128 by default, random VGG19 weights), then reports the mean over the
D:G schedule, images/second and the process's peak resident memory. Prints
a summary and writes JSON (bench/results/train_step.json by default).

    python bench/train_step.py [--steps 8] [--warmup 2] [--jit] [--batch-size 2]

The defaults are those of the figures in the README and
bench/results/train_step.json (8 timed steps after 2 warm-up steps, no XLA).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_udd import UIDGAN


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="XLA-compile the steps (default: off, as train.py and the README)",
    )
    parser.add_argument(
        "--dtype-policy", default="float32", help="e.g. mixed_bfloat16 (AVX512-BF16)"
    )
    parser.add_argument("--out", default="bench/results/train_step.json")
    return parser.parse_args()


def main():
    args = parse_args()
    rng = np.random.default_rng(0)
    shape = (args.batch_size, args.size, args.size, 3)
    batch = tuple(rng.uniform(-1, 1, shape).astype("float32") for _ in range(2))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()

    keras.config.set_dtype_policy(args.dtype_policy)
    model = UIDGAN(vgg_weights=None)
    model.compile(jit_compile=args.jit)
    train_function = model.make_train_function()
    iterator = iter(dataset)
    times = {True: [], False: []}
    compile_start = time.perf_counter()
    for step in range(args.warmup + args.steps):
        both = model._generators_update_next()
        start = time.perf_counter()
        logs = train_function(iterator)
        float(logs["d_loss"])  # Wait for the step to finish.
        if step >= args.warmup:
            times[both].append(time.perf_counter() - start)
        elif step == args.warmup - 1:
            warmup_s = time.perf_counter() - compile_start
    k = model.config.d_steps_per_g_step
    both_s = statistics.median(times[True])
    d_only_s = statistics.median(times[False])
    schedule_s = (both_s + (k - 1) * d_only_s) / k
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "tensorflow": tf.__version__,
        "batch_size": args.batch_size,
        "image_size": args.size,
        "jit_compile": args.jit,
        "dtype_policy": args.dtype_policy,
        "d_steps_per_g_step": k,
        "timed_steps": args.steps,
        "warmup_steps": args.warmup,
        "warmup_and_compile_s": round(warmup_s, 1),
        "s_per_iteration_d_and_eg": round(both_s, 3),
        "s_per_iteration_d_only": round(d_only_s, 3),
        "s_per_iteration_schedule_mean": round(schedule_s, 3),
        "images_per_s": round(args.batch_size / schedule_s, 3),
        "peak_rss_gib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3
        ),
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
