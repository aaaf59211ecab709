"""Scores a model on a domain's paired test set: python -m keras_udd.evaluate.

    python -m keras_udd.evaluate --model runs/text-X/best.keras --domain text

Prints PSNR and SSIM (conventions in keras_udd.metrics: [0, 1] RGB, no
border crop) of the blurred inputs and of the deblurred outputs against the
sharp images, with the image count. The data flags are train.py's; when the
model sits in a run folder, that run's config.json supplies their defaults,
so the test set is the one validated on during training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_udd import cli  # noqa: E402
from keras_udd.config import Config  # noqa: E402


def parse_args(argv):
    """(args, DataConfig)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model")
    cli.add_config_file_flag(pre)
    known, _ = pre.parse_known_args(argv)
    base = cli.preparse_config(argv)
    run_config = (
        os.path.join(os.path.dirname(os.path.abspath(known.model)), "config.json")
        if known.model
        else None
    )
    if base is None and run_config and os.path.isfile(run_config):
        base = Config.load(run_config)
    parser = argparse.ArgumentParser(
        prog="python -m keras_udd.evaluate",
        description="PSNR/SSIM of a deblurring model on a paired test set. Data "
        "flag defaults come from --config, else from the config.json beside "
        "--model, else from keras_udd.config.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a .keras model (e.g. runs/<run>/best.keras) or a SavedModel folder",
    )
    cli.add_config_file_flag(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the scores here")
    owners = cli.add_config_flags(parser, sections=("data",), defaults=base)
    args = parser.parse_args(argv)
    data = cli.config_from_args(args, owners, base).data
    cli.check_data_config(parser, data)
    return args, data


def evaluate(fn, dataset, progress=True) -> dict:
    """Mean PSNR/SSIM over a paired dataset of `(blurred, sharp)` batches in
    [-1, 1], for a deblur function on [0, 1] images (see
    `keras_udd.deblur.load_deblur_function`)."""
    import numpy as np
    from tqdm import tqdm

    from keras_udd.metrics import psnr, ssim, to_unit_range

    sums = dict.fromkeys(("psnr", "ssim", "psnr_blurred", "ssim_blurred"), 0.0)
    count = 0
    for blurred, sharp in tqdm(
        dataset, desc="evaluate", unit="batch", disable=not progress
    ):
        blurred, sharp = to_unit_range(blurred), to_unit_range(sharp)
        deblurred = np.clip(fn(blurred.numpy()), 0.0, 1.0)
        for key, value in (
            ("psnr", psnr(deblurred, sharp)),
            ("ssim", ssim(deblurred, sharp)),
            ("psnr_blurred", psnr(blurred, sharp)),
            ("ssim_blurred", ssim(blurred, sharp)),
        ):
            sums[key] += float(np.sum(value.numpy()))
        count += int(blurred.shape[0])
    if not count:
        raise ValueError("the test set is empty")
    return {"images": count, **{k: v / count for k, v in sums.items()}}


def format_table(scores: dict) -> str:
    lines = [
        f"{'':16}{'PSNR (dB)':>10}{'SSIM':>8}",
        f"{'blurred input':16}{scores['psnr_blurred']:>10.2f}"
        f"{scores['ssim_blurred']:>8.4f}",
        f"{'deblurred':16}{scores['psnr']:>10.2f}{scores['ssim']:>8.4f}",
        f"images: {scores['images']}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args, data = parse_args(sys.argv[1:] if argv is None else argv)
    from keras_udd.data import make_test_dataset
    from keras_udd.deblur import load_deblur_function

    try:
        fn = load_deblur_function(args.model)
        dataset = make_test_dataset(data)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    scores = evaluate(fn, dataset)
    print(f"{args.model} on the {data.domain} test set (crop {data.crop_size})")
    print(format_table(scores))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"model": args.model, "domain": data.domain, **scores}, f, indent=2
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
