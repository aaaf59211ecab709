"""Scores a model on a domain's paired test set: python -m keras_udd.evaluate.

    python -m keras_udd.evaluate --model runs/text-X/best.keras --domain text

Prints PSNR and SSIM (conventions in keras_udd.metrics: [0, 1] RGB, no
border crop) of the blurred inputs and of the deblurred outputs against the
sharp images, on whole images (not crops), with the image count; with OCR
(on by default for `--domain text`, `--ocr/--no-ocr`), also the Tesseract
character error rate of each against the sharp image's text (keras_udd.ocr).
`--split test` (default) scores the held-out test set, which training never
sees; `--split val` the validation set that picked `best.keras`. The data
flags are train.py's; when the model sits in a run folder, that run's
config.json supplies their defaults, so the splits are that run's (and for
a shipped model, `--model text`, the config it was trained with).
"""

from __future__ import annotations

import argparse
import json
import sys

from keras_udd import cli, console, runs


def parse_args(argv):
    """(args, DataConfig)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model")
    cli.add_config_file_flag(pre)
    known, _ = pre.parse_known_args(argv)
    base = cli.preparse_config(argv)
    if base is None and known.model:
        base = runs.training_config(known.model)
    parser = argparse.ArgumentParser(
        prog="python -m keras_udd.evaluate",
        description="PSNR/SSIM (and OCR character error rates) of a deblurring "
        "model on a paired test set. Data flag defaults come from --config, else "
        "from the config.json beside --model, else from keras_udd.config.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a .keras model (e.g. runs/<run>/best.keras), a SavedModel folder, "
        "a .tflite file, or a shipped model's name (`text`: its training data "
        "settings become the defaults)",
    )
    cli.add_config_file_flag(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the scores here")
    parser.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="test: the held-out test set (--test-images, or the test part of "
        "--test-dir); val: the validation set of training (--val-images) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--ocr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also report Tesseract character error rates (cer, cer_blurred) "
        "against the sharp image's text; needs the tesseract-ocr package "
        "(default: on for --domain text, off otherwise)",
    )
    console.add_verbose_flag(parser)
    owners = cli.add_config_flags(parser, sections=("data",), defaults=base)
    args = parser.parse_args(argv)
    data = cli.config_from_args(args, owners, base).data
    cli.check_data_config(parser, data)
    if args.ocr is None:
        args.ocr = data.domain == "text"
    return args, data


def evaluate(fn, dataset, progress=True, ocr=False, ocr_workers=None) -> dict:
    """Mean scores over a paired dataset of `(blurred, sharp)` batches in
    [-1, 1], for a deblur function on [0, 1] images (see
    `keras_udd.deblur.load_deblur_function`).

    Returns `{"images", "psnr", "ssim", "psnr_blurred", "ssim_blurred"}` and,
    with `ocr`, `"cer"` and `"cer_blurred"` (`keras_udd.ocr.ocr_scores`, run
    after the model on all images, `ocr_workers` Tesseract processes at a
    time); each is the mean over images of the per-image value.
    """
    import numpy as np
    from tqdm import tqdm

    from keras_udd.metrics import psnr, ssim, to_unit_range

    if ocr:
        from keras_udd.ocr import find_tesseract, ocr_scores

        find_tesseract()  # Before the model runs, not after.

    def to_uint8(x):
        return np.round(np.clip(np.asarray(x), 0.0, 1.0) * 255.0).astype(np.uint8)

    sums = dict.fromkeys(("psnr", "ssim", "psnr_blurred", "ssim_blurred"), 0.0)
    pages = ([], [], [])  # OCR inputs: outputs, blurred, sharp (uint8).
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
        if ocr:
            for images, batch in zip(pages, (deblurred, blurred, sharp)):
                images.extend(to_uint8(batch))
    if not count:
        raise ValueError("the test set is empty")
    scores = {"images": count, **{k: v / count for k, v in sums.items()}}
    if ocr:
        cer = ocr_scores(*pages, workers=ocr_workers)
        scores.update({k: float(np.mean(v)) for k, v in cer.items()})
    return scores


def format_table(scores: dict) -> str:
    """The scores as a small table: blurred input vs deblurred output."""
    ocr = "cer" in scores
    header = f"{'':16}{'PSNR (dB)':>10}{'SSIM':>8}" + (f"{'CER':>8}" if ocr else "")
    rows = []
    for label, suffix in (("blurred input", "_blurred"), ("deblurred", "")):
        row = f"{label:16}{scores['psnr' + suffix]:>10.2f}"
        row += f"{scores['ssim' + suffix]:>8.4f}"
        if ocr:
            row += f"{scores['cer' + suffix]:>8.4f}"
        rows.append(row)
    footer = f"images: {scores['images']}"
    if ocr:
        footer += " (CER: OCR character error rate against the sharp image's text)"
    return "\n".join([header, *rows, footer])


def main(argv=None) -> int:
    args, data = parse_args(sys.argv[1:] if argv is None else argv)
    from keras_udd.data import make_test_dataset
    from keras_udd.deblur import load_deblur_function

    try:
        if args.ocr:
            from keras_udd.ocr import find_tesseract

            find_tesseract()
        fn = load_deblur_function(args.model)
        dataset = make_test_dataset(data, split=args.split)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    scores = evaluate(fn, dataset, ocr=args.ocr)
    what = "test set" if args.split == "test" else "validation set"
    print(f"{args.model} on the {data.domain} {what} (whole images)")
    print(format_table(scores))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "model": args.model,
                    "domain": data.domain,
                    "split": args.split,
                    "ocr": bool(args.ocr),
                    **scores,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
