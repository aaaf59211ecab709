"""Benchmark: seconds per training iteration of a UIDGAN on this CPU.

Times the compiled D-only step and the D + E/G step separately (default: the
reference architecture, batch 2, 128x128, random VGG19 weights; `--preset
NAME` takes a preset's model, batch and crop size and XLA setting), then
reports the median of each, the mean over the D:G schedule, images/second
and the process's peak resident memory. `--steps N` timed steps run in the
model's D:G order after `--warmup` untimed ones: with the default 2:1, N / 2
of each kind (8 -> 4 D-only and 4 D + E/G).

`--flops` counts instead the floating-point operations of one step of each
kind (TensorFlow's profiler on the traced step, forward and backward: conv,
matmul and elementwise ops); nothing is timed.

    python bench/train_step.py [--steps 8] [--warmup 2] [--batch-size 2]
        [--preset text-small] [--jit | --no-jit] [--flops] [--out PATH]

Prints a summary and writes JSON, by default bench/results/train_step.json,
with `_<preset>`, `_batch<N>` (a batch other than the config's), `_xla`,
`_<dtype policy>` or `_flops` added to the name for other settings.
"""

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import describe  # noqa: E402  (bench/machine.py)

from keras_udd import UIDGAN  # noqa: E402
from keras_udd.config import Config  # noqa: E402
from keras_udd.presets import preset_config  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", help="a preset's model, batch, crop size, XLA")
    parser.add_argument("--batch-size", type=int, help="default: the config's (2)")
    parser.add_argument("--size", type=int, help="default: the config's crop (128)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA-compile the steps (default: the config's, off without a preset)",
    )
    parser.add_argument(
        "--dtype-policy", default="float32", help="e.g. mixed_bfloat16 (AVX512-BF16)"
    )
    parser.add_argument(
        "--flops", action="store_true", help="count FLOPs per step instead of timing"
    )
    parser.add_argument("--out", help="JSON path (default: see above)")
    args = parser.parse_args(argv)
    cfg = preset_config(args.preset) if args.preset else Config()
    cfg.model.vgg_weights = None  # Random VGG19: the same work, no download.
    args.config = cfg
    args.batch_size = args.batch_size or cfg.data.batch_size
    args.size = args.size or cfg.data.crop_size
    args.jit = cfg.train.jit_compile if args.jit is None else args.jit
    k = cfg.model.d_steps_per_g_step
    if not args.flops and args.steps < k:
        parser.error(f"--steps must be >= {k} (the D:G cycle) to time both kinds")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.out is None:
        suffix = f"_{args.preset}" if args.preset else ""
        if args.batch_size != cfg.data.batch_size:
            suffix += f"_batch{args.batch_size}"
        suffix += "_xla" if args.jit and not args.flops else ""
        if args.dtype_policy != "float32":
            suffix += f"_{args.dtype_policy}"
        suffix += "_flops" if args.flops else ""
        args.out = str(RESULTS / f"train_step{suffix}.json")
    return args


def count_flops(model, shape):
    """GFLOP of one D-only and one D + E/G step on [N, H, W, 3] batches."""
    spec = tf.TensorSpec(shape, tf.float32)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    out = {}
    for name, both in (("d_only", False), ("d_and_eg", True)):
        step = tf.function(lambda s, b, both=both: model.train_step((s, b), both))
        graph = step.get_concrete_function(spec, spec).graph
        flops = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
        out[f"gflop_{name}"] = round(flops / 1e9, 1)
    k = model.config.d_steps_per_g_step
    mean = (out["gflop_d_and_eg"] + (k - 1) * out["gflop_d_only"]) / k
    out["gflop_schedule_mean"] = round(mean, 1)
    return out


def time_steps(model, batch, steps, warmup):
    """(median s of D + E/G steps, of D-only steps or None, warm-up s or None,
    {kind: timed count})."""
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    train_function = model.make_train_function()
    iterator = iter(dataset)
    times = {True: [], False: []}
    start = time.perf_counter()
    warmup_s = None
    for step in range(warmup + steps):
        both = model._generators_update_next()
        begin = time.perf_counter()
        logs = train_function(iterator)
        float(logs["d_loss"])  # Wait for the step to finish.
        if step >= warmup:
            times[both].append(time.perf_counter() - begin)
        elif step == warmup - 1:
            warmup_s = time.perf_counter() - start
    d_only = statistics.median(times[False]) if times[False] else None
    counts = {"d_and_eg": len(times[True]), "d_only": len(times[False])}
    return statistics.median(times[True]), d_only, warmup_s, counts


def main(argv=None):
    args = parse_args(argv)
    cfg = args.config
    shape = (args.batch_size, args.size, args.size, 3)
    keras.config.set_dtype_policy(args.dtype_policy)
    model = UIDGAN(cfg.model)
    model.compile(jit_compile=args.jit)
    result = {
        "machine": describe(),
        "tensorflow": tf.__version__,
        "preset": args.preset,
        "batch_size": args.batch_size,
        "image_size": args.size,
        "dtype_policy": args.dtype_policy,
        "d_steps_per_g_step": cfg.model.d_steps_per_g_step,
    }
    if args.flops:
        result.update(count_flops(model, shape))
    else:
        rng = np.random.default_rng(0)
        batch = tuple(rng.uniform(-1, 1, shape).astype("float32") for _ in range(2))
        both_s, d_only_s, warmup_s, counts = time_steps(
            model, batch, args.steps, args.warmup
        )
        k = cfg.model.d_steps_per_g_step
        schedule_s = (both_s + (k - 1) * (d_only_s or 0.0)) / k
        result.update(
            {
                "jit_compile": args.jit,
                "warmup_steps": args.warmup,
                "timed_steps": counts,
                "warmup_and_compile_s": None
                if warmup_s is None
                else round(warmup_s, 1),
                "s_per_iteration_d_and_eg": round(both_s, 3),
                "s_per_iteration_d_only": None
                if d_only_s is None
                else round(d_only_s, 3),
                "s_per_iteration_schedule_mean": round(schedule_s, 3),
                "images_per_s": round(args.batch_size / schedule_s, 3),
                "peak_rss_gib": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3
                ),
            }
        )
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
