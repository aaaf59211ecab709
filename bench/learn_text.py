"""Does it learn? Trains on the text domain for a fixed CPU budget and reports.

    python bench/learn_text.py                 # about 27 min on 2 CPU cores
    python bench/learn_text.py --steps 100 --epochs 2 --no-jit-compile  # smoke

Runs `train.py --domain text` (a reduced model: 32 base filters, 2 residual
blocks per network, 64-px crops) in a subprocess, then reads its CSV log and
writes bench/results/learn_text.json (validation PSNR/SSIM of the blurred
input and of the deblurred output per epoch, the final and best epochs, wall
time) and bench/results/learn_text.png (losses, and validation PSNR/SSIM
against the blurred baseline).

The defaults are the spec's knobs tuned for this budget (10-minute probes,
see the README): the perceptual term ties the deblurred output to its input
(weight 1 on `block1_conv2` features), the adversarial weight is 0.3, and the
reference's random-z branch (a DRIT extra) is off, which makes steps ~30%
cheaper. Offline there are no ImageNet VGG19 weights, so by default the
perceptual features come from a randomly initialised (fixed) VGG19;
`--vgg-weights PATH` (or 'imagenet' on a connected machine) uses real ones.
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

from keras_udd import runs  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LOSS_COLUMNS = (
    "g_loss", "adversarial", "cycle", "self_recon", "latent", "perceptual",
    "random_perceptual", "kl",
)  # fmt: skip


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4500, help="training (D) steps")
    parser.add_argument(
        "--minutes",
        type=float,
        default=25.0,
        help="stop training after this long even if --steps are not done",
    )
    parser.add_argument("--epochs", type=int, default=15, help="validation points")
    parser.add_argument("--content-filters", type=int, default=32)
    parser.add_argument("--res-blocks", type=int, default=2)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--test-images", type=int, default=64)
    parser.add_argument("--vgg-weights", default="none")
    parser.add_argument("--vgg-layer", default="block1_conv2")
    parser.add_argument("--perceptual-weight", type=float, default=1.0)
    parser.add_argument("--adversarial-weight", type=float, default=0.3)
    parser.add_argument(
        "--random-branch", action=argparse.BooleanOptionalAction, default=False
    )
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--d-steps-per-g-step", type=int, default=2)
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="XLA (about 2 min to compile on 2 cores, then ~3x faster steps)",
    )
    parser.add_argument("--output-dir", default=str(ROOT / "runs" / "bench-learn-text"))
    parser.add_argument("--results", default=str(RESULTS / "learn_text"))
    parser.add_argument(
        "--report-only", action="store_true", help="re-read --output-dir, no training"
    )
    args = parser.parse_args(argv)
    if args.steps < args.epochs:
        parser.error("--steps must be >= --epochs")
    return args


def train_command(args) -> list[str]:
    f = args.content_filters
    return [
        sys.executable, str(ROOT / "train.py"), "--domain", "text",
        "--output-dir", args.output_dir, "--overwrite",
        "--epochs", str(args.epochs),
        "--steps-per-epoch", str(args.steps // args.epochs),
        "--time-limit-minutes", str(args.minutes),
        "--content-filters", str(f), "--blur-filters", str(f),
        "--disc-filters", str(f), "--content-res-blocks", str(args.res_blocks),
        "--generator-res-blocks", str(args.res_blocks),
        "--crop-size", str(args.crop_size),
        "--load-size", str(args.crop_size + args.crop_size // 8),
        "--batch-size", str(args.batch_size),
        "--test-images", str(args.test_images),
        "--vgg-weights", args.vgg_weights, "--vgg-layer", args.vgg_layer,
        "--perceptual-weight", str(args.perceptual_weight),
        "--random-perceptual-weight", str(args.perceptual_weight),
        "--adversarial-weight", str(args.adversarial_weight),
        "--random-branch" if args.random_branch else "--no-random-branch",
        "--learning-rate", str(args.learning_rate),
        "--d-steps-per-g-step", str(args.d_steps_per_g_step),
        "--jit-compile" if args.jit_compile else "--no-jit-compile",
        "--backup-freq", "0", "--log-freq", "25",
    ]  # fmt: skip


def summarize(args, wall_seconds, command) -> dict:
    out = Path(args.output_dir)
    rows = runs.read_csv_log(out / runs.CSV_LOG)
    if not rows:
        raise SystemExit(f"no epochs finished: nothing logged in {out / runs.CSV_LOG}")
    result_path = out / runs.RESULT
    result = json.loads(result_path.read_text()) if result_path.exists() else None

    def scores(row):
        return {
            "epoch": int(row["epoch"]) + 1,
            "psnr_deblurred": row["val_psnr"],
            "ssim_deblurred": row["val_ssim"],
            "psnr_blurred": row["val_psnr_blurred"],
            "ssim_blurred": row["val_ssim_blurred"],
        }

    best = max(rows, key=lambda r: r["val_psnr"])
    return {
        "command": command,
        "config": json.loads((out / runs.CONFIG).read_text()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "wall_seconds": round(wall_seconds, 1),
        "finished": result is not None,
        "iterations": result["iterations"] if result else None,
        "epochs_logged": len(rows),
        "final": scores(rows[-1]),
        "best": scores(best),
        "gain_db_final": rows[-1]["val_psnr"] - rows[-1]["val_psnr_blurred"],
        "curves": rows,
    }


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name in LOSS_COLUMNS:
        if name in rows[0]:
            axes[0].plot(epochs, [r[name] for r in rows], label=name)
    axes[0].set(title="E/G losses (weighted)", xlabel="epoch", yscale="log")
    axes[0].legend(fontsize=7)
    axes[1].plot(epochs, [r["d_loss"] for r in rows], label="d_loss")
    axes[1].set(title="discriminator loss", xlabel="epoch")
    ax = axes[2]
    ax.plot(epochs, [r["val_psnr"] for r in rows], "o-", label="PSNR deblurred")
    ax.plot(epochs, [r["val_psnr_blurred"] for r in rows], "--", label="PSNR blurred")
    ax.set(title="validation", xlabel="epoch", ylabel="PSNR (dB)")
    twin = ax.twinx()
    twin.plot(
        epochs, [r["val_ssim"] for r in rows], "s-", color="C2", label="SSIM deblurred"
    )
    twin.plot(
        epochs,
        [r["val_ssim_blurred"] for r in rows],
        ":",
        color="C3",
        label="SSIM blurred",
    )
    twin.set_ylabel("SSIM")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = train_command(args)
    start = time.monotonic()
    if not args.report_only:
        print(" ".join(command), flush=True)
        code = subprocess.call(command, cwd=ROOT)
        if code:
            raise SystemExit(f"train.py failed with exit code {code}")
    report = summarize(args, time.monotonic() - start, command)
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results + ".json", "w") as f:
        json.dump(report, f, indent=2)
    plot(report["curves"], args.results + ".png")
    final, best = report["final"], report["best"]
    print(
        f"\nlearn_text: {report['epochs_logged']} epochs, "
        f"{report['wall_seconds'] / 60:.1f} min, finished={report['finished']}\n"
        f"{'':22}{'PSNR (dB)':>10}{'SSIM':>8}\n"
        f"{'blurred input':22}{final['psnr_blurred']:>10.2f}"
        f"{final['ssim_blurred']:>8.4f}\n"
        f"{'deblurred (final)':22}{final['psnr_deblurred']:>10.2f}"
        f"{final['ssim_deblurred']:>8.4f}\n"
        f"{'deblurred (best, ep ' + str(best['epoch']) + ')':22}"
        f"{best['psnr_deblurred']:>10.2f}{best['ssim_deblurred']:>8.4f}\n"
        f"wrote {args.results}.json and {args.results}.png"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
