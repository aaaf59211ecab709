"""Deblurs image files: python -m keras_udd.deblur INPUT... --model PATH -o OUTDIR.

Inputs are image files or folders of them (JPEG, PNG, BMP, WebP, TIFF), of
any size. Each is decoded as training decodes it (`keras_udd.data.images`:
upright, grayscale/palette/16-bit to 8-bit RGB, alpha composited onto white;
the alpha channel is put back in formats that store it), deblurred in
overlapping tiles when larger than `--tile-size`, and written to OUTDIR under
the same file name and format, at the same size. `load_deblur_function` is the
one place that knows model formats; `keras_udd.evaluate` uses it too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from keras_udd import console, tiling
from keras_udd.data.images import load_rgb_and_alpha
from keras_udd.model import MIN_IMAGE_SIZE as MIN_SIZE
from keras_udd.runtime import to_uint8

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
STRIDE = 4  # Its total downsampling: tiles start at multiples of it.
DeblurFunction = Callable[[np.ndarray], np.ndarray]


# ------------------------------------------------------------------ models
def load_deblur_function(path) -> DeblurFunction:
    """Loads a deblurring model as a function from float32 [N, H, W, 3]
    images in [0, 1] to the deblurred images, same shape, in [0, 1].

    `path` is one of:
    - a `.keras` file: a trained UIDGAN (e.g. `runs/x/best.keras`; its test
      path s = G_S(E^c_B(b), mu(E^b(b))) runs) or any Keras model mapping
      [-1, 1] images to [-1, 1] images;
    - a SavedModel with a `deblur_float` signature (float32 [N, H, W, 3] in
      [0, 1]): its folder, a TF Serving base folder of numbered versions (the
      highest is used), or the output folder of `python -m export`;
    - a `.tflite` file written by `python -m export` (one image per call);
    - the name of a model shipped in the package (`text`, see
      `keras_udd.pretrained`).
    """
    from keras_udd import pretrained

    path = pretrained.resolve(str(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"--model {path}: no such file or folder")
    if os.path.isdir(path):
        return _load_saved_model(_saved_model_dir(path))
    if path.endswith(".keras"):
        return _load_keras(path)
    if path.endswith(".tflite"):
        return _load_tflite(path)
    raise ValueError(
        f"--model {path}: expected a .keras file (e.g. runs/<run>/best.keras), "
        "a SavedModel folder or a .tflite file"
    )


def _saved_model_dir(path) -> str:
    """`path`, its highest numbered version, or that of `path/savedmodel`."""
    for base in (Path(path), Path(path) / "savedmodel"):
        if (base / "saved_model.pb").is_file():
            return str(base)
        versions = [
            p
            for p in base.glob("*")
            if p.name.isdigit() and (p / "saved_model.pb").is_file()
        ]
        if versions:
            return str(max(versions, key=lambda p: int(p.name)))
    raise FileNotFoundError(f"--model {path}: no saved_model.pb in this folder")


def _load_keras(path) -> DeblurFunction:
    import keras

    import keras_udd.model  # noqa: F401  (registers UIDGAN for loading)

    return keras_function(keras.saving.load_model(path, compile=False))


def keras_function(model) -> DeblurFunction:
    """A Keras model as a deblur function on [0, 1] images: a `UIDGAN` (its
    `deblurrer` runs) or any model mapping [-1, 1] images to [-1, 1]."""
    import tensorflow as tf

    network = getattr(model, "deblurrer", model)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def run(images):
        out = network(images * 2.0 - 1.0)
        return tf.clip_by_value((tf.cast(out, tf.float32) + 1.0) / 2.0, 0.0, 1.0)

    return lambda images: run(np.asarray(images, np.float32)).numpy()


def _load_saved_model(path) -> DeblurFunction:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    if "deblur_float" not in loaded.signatures:
        raise ValueError(
            f"--model {path}: the SavedModel has no 'deblur_float' signature "
            f"(it has {sorted(loaded.signatures)})"
        )
    signature = loaded.signatures["deblur_float"]
    (name, spec), *rest = signature.structured_input_signature[1].items()
    if rest:
        raise ValueError(f"--model {path}: 'deblur_float' takes more than one input")
    one_at_a_time = spec.shape.rank and spec.shape[0] == 1

    def run(images):
        images = np.asarray(images, np.float32)
        batches = np.split(images, len(images)) if one_at_a_time else [images]
        outputs = [
            next(iter(signature(**{name: tf.constant(b)}).values())).numpy()
            for b in batches
        ]
        return np.concatenate(outputs)

    return run


def _load_tflite(path) -> DeblurFunction:
    from keras_udd.runtime import TFLiteRunner

    runner = TFLiteRunner(path, num_threads=os.cpu_count() or 1)
    return lambda images: np.concatenate([runner(image[None]) for image in images])


# ------------------------------------------------------------------ images
def read_image(path) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB float32 [H, W, 3] in [0, 1], uint8 [H, W] alpha or None), decoded
    by the training pipeline's `load_rgb_and_alpha` (16-bit: value / 257;
    alpha composited onto white, as the model saw it in training)."""
    rgb, alpha = load_rgb_and_alpha(path)
    return rgb.astype(np.float32) / 255.0, alpha


def write_image(path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Saves RGB in [0, 1], plus uint8 [H, W] `alpha` where the format stores
    it: then the colour is un-composited from white (where alpha > 0), so that
    the written image shown on white is `rgb`."""
    suffix = Path(path).suffix.lower()
    keep_alpha = alpha is not None and suffix in ALPHA_SUFFIXES
    if keep_alpha:
        a = alpha[..., None].astype(np.float32) / 255.0
        rgb = np.where(a > 0, (rgb - (1.0 - a)) / np.maximum(a, 1e-6), rgb)
    img = Image.fromarray(to_uint8(rgb))
    if keep_alpha:
        img.putalpha(Image.fromarray(alpha))
    options = {"quality": 95} if suffix in (".jpg", ".jpeg", ".webp") else {}
    img.save(path, **options)


def deblur_image(
    rgb: np.ndarray,
    fn: DeblurFunction,
    tile_size: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    progress=None,
) -> np.ndarray:
    """Deblurs an RGB [H, W, 3] image in [0, 1] of any size: sides below 16
    px are edge-padded first, images beyond `tile_size` go in tiles."""
    height, width = rgb.shape[:2]
    pad_h, pad_w = max(MIN_SIZE - height, 0), max(MIN_SIZE - width, 0)
    if pad_h or pad_w:
        rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    out = tiling.process_tiled(
        rgb, fn, tile_size, overlap, batch_size, progress, align=STRIDE
    )
    return out[:height, :width]


def list_inputs(inputs) -> list[Path]:
    """Image files among `inputs` (files, or folders scanned non-recursively)."""
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(
                p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise FileNotFoundError(
                    f"{item}: no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return files


def output_paths(files, output_dir) -> list[Path]:
    """OUTDIR/<input file name> per input; refuses name clashes and writing
    over an input."""
    outputs = [Path(output_dir) / f.name for f in files]
    seen = {}
    for src, dst in zip(files, outputs):
        if dst in seen:
            raise ValueError(f"{seen[dst]} and {src} would both be written to {dst}")
        seen[dst] = src
        if dst.resolve() == src.resolve():
            raise ValueError(f"{dst} would overwrite its input; choose another -o")
    return outputs


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m keras_udd.deblur",
        description="Deblur images with a trained UID-GAN model.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files or folders"
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a .keras model (e.g. runs/<run>/best.keras), a SavedModel folder, "
        "a .tflite file, or the name of a model shipped in keras_udd/pretrained",
    )
    parser.add_argument(
        "-o", "--output-dir", required=True, help="folder for the deblurred images"
    )
    parser.add_argument(
        "--tile-size",
        type=int,
        default=512,
        help="images larger than this are deblurred in tiles of this size "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=64,
        help="minimum overlap of neighbouring tiles, blended (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=4,
        help="tiles per model call (default: %(default)s)",
    )
    console.add_verbose_flag(parser)
    args = parser.parse_args(argv)
    if args.tile_size < MIN_SIZE:
        parser.error(f"--tile-size must be >= {MIN_SIZE}")
    if not 0 <= args.tile_overlap < args.tile_size:
        parser.error("--tile-overlap must be in [0, --tile-size)")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from tqdm import tqdm

    try:
        files = list_inputs(args.inputs)
        outputs = output_paths(files, args.output_dir)
        fn = load_deblur_function(args.model)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    failed = 0
    for src, dst in zip(tqdm(files, desc="deblur", unit="image"), outputs):
        try:
            rgb, alpha = read_image(src)
        except OSError as err:
            tqdm.write(f"skipped {src}: {err}")
            failed += 1
            continue
        height, width = rgb.shape[:2]
        count = len(
            tiling.tiles(height, width, args.tile_size, args.tile_overlap, STRIDE)
        )
        bar = tqdm(
            total=count, desc=src.name, unit="tile", leave=False, disable=count == 1
        )
        out = deblur_image(
            rgb, fn, args.tile_size, args.tile_overlap, args.batch_size, bar.update
        )
        bar.close()
        write_image(dst, out, alpha)
    print(f"{len(files) - failed} image(s) written to {args.output_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
