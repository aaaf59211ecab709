"""Golden images for the Android instrumentation test, from mobile_demo.contract.

    python -m mobile_demo.golden --model-dir EXPORT_DIR [--image PHOTO]
        [--model deblurrer_float32] [--out EXPORT_DIR/golden]

Writes `input.png` (a crop of PHOTO, default matplotlib's sample photo of
Grace Hopper), `expected.png` (it deblurred whole by the Python reference
pipeline: contract preprocessing -> ai_edge_litert -> contract
postprocessing), `expected_tiled.png` (the same in 128-px tiles overlapping
by 32, to check the app's tiling) and `golden.json` (file names, tile
settings and the tolerance in uint8 levels). The Android app's Gradle task
`copyDeblurGolden` copies this folder into the test's assets; the goldens
belong to the model they were made with, so regenerate them after each
export.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mobile_demo.contract import LiteRTDeblurrer

TOLERANCE = 2  # uint8 levels: ARM vs x86 float rounding in XNNPACK.
TILE = (128, 32)  # tile size, overlap of the tiled golden.
CROP = (40, 120, 201, 263)  # top, left, height, width: odd sizes.


def sample_photo():
    from matplotlib import cbook

    return cbook.get_sample_data("grace_hopper.jpg")


def write_golden(contract_path, out_dir, image_path=None):
    """Writes the golden files to `out_dir`; returns golden.json's content."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Image.open(image_path or sample_photo()) as image:
        rgb = np.asarray(image.convert("RGB"))
    top, left, height, width = CROP
    rgb = np.ascontiguousarray(rgb[top : top + height, left : left + width])
    deblurrer = LiteRTDeblurrer(contract_path)
    Image.fromarray(rgb).save(out_dir / "input.png")
    Image.fromarray(deblurrer.deblur(rgb)).save(out_dir / "expected.png")
    tiled = deblurrer.deblur(rgb, *TILE)
    Image.fromarray(tiled).save(out_dir / "expected_tiled.png")
    document = {
        "contract": Path(contract_path).name,
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
    out = Path(args.out) if args.out else model_dir / "golden"
    write_golden(contract_path, out, args.image)
    print(f"wrote the golden images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
