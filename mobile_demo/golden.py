"""Golden images for the Android instrumentation test, from the export's SavedModel.

    python -m mobile_demo.golden --model-dir EXPORT_DIR [--image PHOTO]
        [--model deblurrer_float32] [--out EXPORT_DIR/golden]

Writes `input.png` (a crop of PHOTO, default matplotlib's sample photo of
Grace Hopper), `expected.png` (it deblurred whole by the export's SavedModel,
`serving_default`: uint8 in, uint8 out), `expected_tiled.png` (the same
SavedModel's `deblur_float` in 128-px tiles overlapping by 32, blended by
`keras_udd.tiling` as the app tiles, rounded as the contract says) and
`golden.json` (file names, tile settings and the tolerance in uint8 levels).
The goldens come from TensorFlow, not from the TFLite model or the client
pipeline the app reimplements, so the test compares two implementations.
The Android app's Gradle task `copyDeblurGolden` copies this folder into the
test's assets; the goldens belong to the model they were made with, so
regenerate them after each export (it needs the SavedModel:
`python -m export --formats savedmodel tflite`).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mobile_demo.contract import ALIGN, Contract

TOLERANCE = 2  # uint8 levels: TFLite (ARM or x86 XNNPACK) vs TensorFlow.
TILE = (128, 32)  # tile size, overlap of the tiled golden.
CROP = (40, 120, 201, 263)  # top, left, height, width: odd sizes.


def sample_photo():
    from matplotlib import cbook

    return cbook.get_sample_data("grace_hopper.jpg")


def savedmodel_goldens(model_dir, rgb):
    """`(whole, tiled)` uint8 [H, W, 3]: `rgb` deblurred by the SavedModel of
    the export in `model_dir` (its highest version), whole
    (`serving_default`) and in `TILE` tiles (`deblur_float`, blended as
    `keras_udd.tiling` does)."""
    import tensorflow as tf

    from keras_udd import runtime, tiling

    versions = Path(model_dir, "savedmodel").glob("[0-9]*")
    latest = max(versions, key=lambda p: int(p.name))
    signatures = tf.saved_model.load(str(latest)).signatures

    def run(signature, images):
        out = signatures[signature](**{runtime.IMAGES: tf.constant(images)})
        return out[runtime.DEBLURRED].numpy()

    whole = run(runtime.SERVING_DEFAULT, rgb[None])[0]
    values = rgb.astype(np.float32) / 255.0
    tiled = tiling.process_tiled(
        values, lambda batch: run(runtime.DEBLUR_FLOAT, batch), *TILE,
        batch_size=1, align=ALIGN,
    )  # fmt: skip
    return whole, runtime.to_uint8(tiled)


def write_golden(contract_path, out_dir, image_path=None):
    """Writes the golden files to `out_dir` from the SavedModel beside the
    TFLite model of `contract_path` (in the same export folder); returns
    golden.json's content."""
    contract = Contract.load(contract_path)
    if contract.input.low != 0.0 or contract.input.high != 1.0:
        raise ValueError(f"{contract_path}: the goldens assume the [0, 1] input range")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Image.open(image_path or sample_photo()) as image:
        rgb = np.asarray(image.convert("RGB"))
    top, left, height, width = CROP
    rgb = np.ascontiguousarray(rgb[top : top + height, left : left + width])
    whole, tiled = savedmodel_goldens(Path(contract_path).parents[1], rgb)
    Image.fromarray(rgb).save(out_dir / "input.png")
    Image.fromarray(whole).save(out_dir / "expected.png")
    Image.fromarray(tiled).save(out_dir / "expected_tiled.png")
    document = {
        "contract": Path(contract_path).name,
        "reference": "the export's SavedModel (TensorFlow)",
        "input": "input.png",
        "expected": "expected.png",
        "expected_tiled": "expected_tiled.png",
        "tile_size": TILE[0],
        "overlap": TILE[1],
        "tolerance": TOLERANCE,
        "size": [int(rgb.shape[0]), int(rgb.shape[1])],
    }
    (out_dir / "golden.json").write_text(json.dumps(document, indent=2) + "\n")
    return document


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mobile_demo.golden")
    parser.add_argument("--model-dir", required=True, help="`python -m export` --out")
    parser.add_argument("--model", default="deblurrer_float32")
    parser.add_argument("--image", help="photo to crop (default: a sample photo)")
    parser.add_argument("--out", help="default: MODEL_DIR/golden")
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir)
    contract_path = model_dir / "tflite" / f"{args.model}.json"
    if not contract_path.is_file():
        print(f"error: {contract_path} not found", file=sys.stderr)
        return 2
    if not (model_dir / "savedmodel").is_dir():
        print(
            f"error: no SavedModel in {model_dir} (the goldens are made with it: "
            "export with --formats savedmodel tflite)",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) if args.out else model_dir / "golden"
    write_golden(contract_path, out, args.image)
    print(f"wrote the golden images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
