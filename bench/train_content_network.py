"""Trains the perceptual term's content network offline, on sharp text pages.

    python bench/train_content_network.py --steps 3000 --threads 2 \\
        --output runs/content-network/text.npz
    python train.py --preset text-small --perceptual-network content \\
        --content-network-weights runs/content-network/text.npz ...

The paper's perceptual term compares ImageNet VGG19 features, which cannot
be had offline. This is the stand-in the issue "Real pages" allows: a small
VGG-like network (`keras_udd.perceptual.ContentNetwork`) trained on the
domain's own images to tell what is on them. Its task: from a sharp
photographed page of the `text` domain's sharp pool (no blurred page, no
pair), find the ink the renderer laid out before the photographed look
(`DocumentRenderer.layout`), per pixel (binary cross-entropy on the ink
coverage). A head (3x3 conv, 2x upsampling, 3x3 conv, 1x1 logits) reads
the network's features and is dropped afterwards; the features then
describe strokes more than paper, light or noise.

Writes the network's weights (.npz, `--content-network-weights`) and a JSON
record beside it: the held-out validation pages' ink loss and F1 (ink where
coverage > 0.5) before and after training, the flags, the CPU and minutes,
and the `prices` of changes: on the validation pairs, the mean squared
change of the network's features and of the pixels, and their ratio, for
undoing the real blur (sharp vs blurred page), sharpening a sharp or a
blurred page (x + 0.5 (x - Gaussian(x, 1 px))), a tone shift (+0.05) and
noise (sigma 0.05). The perceptual weight that prices undoing the blur as
the pixel term at weight W does is W / the blur's ratio.
`--prices-only` recomputes them for the existing --output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.learn_text import machine, portable, set_threads  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="runs/content-network/text.npz")
    parser.add_argument("--pages", type=int, default=512, help="sharp pages")
    parser.add_argument(
        "--val-pages", type=int, default=32, help="validation pages scored"
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32, help="crops per step")
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=0, help="0: TF's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--prices-only",
        action="store_true",
        help="only add the prices of changes to the record of --output",
    )
    args = parser.parse_args(argv)
    if not args.output.endswith(".npz"):
        parser.error(f"--output must end with .npz, got {args.output!r}")
    for flag in ("pages", "val_pages", "steps", "batch", "crop_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    return args


def render(ids, renderer) -> list[tuple[np.ndarray, np.ndarray]]:
    """(page in [-1, 1] float32 [H, W, 3], ink in [0, 1] float32 [H, W, 1])."""

    def one(source_id):
        index = int(source_id.rsplit("/", 1)[-1])
        page = renderer.render(index).astype(np.float32) / 127.5 - 1.0
        ink = renderer.layout(index).astype(np.float32)[..., None] / 255.0
        return page, ink

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(one, ids))


def crops(pages, rng, batch: int, size: int):
    """`batch` random size x size crops of random pages: (images, inks)."""
    images, inks = [], []
    for k in rng.integers(len(pages), size=batch):
        page, ink = pages[k]
        y = rng.integers(page.shape[0] - size + 1)
        x = rng.integers(page.shape[1] - size + 1)
        images.append(page[y : y + size, x : x + size])
        inks.append(ink[y : y + size, x : x + size])
    return np.stack(images), np.stack(inks)


def ink_model(network):
    """The network and the ink head as one Keras model (image -> ink logits)."""
    import keras
    from keras import layers

    image = keras.Input((None, None, 3))
    x = layers.ReLU()(network(image))
    pools = sum(w is None for w in network.widths)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(2**pools)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    return keras.Model(image, layers.Conv2D(1, 1)(x))


def ink_scores(model, pages) -> dict:
    """Mean binary cross-entropy and ink F1 over whole pages."""
    import keras

    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    losses, hits, predicted, actual = [], 0.0, 0.0, 0.0
    for page, ink in pages:
        h, w = (s // 4 * 4 for s in page.shape[:2])
        logits = model(page[None, :h, :w])
        losses.append(float(bce(ink[None, :h, :w], logits)))
        guess, truth = np.asarray(logits)[0] > 0, ink[:h, :w] > 0.5
        hits += float(np.sum(guess & truth))
        predicted += float(np.sum(guess))
        actual += float(np.sum(truth))
    return {
        "bce": round(float(np.mean(losses)), 4),
        "ink_f1": round(2 * hits / max(predicted + actual, 1.0), 4),
    }


def prices(network, data_cfg, pages: int) -> dict:
    """Feature vs pixel mean squared change of a few kinds of change, over
    `pages` validation pairs (see the module docstring)."""
    from bench.diagnose_text import gaussian_lowpass
    from keras_udd.data import make_test_dataset

    def sharpened(x):
        return x + 0.5 * (x - gaussian_lowpass(x, 1.0))

    def features(x):
        return np.asarray(network(x), np.float64)

    rng = np.random.default_rng(0)
    rows = {}
    for blurred, sharp in make_test_dataset(data_cfg, split="val").take(pages):
        b, s = np.asarray(blurred), np.asarray(sharp)
        h, w = (n // 4 * 4 for n in s.shape[1:3])
        b, s = b[:, :h, :w], s[:, :h, :w]
        fs, fb = features(s), features(b)  # Every change starts from s or b.
        changes = {
            "undo_blur": (b, fb, s, fs),
            "sharpen_sharp": (s, fs, sharpened(s), None),
            "sharpen_blurred": (b, fb, sharpened(b), None),
            "tone": (s, fs, s + 0.05, None),
            "noise": (s, fs, s + rng.normal(0, 0.05, s.shape).astype(np.float32), None),
        }
        for name, (x, fx, y, fy) in changes.items():
            fy = features(y) if fy is None else fy
            rows.setdefault(name, []).append(
                (np.mean((fx - fy) ** 2), np.mean((np.float64(x) - y) ** 2))
            )
    out = {}
    for name, values in rows.items():
        feature, pixel = np.mean(values, axis=0)
        out[name] = {
            "feature_mse": round(float(feature), 6),
            "pixel_mse": round(float(pixel), 6),
            "ratio": round(float(feature / pixel), 4),
        }
    return out


def add_prices(args, data_cfg) -> None:
    from keras_udd.perceptual import ContentNetwork

    network = ContentNetwork()
    network(np.zeros((1, 8, 8, 3), np.float32))
    network.load_pretrained(args.output)
    path = Path(args.output).with_suffix(".json")
    record = json.loads(path.read_text())
    record["prices"] = prices(network, data_cfg, args.val_pages)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["prices"], indent=2))


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    set_threads(args.threads)
    import keras

    from keras_udd.data.domains import build_text, text_renderer
    from keras_udd.perceptual import ContentNetwork
    from keras_udd.presets import preset_config

    start = time.monotonic()
    keras.utils.set_random_seed(args.seed)
    data_cfg = preset_config("text-small").data
    if args.prices_only:
        add_prices(args, data_cfg)
        return 0
    data, renderer = build_text(data_cfg), text_renderer(data_cfg)
    val_ids = data.val.ids[: args.val_pages]
    print(f"Rendering {args.pages} sharp pages and {len(val_ids)} validation pages")
    train_pages = render(data.sharp.ids[: args.pages], renderer)
    val_pages = render(val_ids, renderer)

    network = ContentNetwork(name="content_network")
    network.trainable = True
    model = ink_model(network)
    before = ink_scores(model, val_pages)
    print(f"validation pages, untrained: {before}")
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(args.seed)
    bar = keras.utils.Progbar(args.steps, stateful_metrics=["loss"])
    for step in range(args.steps):
        images, inks = crops(train_pages, rng, args.batch, args.crop_size)
        loss = model.train_on_batch(images, inks)
        bar.update(step + 1, [("loss", float(loss))])
    after = ink_scores(model, val_pages)
    print(f"validation pages, trained: {after}")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    network.save_pretrained(output)
    record = {
        "command": ["python", *map(portable, sys.argv)],
        "data": f"text-small preset's text domain: the first {args.pages} pages "
        f"of the sharp pool (training), {len(val_ids)} validation pages (scores)",
        "validation_untrained": before,
        "validation_trained": after,
        "prices": prices(network, data_cfg, args.val_pages),
        "minutes": round((time.monotonic() - start) / 60, 1),
        "machine": machine(),
    }
    output.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"Wrote {output} and {output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
