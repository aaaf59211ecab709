"""Trains the shipped text deblurrer and proves it: python bench/learn_text.py

    python bench/learn_text.py                      # the full recipe (see README)
    python bench/learn_text.py --minutes 3 --epochs 2 --output-dir /tmp/lt  # smoke
    python bench/learn_text.py --report-only --ship # re-score a run, ship it

1. Trains `train.py --preset text-small` (the recipe of the pretrained `text`
   model) in a subprocess into --output-dir; its log.csv holds, per epoch,
   the validation PSNR/SSIM of the output and of the blurred input, the OCR
   character error rates (val_cer, val_cer_blurred) and the diagnostic
   psnr_sharp_recon (sharp -> E^c_S -> G_S).
2. Scores best.keras on the held-out TEST split (whole pages; PSNR, SSIM, OCR
   CER of the output and of the blurred input).
3. With --supervised-minutes M: the supervised ceiling, i.e. the same
   deblurring networks (E^c_B, E^b, G_S of the preset's size) trained with
   paired L1 on crops of the same sharp pages blurred the same way, for M
   minutes, then scored on the same test split.
4. Writes --results.json (config, command, machine, curves, test scores) and
   --results.png (validation PSNR/SSIM/CER against the blurred baseline,
   sharp-reconstruction PSNR, losses).
5. With --ship: writes the deblurring path of best.keras to
   keras_udd/pretrained/text.keras, and text.json (how it was trained, what
   it scores).
"""

from __future__ import annotations

import argparse
import json
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
PRETRAINED = ROOT / "keras_udd" / "pretrained"
FIGURES = ROOT / "docs" / "images"
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
        "--supervised-only",
        action="store_true",
        help="only train and score the supervised ceiling (--supervised-minutes, "
        "the preset's config), into RESULTS_supervised.json, which the full "
        "report then includes",
    )
    parser.add_argument("--threads", type=int, default=0, help="TF threads (0: all)")
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


def test_scores(model_path, data_cfg) -> dict:
    """PSNR/SSIM/CER on the test split (whole pages) of a model file."""
    from keras_udd.data import make_test_dataset
    from keras_udd.deblur import load_deblur_function
    from keras_udd.evaluate import evaluate

    fn = load_deblur_function(model_path)
    return evaluate(fn, make_test_dataset(data_cfg, split="test"), ocr=True)


def train_supervised(cfg, minutes: float, output: Path) -> dict:
    """The supervised ceiling: `Deblurrer` networks of `cfg.model`'s size,
    paired L1 (Adam, the preset's lr and betas), for `minutes`."""
    import keras

    from keras_udd.data import make_paired_train_dataset, make_test_dataset
    from keras_udd.model import UIDGAN

    keras.utils.set_random_seed(cfg.train.seed)
    m = cfg.model
    deblurrer = UIDGAN(m, perceptual_weight=0.0, random_branch=False).deblurrer
    deblurrer.compile(
        optimizer=keras.optimizers.Adam(m.learning_rate, m.beta_1, m.beta_2),
        loss="mean_absolute_error",
        jit_compile=cfg.train.jit_compile,
    )
    val = make_test_dataset(cfg.data, split="val")
    curve, start = [], time.monotonic()
    chunk = max(cfg.train.steps_per_epoch, 1)

    class Checkpoints(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = evaluate_paired(deblurrer, val)
            minutes = (time.monotonic() - start) / 60
            logs.update(steps=(epoch + 1) * chunk, minutes=round(minutes, 2))
            curve.append(logs)
            print(f"supervised: {logs}", flush=True)
            if minutes >= budget:
                self.model.stop_training = True

    budget = minutes
    deblurrer.fit(
        make_paired_train_dataset(cfg.data),
        steps_per_epoch=chunk,
        epochs=10**6,
        verbose=0,
        callbacks=[Checkpoints()],
    )
    steps = curve[-1]["steps"] if curve else 0
    path = output / "supervised.keras"
    deblurrer.save(path)
    return {"curve": curve, "steps": steps, "model": str(path)}


def evaluate_paired(network, dataset) -> dict:
    """Mean validation PSNR/SSIM of a [-1, 1] -> [-1, 1] network."""
    import numpy as np

    from keras_udd.metrics import psnr, ssim, to_unit_range

    values = {"psnr": [], "ssim": []}
    for blurred, sharp in dataset:
        out = to_unit_range(network(blurred, training=False))
        sharp = to_unit_range(sharp)
        values["psnr"].append(float(np.mean(psnr(out, sharp))))
        values["ssim"].append(float(np.mean(ssim(out, sharp))))
    return {k: float(np.mean(v)) for k, v in values.items()}


def ship(run_dir: Path, report: dict) -> None:
    """best.keras's deblurring path -> keras_udd/pretrained/text.keras (+ JSON)."""
    import keras

    import keras_udd.model  # noqa: F401  (registers UIDGAN)
    from keras_udd.config import Config

    model = keras.saving.load_model(run_dir / runs.BEST, compile=False)
    PRETRAINED.mkdir(exist_ok=True)
    target = PRETRAINED / "text.keras"
    model.deblurrer.save(target)
    info = {
        "name": "text",
        "trained_with": f"python bench/learn_text.py (train.py --preset {PRESET})",
        "command": report["command"],
        "config": report["config"],
        "machine": report["machine"],
        "train_minutes": report["train_minutes"],
        "iterations": report["iterations"],
        "best_epoch": report["best"]["epoch"],
        "test_scores": report["test"],
        "parameters": int(model.deblurrer.count_params()),
    }
    (PRETRAINED / "text.json").write_text(json.dumps(info, indent=2) + "\n")
    size = target.stat().st_size / 2**20
    print(f"shipped {target} ({size:.1f} MB) and text.json")
    write_figures(model.deblurrer, Config.from_dict(report["config"]).data)


def write_figures(deblurrer, data_cfg, pages=3):
    """docs/images/sample_page.png (a blurred test page, for the README's first
    command) and before_after.png (blurred | deblurred | sharp test pages)."""
    import numpy as np
    from PIL import Image

    from keras_udd.data import make_test_dataset
    from keras_udd.ocr import signed_to_uint8

    FIGURES.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (blurred, sharp) in enumerate(
        make_test_dataset(data_cfg, split="test").take(pages)
    ):
        b, s = signed_to_uint8(blurred[0]), signed_to_uint8(sharp[0])
        d = signed_to_uint8(deblurrer(blurred)[0])
        if i == 0:
            Image.fromarray(b).save(FIGURES / "sample_page.png")
        gap = np.full((b.shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([b, gap, d, gap, s], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]  # fmt: skip
    Image.fromarray(np.concatenate(rows, 0)).save(FIGURES / "before_after.png")
    print(f"wrote {FIGURES / 'sample_page.png'} and before_after.png")


def plot(rows, supervised, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["iteration"] for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    ax = axes[0]
    ax.plot(steps, [r["val_psnr"] for r in rows], "o-", label="deblurred")
    ax.plot(steps, [r["val_psnr_blurred"] for r in rows], "--", label="blurred input")
    if "val_psnr_sharp_recon" in rows[0]:
        ax.plot(
            steps,
            [r["val_psnr_sharp_recon"] for r in rows],
            ":",
            label="sharp -> E^c_S -> G_S",
        )
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
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def supervised_only(args) -> int:
    """The supervised ceiling alone, for the preset's config."""
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from keras_udd.presets import preset_config

    cfg = preset_config(PRESET)
    out = Path(args.output_dir + "-supervised")
    out.mkdir(parents=True, exist_ok=True)
    result = train_supervised(cfg, args.supervised_minutes, out)
    result["test"] = test_scores(result["model"], cfg.data)
    result["minutes"] = args.supervised_minutes
    result["threads"] = args.threads or os.cpu_count()
    result["machine"] = machine()
    with open(args.results + "_supervised.json", "w") as f:
        json.dump(result, f, indent=2)
    print(f"supervised ceiling on the test split: {result['test']}")
    return 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.supervised_only:
        return supervised_only(args)
    out = Path(args.output_dir)
    command = train_command(args)
    start = time.monotonic()
    if not args.report_only:
        print(" ".join(command), flush=True)
        code = subprocess.call(command, cwd=ROOT)
        if code:
            raise SystemExit(f"train.py failed with exit code {code}")
    train_minutes = (time.monotonic() - start) / 60
    rows = runs.read_csv_log(out / runs.CSV_LOG)
    if not rows:
        raise SystemExit(f"no epochs finished: nothing logged in {out / runs.CSV_LOG}")
    from keras_udd.config import Config

    cfg = Config.load(out / runs.CONFIG)
    per_epoch = cfg.train.steps_per_epoch
    for r in rows:
        r["iteration"] = (int(r["epoch"]) + 1) * per_epoch
    result_path = out / runs.RESULT
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    best = max(rows, key=lambda r: r["val_psnr"])
    report = {
        "command": command,
        "config": cfg.to_dict(),
        "machine": machine(),
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
    print("scoring best.keras on the test split ...", flush=True)
    report["test"] = test_scores(out / runs.BEST, cfg.data)
    supervised = None
    supervised_file = Path(args.results + "_supervised.json")
    if supervised_file.exists():
        supervised = json.loads(supervised_file.read_text())
        report["supervised"] = supervised
    elif args.supervised_minutes:
        supervised = train_supervised(cfg, args.supervised_minutes, out)
        supervised["test"] = test_scores(supervised["model"], cfg.data)
        report["supervised"] = supervised
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results + ".json", "w") as f:
        json.dump(report, f, indent=2)
    plot(rows, supervised, args.results + ".png")
    t = report["test"]
    lines = [
        f"\nlearn_text on {report['machine']['cpu_model']}: {len(rows)} epochs, "
        f"best epoch {report['best']['epoch']}; test split ({t['images']} pages)",
        f"{'':20}{'PSNR (dB)':>10}{'SSIM':>8}{'CER':>8}",
        f"{'blurred input':20}{t['psnr_blurred']:>10.2f}{t['ssim_blurred']:>8.4f}"
        f"{t['cer_blurred']:>8.3f}",
        f"{'deblurred':20}{t['psnr']:>10.2f}{t['ssim']:>8.4f}{t['cer']:>8.3f}",
    ]
    if supervised:
        s = supervised["test"]
        lines.append(
            f"{'supervised ceiling':20}{s['psnr']:>10.2f}{s['ssim']:>8.4f}"
            f"{s['cer']:>8.3f}"
        )
    lines.append(f"wrote {args.results}.json and {args.results}.png")
    print("\n".join(lines))
    if args.ship:
        ship(out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
