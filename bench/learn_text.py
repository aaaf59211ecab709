"""Trains the shipped text deblurrer and proves it: python bench/learn_text.py

    python bench/learn_text.py                      # the full recipe (see README)
    python bench/learn_text.py --minutes 3 --epochs 2 --output-dir /tmp/lt  # smoke
    python bench/learn_text.py --report-only --ship # re-score a run, ship it

1. Trains `train.py --preset text-small` (the recipe of the pretrained `text`
   model) in a subprocess into --output-dir; its log.csv holds, per epoch,
   the validation PSNR/SSIM of the output and of the blurred input, the OCR
   character error rates (val_cer, val_cer_blurred) and the diagnostic
   psnr_sharp_recon (sharp -> E^c_S -> G_S).
2. Scores best.keras (`keras_udd.evaluate`, whole pages) on the held-out TEST
   split and on the UNSEEN-FONTS split: PSNR, SSIM and OCR CER of the output
   and of the blurred input, by blur family and size, and the sharp pages
   through the model (identity); the model shipped as `text` before this
   run is scored the same way, as the baseline a new model must beat.
3. With --supervised-minutes M: the supervised ceiling, i.e. the same
   deblurring networks (E^c_B, E^b, G_S of the preset's size) trained with
   paired L1 on crops of the same sharp pages blurred the same way (Adam,
   --supervised-lr), for M minutes, then scored the same way.
4. Writes --results.json (config, command, machine, curves, scores),
   --results.png (validation PSNR/SSIM/CER against the blurred baseline,
   sharp-reconstruction PSNR, losses, test PSNR by blur family) and
   --results_pages.png (a test page of each blur family: blurred | deblurred
   | sharp), and prints the README's tables.
5. With --ship, if best.keras passes the ship test (on the test split it
   beats the blurred input and the previous `text` model in PSNR, SSIM and
   OCR CER, a sharp page comes back within IDENTITY_DB of itself, and the
   nearly sharp pages come back no lower in PSNR than they went in):
   writes its deblurring path to keras_udd/pretrained/text.keras, text.json
   (how it was trained, what it scores) and the README's figures; otherwise
   it names the failed criteria, ships nothing and exits with status 1.

`--threads N` limits TensorFlow to N threads in every part (training runs in
a subprocess that gets TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_udd import runs  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PRESET = "text-small"
SPLITS = ("test", "unseen")
PRETRAINED = ROOT / "keras_udd" / "pretrained"
FIGURES = ROOT / "docs" / "images"
# The supervised ceiling's learning rate: the reference's; at the preset's
# 5e-4 its bfloat16 training collapsed twice (docs/experiments.md, F).
SUPERVISED_LR = 2e-4
IDENTITY_DB = 30.0  # Do no harm: a sharp page comes back this close (PSNR).
METRICS = {  # Test-split metric -> "a is better than b".
    "psnr": lambda a, b: a > b,
    "ssim": lambda a, b: a > b,
    "cer": lambda a, b: a < b,
}
LOSS_COLUMNS = (
    "g_loss", "adversarial", "cycle", "self_recon", "perceptual", "kl",
    "random_adversarial", "latent", "random_perceptual",
)  # fmt: skip


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, help="override the preset's time limit"
    )
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument(
        "--steps-per-epoch", type=int, help="override the preset's steps per epoch"
    )
    parser.add_argument(
        "--supervised-minutes",
        type=float,
        default=0.0,
        help="also train the supervised ceiling this long (0: skip)",
    )
    parser.add_argument(
        "--supervised-lr",
        type=float,
        default=SUPERVISED_LR,
        help="Adam learning rate of the supervised ceiling",
    )
    parser.add_argument(
        "--supervised-only",
        action="store_true",
        help="only train and score the supervised ceiling (--supervised-minutes, "
        "the preset's config), into RESULTS_supervised.json, which the full "
        "report then includes",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="TensorFlow threads (0: all cores)"
    )
    parser.add_argument("--output-dir", default=str(ROOT / "runs" / "learn-text"))
    parser.add_argument("--results", default=str(RESULTS / "learn_text"))
    parser.add_argument(
        "--report-only", action="store_true", help="re-read --output-dir, no training"
    )
    parser.add_argument(
        "--ship",
        action="store_true",
        help="write best.keras's deblurrer into keras_udd/pretrained/",
    )
    return parser.parse_args(argv)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def machine() -> dict:
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def portable(arg: str) -> str:
    """A command-line argument as the records show it: the interpreter as
    `python`, a path inside the repository relative to it."""
    if arg == sys.executable:
        return "python"
    path = Path(arg)
    if path.is_absolute() and path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    return arg


def train_command(args) -> list[str]:
    command = [
        sys.executable, str(ROOT / "train.py"), "--preset", PRESET,
        "--output-dir", args.output_dir, "--overwrite",
    ]  # fmt: skip
    for flag, value in (
        ("--time-limit-minutes", args.minutes),
        ("--epochs", args.epochs),
        ("--steps-per-epoch", args.steps_per_epoch),
    ):
        if value is not None:
            command += [flag, str(value)]
    return command


def thread_env(threads: int) -> dict:
    """The environment that limits TensorFlow to `threads` (0: unchanged)."""
    if not threads:
        return dict(os.environ)
    value = str(threads)
    return {
        **os.environ,
        "TF_NUM_INTRAOP_THREADS": value,
        "TF_NUM_INTEROP_THREADS": value,
    }


def score(fn, data_cfg) -> dict:
    """`keras_udd.evaluate` of a deblur function ([0, 1] images) on the test
    and the unseen-fonts splits (whole pages, by blur family, OCR, identity):
    `{"test": scores, "unseen": scores}`."""
    from keras_udd.data import make_test_examples
    from keras_udd.data.pipeline import kernel_labels
    from keras_udd.evaluate import evaluate

    return {
        split: evaluate(
            fn,
            make_test_examples(data_cfg, split=split),
            ocr=True,
            identity=True,
            labels=kernel_labels(data_cfg, split),
        )
        for split in SPLITS
    }


def train_supervised(
    cfg, minutes: float, output: Path, steps: int = 0, learning_rate: float = 0.0
) -> dict:
    """The supervised ceiling: `Deblurrer` networks of `cfg.model`'s size,
    paired L1 (Adam with `learning_rate`, or the preset's when 0, and the
    preset's betas), for `minutes` (or `steps`, when given; it stops early
    on a non-finite loss), validated every
    `cfg.train.steps_per_epoch` steps like the GAN (whole validation pages,
    `keras_udd.evaluate`), in the GAN's --mixed-precision (the global policy
    is restored afterwards). The model saved is the best-validated one, as
    the GAN's best.keras."""
    import keras

    from keras_udd.distribute import set_precision

    policy = keras.mixed_precision.dtype_policy()
    set_precision(cfg.train.mixed_precision)
    try:
        return _train_supervised(cfg, minutes, output, steps, learning_rate)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)


def supervised_networks(cfg):
    """The deblurring networks (E^c_B, E^b, G_S) of `cfg.model`'s size."""
    from keras_udd.model import UIDGAN

    return UIDGAN(cfg.model, perceptual_weight=0.0, random_branch=False).deblurrer


def _train_supervised(cfg, minutes, output, steps, learning_rate):
    import keras

    from keras_udd.data import make_paired_train_dataset, make_test_dataset
    from keras_udd.deblur import keras_function
    from keras_udd.evaluate import evaluate

    keras.utils.set_random_seed(cfg.train.seed)
    m = cfg.model
    deblurrer = supervised_networks(cfg)
    deblurrer.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate or m.learning_rate, m.beta_1, m.beta_2
        ),
        loss="mean_absolute_error",
        jit_compile=cfg.train.jit_compile,
    )
    val = make_test_dataset(cfg.data, split="val")
    fn = keras_function(deblurrer)
    curve, start = [], time.monotonic()
    chunk = max(cfg.train.steps_per_epoch, 1)
    weights = output / "supervised.weights.h5"
    best = {"psnr": -math.inf, "steps": 0}

    class Validation(keras.callbacks.Callback):
        """Scores every chunk, keeps the best-scoring weights in `weights`."""

        def on_epoch_end(self, epoch, logs=None):
            scores = evaluate(fn, val, progress=False)
            scores.pop("per_image")
            elapsed = (time.monotonic() - start) / 60
            loss = float((logs or {}).get("loss", math.nan))
            scores.update(
                steps=(epoch + 1) * chunk, minutes=round(elapsed, 2), loss=loss
            )
            curve.append(scores)
            print(f"supervised: {scores}", flush=True)
            if scores["psnr"] > best["psnr"]:  # Never true for NaN.
                best.update(psnr=scores["psnr"], steps=scores["steps"])
                self.model.save_weights(weights)
            if (steps and scores["steps"] >= steps) or (
                not steps and elapsed >= minutes
            ):
                self.model.stop_training = True

    deblurrer.fit(
        make_paired_train_dataset(cfg.data),
        steps_per_epoch=chunk,
        epochs=10**6,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN(), Validation()],
    )
    if not best["steps"]:
        raise SystemExit("supervised ceiling: no validation with a finite score")
    deblurrer.load_weights(weights)
    deblurrer.save(output / "supervised.keras")  # Loads under any policy.
    return {
        "curve": curve,
        "steps": curve[-1]["steps"],
        "best": best,  # The saved model: the best validation PSNR.
        "stopped_on_nan": not math.isfinite(curve[-1]["loss"]),
        "learning_rate": float(deblurrer.optimizer.learning_rate),
        "model": str(output / "supervised.keras"),
        "minutes": minutes,
    }


def step_time(cfg, steps: int) -> dict:
    """Seconds per training step of `cfg` (its model, precision and XLA
    setting, one device) on one fixed batch, without a data pipeline: what
    training consumes. `{"steps", "s_per_step", "pairs_per_s"}`."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_udd.distribute import set_precision
    from keras_udd.model import UIDGAN

    keras.utils.set_random_seed(0)
    set_precision(cfg.train.mixed_precision)
    try:
        model = UIDGAN(cfg.model)
        model.compile(jit_compile=cfg.train.jit_compile)
        shape = (cfg.data.batch_size, cfg.data.crop_size, cfg.data.crop_size, 3)
        rng = np.random.default_rng(0)
        batch = tuple(
            tf.constant(rng.uniform(-1, 1, shape).astype("float32")) for _ in range(2)
        )
        ds = tf.data.Dataset.from_tensors(batch).repeat()
        model.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)  # Trace, compile.
        start = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        elapsed = time.perf_counter() - start
    finally:
        set_precision("none")
    return {
        "steps": steps,
        "s_per_step": round(elapsed / steps, 4),
        "pairs_per_s": round(steps * cfg.data.batch_size / elapsed, 2),
    }


def summary(scores: dict) -> dict:
    """Split scores without their per-image records."""
    return {k: v for k, v in scores.items() if k != "per_image"}


def ship_failures(report: dict) -> list[str]:
    """The ship test's failed criteria (empty: ship), on the test split."""
    test = report["scores"]["test"]
    others = [("the blurred input", {k: test[k + "_blurred"] for k in METRICS})]
    if "previous" in report:
        others.append(("the previous text model", report["previous"]["test"]))
    failures = [
        f"{name} {test[name]:.3f} not better than {label}'s {other[name]:.3f}"
        for label, other in others
        for name, better in METRICS.items()
        if not better(test[name], other[name])
    ]
    if test["psnr_identity"] < IDENTITY_DB:
        failures.append(
            f"identity PSNR {test['psnr_identity']:.2f} dB below {IDENTITY_DB:g}"
        )
    nearly_sharp = test["families"]["sharp"]
    if nearly_sharp["psnr"] < nearly_sharp["psnr_blurred"]:
        failures.append(
            f"nearly sharp pages {nearly_sharp['psnr']:.2f} dB, worse than "
            f"their input's {nearly_sharp['psnr_blurred']:.2f}"
        )
    return failures


def best_deblurrer(run_dir: Path):
    """The deblurring path (a `Deblurrer`, [-1, 1] images) of best.keras."""
    from keras_udd.export import verify

    return verify.load_model(run_dir / runs.BEST)[1]


def ship(deblurrer, report: dict) -> None:
    """best.keras's deblurring path -> keras_udd/pretrained/text.keras (+ JSON)."""
    from keras_udd.config import Config

    PRETRAINED.mkdir(exist_ok=True)
    target = PRETRAINED / "text.keras"
    deblurrer.save(target)
    info = {
        "name": "text",
        "trained_with": f"python bench/learn_text.py (train.py --preset {PRESET})",
        "command": report["command"],
        "config": report["config"],
        "machine": report["machine"],
        "train_minutes": report["train_minutes"],
        "iterations": report["iterations"],
        "best_epoch": report["best"]["epoch"],
        "scores": {split: summary(report["scores"][split]) for split in SPLITS},
        "parameters": int(deblurrer.count_params()),
    }
    (PRETRAINED / "text.json").write_text(json.dumps(info, indent=2) + "\n")
    size = target.stat().st_size / 2**20
    print(f"shipped {target} ({size:.1f} MB) and text.json")
    FIGURES.mkdir(parents=True, exist_ok=True)
    data_cfg = Config.from_dict(report["config"]).data
    write_figures(
        deblurrer,
        data_cfg,
        FIGURES / "before_after.png",
        sample_path=FIGURES / "sample_page.png",
    )


def write_figures(deblurrer, data_cfg, path, sample_path=None, width=224):
    """`path`: one test page of each blur family (the largest size of the
    family among the first pages), blurred | deblurred | sharp, each the top
    `width` x `width` px window of the page; `sample_path`: the blurred
    defocus page whole (the README's first command deblurs it)."""
    import numpy as np
    from PIL import Image

    from keras_udd.data import make_test_examples
    from keras_udd.data.pipeline import kernel_labels
    from keras_udd.ocr import signed_to_uint8

    labels = kernel_labels(data_cfg, "test")
    chosen = {}
    for example in make_test_examples(data_cfg, split="test").take(40):
        index = int(example["kernel_index"][0])
        family, value = labels.family[index], float(labels.value[index])
        if family not in chosen or value > chosen[family][0]:
            chosen[family] = (value, example)
    rows = []
    for family, (value, example) in chosen.items():
        b = signed_to_uint8(example["blurred"][0])
        s = signed_to_uint8(example["sharp"][0])
        d = signed_to_uint8(deblurrer(example["blurred"])[0])
        if family == "defocus" and sample_path:
            Image.fromarray(b).save(sample_path)
        gap = np.full((width, 4, 3), 255, np.uint8)
        crops = [x[:width, :width] for x in (b, d, s)]
        rows.append(np.concatenate([crops[0], gap, crops[1], gap, crops[2]], 1))
        print(f"figure row: {family} {value:.1f} px", flush=True)
    rows = [np.pad(r, ((0, 4), (0, 0), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows, 0)).save(path)
    print(f"wrote {path}" + (f" and {sample_path}" if sample_path else ""))


def plot(rows, report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    supervised = report.get("supervised")
    steps = [r["iteration"] for r in rows]
    fig, axes = plt.subplots(1, 5, figsize=(25, 4))
    ax = axes[0]
    ax.plot(steps, [r["val_psnr"] for r in rows], "o-", label="deblurred")
    ax.plot(steps, [r["val_psnr_blurred"] for r in rows], "--", label="blurred input")
    if "val_psnr_sharp_recon" in rows[0]:
        # On its own axis: near 70 dB, it would flatten the curves that matter.
        twin = ax.twinx()
        twin.plot(
            steps,
            [r["val_psnr_sharp_recon"] for r in rows],
            "k:",
            label="sharp -> E^c_S -> G_S (right axis)",
        )
        twin.legend(fontsize=7, loc="lower right")
    if supervised:
        ax.plot(
            [c["steps"] for c in supervised["curve"]],
            [c["psnr"] for c in supervised["curve"]],
            "x-",
            label="supervised L1 (its own steps)",
        )
    ax.set(title="validation PSNR (dB)", xlabel="iteration")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(steps, [r["val_ssim"] for r in rows], "o-", label="deblurred")
    ax.plot(steps, [r["val_ssim_blurred"] for r in rows], "--", label="blurred input")
    ax.set(title="validation SSIM", xlabel="iteration")
    ax.legend(fontsize=7)
    ax = axes[2]
    if "val_cer" in rows[0]:
        ax.plot(steps, [r["val_cer"] for r in rows], "o-", label="deblurred")
        ax.plot(
            steps, [r["val_cer_blurred"] for r in rows], "--", label="blurred input"
        )
    ax.set(title="validation OCR character error rate", xlabel="iteration")
    ax.legend(fontsize=7)
    ax = axes[3]
    for name in LOSS_COLUMNS:
        if name in rows[0]:
            ax.plot(steps, [r[name] for r in rows], label=name)
    ax.plot(steps, [r["d_loss"] for r in rows], "k--", label="d_loss")
    ax.set(title="losses (weighted, epoch means)", xlabel="iteration", yscale="log")
    ax.legend(fontsize=6)
    ax = axes[4]
    families = report["scores"]["test"].get("families", {})
    x = range(len(families))
    for offset, (suffix, label) in enumerate(
        (("_blurred", "blurred"), ("", "deblurred"))
    ):
        ax.bar(
            [i + 0.4 * offset for i in x],
            [f["psnr" + suffix] for f in families.values()],
            width=0.4,
            label=label,
        )
    ax.set_xticks([i + 0.2 for i in x], list(families))
    ax.set(title="test PSNR (dB) by blur family", ylim=(15, None))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tables(report) -> str:
    """The README's tables (Markdown) of a report."""
    lines = [f"CPU: {report['machine']['cpu_model']}", ""]

    def row(label, s, suffix=""):
        cer = s.get("cer" + suffix)
        cer = "" if cer is None else f"{cer:.3f}"
        return (
            f"| {label} | {s['psnr' + suffix]:.2f} | {s['ssim' + suffix]:.3f} | {cer} |"
        )

    head = "| | PSNR (dB) | SSIM | OCR CER |\n|---|---:|---:|---:|"
    for split, name in (("test", "test split"), ("unseen", "unseen fonts")):
        s = report["scores"][split]
        lines += [f"{name} ({s['images']} pages)", "", head]
        lines.append(row("blurred input", s, "_blurred"))
        previous = report.get("previous", {}).get(split)
        if previous:
            lines.append(row("previous shipped `text` model", previous))
        lines.append(row("UID-GAN `text-small` (this run)", s))
        sup = report.get("supervised", {}).get("scores", {}).get(split)
        if sup:
            lines.append(row("supervised ceiling (same networks, paired L1)", sup))
        lines.append(row("this run, sharp page in (identity)", s, "_identity"))
        lines.append("")
    lines += [
        "by blur family (test split): PSNR / CER, blurred -> deblurred",
        "",
        "| family | size | pages | PSNR (dB) | OCR CER |",
        "|---|---|---:|---:|---:|",
    ]
    for family, f in report["scores"]["test"].get("families", {}).items():
        lines.append(
            f"| {family} | all | {f['images']} | {f['psnr_blurred']:.2f} -> "
            f"{f['psnr']:.2f} | {f['cer_blurred']:.3f} -> {f['cer']:.3f} |"
        )
        for b in f.get("bins", []):
            lo, hi = b["range"]
            lines.append(
                f"| | {f['parameter']} {lo:g}-{hi:g} | {b['images']} | "
                f"{b['psnr_blurred']:.2f} -> {b['psnr']:.2f} | "
                f"{b['cer_blurred']:.3f} -> {b['cer']:.3f} |"
            )
    return "\n".join(lines)


def supervised_only(args) -> int:
    """The supervised ceiling alone, for the preset's config."""
    from keras_udd.deblur import load_deblur_function
    from keras_udd.presets import preset_config

    cfg = preset_config(PRESET)
    out = Path(args.output_dir + "-supervised")
    out.mkdir(parents=True, exist_ok=True)
    result = train_supervised(
        cfg, args.supervised_minutes, out, learning_rate=args.supervised_lr
    )
    result["scores"] = score(load_deblur_function(result["model"]), cfg.data)
    result["threads"] = args.threads or os.cpu_count()
    result["machine"] = machine()
    with open(args.results + "_supervised.json", "w") as f:
        json.dump(result, f, indent=2)
    test = summary(result["scores"]["test"])
    print(f"supervised ceiling on the test split: {test}")
    return 0


def set_threads(threads: int) -> None:
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    set_threads(args.threads)
    if args.supervised_only:
        return supervised_only(args)
    out = Path(args.output_dir)
    command = train_command(args)
    start = time.monotonic()
    if not args.report_only:
        print(" ".join(command), flush=True)
        code = subprocess.call(command, cwd=ROOT, env=thread_env(args.threads))
        if code:
            raise SystemExit(f"train.py failed with exit code {code}")
    train_minutes = (time.monotonic() - start) / 60
    rows = runs.read_csv_log(out / runs.CSV_LOG)
    if not rows:
        raise SystemExit(f"no epochs finished: nothing logged in {out / runs.CSV_LOG}")
    from keras_udd.config import Config
    from keras_udd.deblur import keras_function, load_deblur_function

    cfg = Config.load(out / runs.CONFIG)
    per_epoch = cfg.train.steps_per_epoch
    for r in rows:
        r["iteration"] = (int(r["epoch"]) + 1) * per_epoch
    result_path = out / runs.RESULT
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    best = max(rows, key=lambda r: r["val_psnr"])
    config = cfg.to_dict()
    config["train"]["output_dir"] = portable(config["train"]["output_dir"])
    report = {
        "command": [portable(arg) for arg in command],
        "config": config,
        "machine": machine(),
        "threads": args.threads or os.cpu_count(),
        "train_minutes": None if args.report_only else round(train_minutes, 1),
        "iterations": result.get("iterations"),
        "best": {**best, "epoch": int(best["epoch"]) + 1},
        "final": rows[-1],
        "curves": rows,
    }
    if args.report_only:  # From the run folder: config written to last epoch.
        span = (out / runs.CSV_LOG).stat().st_mtime - (
            out / runs.CONFIG
        ).stat().st_mtime
        report["train_minutes"] = round(span / 60, 1)
    report["iterations"] = report["iterations"] or len(rows) * per_epoch
    print("scoring best.keras on the test and unseen-fonts splits ...", flush=True)
    deblurrer = best_deblurrer(out)  # Loaded once: scored, drawn, shipped.
    report["scores"] = score(keras_function(deblurrer), cfg.data)
    if (PRETRAINED / "text.keras").exists():
        print("scoring the shipped text model the same way ...", flush=True)
        report["previous"] = {
            split: summary(scores)
            for split, scores in score(load_deblur_function("text"), cfg.data).items()
        }
    supervised_file = Path(args.results + "_supervised.json")
    if supervised_file.exists():
        report["supervised"] = json.loads(supervised_file.read_text())
    elif args.supervised_minutes:
        supervised = train_supervised(
            cfg, args.supervised_minutes, out, learning_rate=args.supervised_lr
        )
        supervised["scores"] = score(
            load_deblur_function(supervised["model"]), cfg.data
        )
        report["supervised"] = supervised
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results + ".json", "w") as f:
        json.dump(report, f, indent=2)
    plot(rows, report, args.results + ".png")
    write_figures(deblurrer, cfg.data, args.results + "_pages.png")
    print(
        f"\nlearn_text: {len(rows)} epochs, best epoch {report['best']['epoch']}, "
        f"{report['train_minutes']} min\n"
    )
    print(tables(report))
    print(f"\nwrote {args.results}.json and {args.results}.png")
    if args.ship:
        failures = ship_failures(report)
        if failures:
            print("not shipped: " + "; ".join(failures))
            return 1
        ship(deblurrer, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
