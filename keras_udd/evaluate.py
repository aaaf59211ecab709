"""Scores a model on a domain's paired test set: python -m keras_udd.evaluate.

    python -m keras_udd.evaluate --model runs/text-X/best.keras --domain text

Prints PSNR and SSIM (conventions in keras_udd.metrics: [0, 1] RGB, no
border crop) of the blurred inputs and of the deblurred outputs against the
sharp images, on whole images (not crops), with the image count; with OCR
(on by default for `--domain text`, `--ocr/--no-ocr`), also the Tesseract
character error rate of each against the sharp image's text (keras_udd.ocr);
the same by blur family and size for synthetic blur; and (`--identity`, on
by default) the sharp images through the model against themselves.
`--split test` (default) scores the held-out test set, which training never
sees; `--split val` the validation set that picked `best.keras`; `--split
unseen` text pages set in fonts that no other split uses. The data flags
are train.py's, except those of training crops (`TRAINING_ONLY`: batch
size, crop, flip); when the model sits in a run folder, that run's
config.json supplies their defaults, so the splits are that run's (and for
a shipped model, `--model text`, the config it was trained with).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from keras_udd import cli, console, runs

# Data settings of training crops only: whole test images take no flag for them.
TRAINING_ONLY = ("batch_size", "crop_size", "crops_per_image", "random_flip")

logger = logging.getLogger(__name__)


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
        choices=("test", "val", "unseen"),
        default="test",
        help="test: the held-out test set (--test-images, or the test part of "
        "--test-dir); val: the validation set of training (--val-images); "
        "unseen: text pages in fonts training never saw (--unseen-images) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--identity",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score the sharp images through the model against "
        "themselves (does it harm a sharp image?) (default: %(default)s)",
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
    owners = cli.add_config_flags(
        parser, sections=("data",), defaults=base, skip=TRAINING_ONLY
    )
    args = parser.parse_args(argv)
    data = cli.config_from_args(args, owners, base).data
    # The crop plays no part; it is only kept within --load-size for the checks.
    crop = min(data.crop_size, max(16, data.load_size // 4 * 4))
    data = dataclasses.replace(data, crop_size=crop)
    cli.check_data_config(parser, data)
    if args.ocr is None:
        args.ocr = data.domain == "text"
    return args, data


METRICS = ("psnr", "ssim", "psnr_blurred", "ssim_blurred")
IDENTITY = ("psnr_identity", "ssim_identity")
CER = ("cer", "cer_blurred")
SIZE_BINS = 3  # Each blur family's size range is reported in this many bins.


def score_images(
    fn, dataset, progress=True, ocr=False, ocr_workers=None, identity=False
) -> list[dict]:
    """Per-image scores of a deblur function on a paired dataset.

    Args:
        fn: `[N, H, W, 3]` float32 in [0, 1] -> same (see
            `keras_udd.deblur.load_deblur_function`).
        dataset: batches `(blurred, sharp)` in [-1, 1], or the dicts of
            `keras_udd.data.make_test_examples` (which add `id` and
            `kernel_index`).
        ocr: also Tesseract character error rates (`keras_udd.ocr`), run after
            the model on all images, `ocr_workers` processes at a time.
        identity: also the sharp image through `fn` against itself.

    Returns:
        one dict per image: `psnr`, `ssim` (output vs sharp), `psnr_blurred`,
        `ssim_blurred` (input vs sharp), with `identity` `psnr_identity`,
        `ssim_identity`, with `ocr` `cer`, `cer_blurred`; and `id`,
        `kernel_index` (-1 when unknown). Pairs whose blurred image equals
        the sharp one are scored too, and named in a warning.
    """
    import numpy as np
    from tqdm import tqdm

    from keras_udd.metrics import MAX_PSNR, psnr, ssim, to_unit_range
    from keras_udd.runtime import to_uint8

    if ocr:
        from keras_udd.ocr import find_tesseract, ocr_scores

        find_tesseract()  # Before the model runs, not after.

    records, unblurred = [], []  # Names of pairs with blurred == sharp.
    pages = ([], [], [])  # OCR inputs: outputs, blurred, sharp (uint8).
    for batch in tqdm(dataset, desc="evaluate", unit="batch", disable=not progress):
        if isinstance(batch, dict):
            blurred, sharp = batch["blurred"], batch["sharp"]
            ids = [i.decode() for i in batch["id"].numpy()]
            kernels = [int(k) for k in batch["kernel_index"].numpy()]
        else:
            blurred, sharp = batch
            ids, kernels = [""] * int(blurred.shape[0]), [-1] * int(blurred.shape[0])
        blurred, sharp = to_unit_range(blurred), to_unit_range(sharp)
        deblurred = np.clip(fn(blurred.numpy()), 0.0, 1.0)
        values = {
            "psnr": psnr(deblurred, sharp),
            "ssim": ssim(deblurred, sharp),
            "psnr_blurred": psnr(blurred, sharp),
            "ssim_blurred": ssim(blurred, sharp),
        }
        if identity:
            same = np.clip(fn(sharp.numpy()), 0.0, 1.0)
            values["psnr_identity"] = psnr(same, sharp)
            values["ssim_identity"] = ssim(same, sharp)
        values = {k: v.numpy() for k, v in values.items()}
        equal = np.all(blurred.numpy() == sharp.numpy(), axis=(1, 2, 3))
        for i, (name, kernel) in enumerate(zip(ids, kernels, strict=True)):
            if equal[i]:
                unblurred.append(name or f"#{len(records)}")
            records.append(
                {"id": name, "kernel_index": kernel}
                | {k: float(v[i]) for k, v in values.items()}
            )
        if ocr:
            for images, batch_images in zip(pages, (deblurred, blurred, sharp)):
                images.extend(to_uint8(batch_images))
    if not records:
        raise ValueError("the test set is empty")
    if unblurred:
        logger.warning(
            "%d of %d test pairs have a blurred image equal to its sharp one "
            "(%s): each scores %g dB as input, which outweighs many images in "
            "the mean PSNR",
            len(unblurred),
            len(records),
            ", ".join(unblurred[:5]) + (", ..." if len(unblurred) > 5 else ""),
            MAX_PSNR,
        )
    if ocr:
        cer = ocr_scores(*pages, workers=ocr_workers)
        for i, record in enumerate(records):
            record.update({k: float(cer[k][i]) for k in CER})
    return records


def _means(records) -> dict:
    keys = [k for k in (*METRICS, *IDENTITY, *CER) if k in records[0]]
    return {"images": len(records)} | {
        k: sum(r[k] for r in records) / len(records) for k in keys
    }


def summarize(records, labels=None) -> dict:
    """Means over images, and with `labels` (`keras_udd.data.pipeline.
    kernel_labels` of the split) the same by blur family and, within a
    family, by `SIZE_BINS` equal parts of its size range.

    Returns `{"images", "psnr", ..., "families": {family: {"images", "psnr",
    ..., "parameter", "bins": [{"range": [lo, hi], "images", "psnr", ...}]}}}`
    ("families" only with labels).
    """
    from keras_udd.blur import PHOTO_FAMILIES

    scores = _means(records)
    if labels is None or any(r["kernel_index"] < 0 for r in records):
        return scores
    families = {}
    for family in dict.fromkeys(labels.family):
        members = [r for r in records if labels.family[r["kernel_index"]] == family]
        if not members:
            continue
        entry = _means(members)
        if family in PHOTO_FAMILIES:
            parameter, (lo, hi), _ = PHOTO_FAMILIES[family]
            edges = [lo + (hi - lo) * j / SIZE_BINS for j in range(SIZE_BINS + 1)]
            bins = []
            for a, b in zip(edges[:-1], edges[1:]):
                inside = [
                    r
                    for r in members
                    if a <= labels.value[r["kernel_index"]] < b
                    or (b == hi and labels.value[r["kernel_index"]] == hi)
                ]
                if inside:
                    bins.append({"range": [round(a, 2), round(b, 2)]} | _means(inside))
            entry |= {"parameter": parameter, "bins": bins}
        families[family] = entry
    return scores | {"families": families}


def evaluate(
    fn, dataset, progress=True, ocr=False, ocr_workers=None, identity=False, labels=None
) -> dict:
    """Mean scores of a deblur function over a paired dataset (see
    `score_images` for the arguments, `summarize` for the result), with the
    per-image values under "per_image"."""
    records = score_images(fn, dataset, progress, ocr, ocr_workers, identity)
    return summarize(records, labels) | {"per_image": records}


def _row(label: str, scores: dict, suffix: str, ocr: bool) -> str:
    row = f"{label:28}{scores['psnr' + suffix]:>10.2f}{scores['ssim' + suffix]:>8.4f}"
    if ocr:
        row += f"{scores['cer' + suffix]:>8.4f}" if "cer" + suffix in scores else ""
    return row


def format_table(scores: dict) -> str:
    """The scores as a table: blurred input vs deblurred output, overall and
    by blur family and size; the identity row when measured."""
    ocr = "cer" in scores
    header = f"{'':28}{'PSNR (dB)':>10}{'SSIM':>8}" + (f"{'CER':>8}" if ocr else "")
    rows = [
        _row("blurred input", scores, "_blurred", ocr),
        _row("deblurred", scores, "", ocr),
    ]
    if "psnr_identity" in scores:
        rows.append(_row("sharp input -> output", scores, "_identity", False))
    for family, entry in scores.get("families", {}).items():
        rows.append(f"{family} ({entry['images']} images)")
        rows.append(_row("  blurred input", entry, "_blurred", ocr))
        rows.append(_row("  deblurred", entry, "", ocr))
        for b in entry.get("bins", []):
            lo, hi = b["range"]
            label = f"  {entry['parameter']} {lo:g}-{hi:g} ({b['images']})"
            rows.append(f"{label:28}{b['psnr_blurred']:>10.2f} -> {b['psnr']:.2f}")
    footer = f"images: {scores['images']}"
    if ocr:
        footer += " (CER: OCR character error rate against the sharp image's text)"
    return "\n".join([header, *rows, footer])


def main(argv=None) -> int:
    args, data = parse_args(sys.argv[1:] if argv is None else argv)
    from keras_udd.data import make_test_examples
    from keras_udd.data.pipeline import SPLIT_NAMES, kernel_labels
    from keras_udd.deblur import load_deblur_function

    try:  # evaluate() looks for Tesseract before the model runs.
        fn = load_deblur_function(args.model)
        dataset = make_test_examples(data, split=args.split)
        labels = None if data.test_dir else kernel_labels(data, args.split)
        scores = evaluate(
            fn, dataset, ocr=args.ocr, identity=args.identity, labels=labels
        )
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    what = SPLIT_NAMES[args.split]
    print(f"{args.model} on the {data.domain} {what} set (whole images)")
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
