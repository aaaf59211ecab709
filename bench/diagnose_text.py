"""Where a text deblurrer's error is: python bench/diagnose_text.py --model M

    python bench/diagnose_text.py --model runs/learn-text/best.keras
    python bench/diagnose_text.py --model text --seed 1   # other pages

On the test pages of the text domain the model was trained on
(`keras_udd.runs.training_config`, else the `text-small` preset's data), per
blur family and overall, whole pages, PSNR (dB) of:

- `input`: the blurred page; `output`: the model's output;
- `lowpass S`: the output with its low frequencies replaced by the input's
  (output + G_S(input) - G_S(output), G_S a Gaussian of sigma S px): how much
  of the error is tone and light, which blur leaves nearly unchanged;
- `scaled A`: input + A x (output - input): whether the model's change points
  the right way but is too strong (A < 1 better) or too weak.

For a Keras model also whether its blur code mu(E^b(b)) tells the pages
apart (`code_spread`): a code that is the same for every page is unused,
and G_S then applies one correction whatever the blur. For a training
checkpoint (a UIDGAN, e.g. `runs/NAME/latest.keras`) also whether G_B uses
the code (`blur_code_use`): how much it changes sharp crops, how far apart
two random codes put its outputs, and whether E^b reads the code back; and
whether G_S does (`deblur_code_use`): how much it changes blurred crops, how
far apart two random codes put its outputs.

Writes --results (JSON). Diagnostics only; nothing here is part of the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIGMAS = (2.0, 4.0, 8.0)
SCALES = (0.25, 0.5, 0.75)


def gaussian_lowpass(images, sigma: float):
    """Separable Gaussian blur (radius 3 sigma) of [N, H, W, C] images,
    borders reflected."""
    import numpy as np

    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = np.asarray(images, np.float64)
    for axis in (1, 2):
        size = out.shape[axis]
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        out = sum(
            w * np.take(padded, np.arange(i, i + size), axis=axis)
            for i, w in enumerate(taps)
        )
    return out.astype(np.float32)


def page_psnr(images, sharp):
    """PSNR (dB, `keras_udd.metrics.psnr`) of each [H, W, C] image, clipped
    to [0, 1], against its sharp page."""
    import numpy as np

    from keras_udd.metrics import psnr

    return psnr(np.clip(images, 0, 1), sharp).numpy()


def variants(blurred, output) -> dict:
    """{name: images} of the diagnostic variants of `output`."""
    found = {"input": blurred, "output": output}
    for sigma in SIGMAS:
        found[f"lowpass {sigma:g}"] = (
            output - gaussian_lowpass(output, sigma) + gaussian_lowpass(blurred, sigma)
        )
    for a in SCALES:
        found[f"scaled {a:g}"] = blurred + a * (output - blurred)
    return found


def code_spread(codes, families) -> dict:
    """How much the blur codes `codes` ([pages, dims], mu(E^b(b)) of each
    page) vary: `over_pages` (standard deviation over the pages, mean over
    the dims), `between_families` (the same of the families' mean codes)
    and `by_family` (each family's mean code)."""
    import numpy as np

    codes = np.asarray(codes, np.float64)
    by_family = {
        f: codes[[g == f for g in families]].mean(0) for f in dict.fromkeys(families)
    }
    means = np.stack(list(by_family.values()))
    return {
        "over_pages": round(float(codes.std(0).mean()), 4),
        "between_families": round(float(means.std(0).mean()), 4),
        "by_family": {f: [round(float(x), 4) for x in m] for f, m in by_family.items()},
    }


def random_codes(model, n: int, seed: int):
    """Two float32 `[n, blur_dim]` draws of z ~ N(0, I) for UIDGAN `model`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (n, model.config.blur_dim)
    return tuple(rng.normal(size=shape).astype(np.float32) for _ in range(2))


def decode(model, decoder, h, z, image):
    """`decoder` (G_S's or G_B's branch of `model`) on the shared features `h`
    and code `z`, adding to `image` if the generators are residual."""
    import numpy as np

    inputs = (h, z, image) if model.config.residual_output else (h, z)
    return np.asarray(decoder(inputs), np.float32)


def blur_code_use(model, sharp, seed=0) -> dict:
    """Whether the G_B of UIDGAN `model` blurs according to its blur code, on
    `sharp` crops ([N, H, W, 3] in [-1, 1], H and W multiples of 4), with
    two random codes z1, z2 ~ N(0, I) per crop: `change` mean |G_B(s, z1) -
    s|, `codes_apart` mean |G_B(s, z1) - G_B(s, z2)|, `read_back` mean
    |mu(E^b(G_B(s, z1))) - z1| (E|z| = 0.80: nothing read back) and
    `read_spread` the spread of those mu over the crops (as `code_spread`'s
    `over_pages`)."""
    import numpy as np

    sharp = np.asarray(sharp, np.float32)
    z1, z2 = random_codes(model, len(sharp), seed)
    h = model.generator_shared(model.content_shared(model.content_encoder_sharp(sharp)))
    b1, b2 = (decode(model, model.decoder_blurred, h, z, sharp) for z in (z1, z2))
    read = np.asarray(model.blur_encoder(b1)[0], np.float32)
    return {
        "change": round(float(np.abs(b1 - sharp).mean()), 5),
        "codes_apart": round(float(np.abs(b1 - b2).mean()), 5),
        "read_back": round(float(np.abs(read - z1).mean()), 4),
        "read_spread": round(float(read.std(0).mean()), 4),
    }


def deblur_code_use(model, blurred, seed=0) -> dict:
    """Whether the G_S of UIDGAN `model` deblurs according to the blur code,
    on `blurred` crops ([N, H, W, 3] in [-1, 1], H and W multiples of 4):
    `change` mean |G_S(b, mu(E^b(b))) - b| (the deblurrer's change),
    `codes_apart` mean |G_S(b, z1) - G_S(b, z2)| for two random codes z1,
    z2 ~ N(0, I) per crop (as `blur_code_use`'s)."""
    import numpy as np

    blurred = np.asarray(blurred, np.float32)
    z1, z2 = random_codes(model, len(blurred), seed)
    content = model.content_shared(model.content_encoder_blurred(blurred))
    h = model.generator_shared(content)

    def deblur(z):
        return decode(model, model.decoder_sharp, h, z, blurred)

    own = deblur(np.asarray(model.blur_encoder(blurred)[0], np.float32))
    return {
        "change": round(float(np.abs(own - blurred).mean()), 5),
        "codes_apart": round(float(np.abs(deblur(z1) - deblur(z2)).mean()), 5),
    }


def diagnose(fn, data_cfg, split="test", blur_encoder=None) -> dict:
    """{"psnr": mean PSNR of every variant, overall and by blur family}, and
    with `blur_encoder` (E^b of a Keras model) {"blur_code": `code_spread`}."""
    import numpy as np

    from keras_udd.data import make_test_examples
    from keras_udd.data.pipeline import kernel_labels
    from keras_udd.metrics import to_unit_range

    labels = kernel_labels(data_cfg, split)
    values: dict[str, dict[str, list]] = {}
    codes, code_families = [], []
    for batch in make_test_examples(data_cfg, split=split):
        blurred = to_unit_range(batch["blurred"]).numpy()
        sharp = to_unit_range(batch["sharp"]).numpy()
        output = fn(blurred)
        families = [labels.family[k] for k in batch["kernel_index"].numpy()]
        for name, images in variants(blurred, output).items():
            scores = page_psnr(images, sharp)
            for family, score in zip(families, scores):
                for group in ("all", family):
                    values.setdefault(group, {}).setdefault(name, []).append(score)
        if blur_encoder is not None:
            codes.extend(np.asarray(blur_encoder(batch["blurred"])[0], np.float32))
            code_families.extend(families)
    report = {
        "psnr": {
            group: {"pages": len(v["input"])}
            | {name: round(float(np.mean(s)), 2) for name, s in v.items()}
            for group, v in values.items()
        }
    }
    if codes:
        report["blur_code"] = code_spread(codes, code_families)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .keras model or name")
    parser.add_argument("--split", default="test", choices=("test", "unseen"))
    parser.add_argument(
        "--seed",
        type=int,
        help="render the text domain with this seed (other pages; default: the "
        "model's training seed)",
    )
    parser.add_argument(
        "--results", default=str(ROOT / "bench" / "results" / "diagnose_text.json")
    )
    args = parser.parse_args(argv)

    from keras_udd import pretrained
    from keras_udd.data import make_test_examples
    from keras_udd.deblur import keras_function, load_deblur_function
    from keras_udd.export import verify
    from keras_udd.model import UIDGAN
    from keras_udd.presets import preset_config
    from keras_udd.runs import training_config

    data_cfg = (training_config(args.model) or preset_config("text-small")).data
    if args.seed is not None:
        data_cfg.seed = args.seed
    encoder = model = None
    if pretrained.resolve(args.model).endswith(".keras"):
        model, deblurrer = verify.load_model(args.model)  # Its E^b too.
        fn, encoder = keras_function(deblurrer), deblurrer.blur_encoder
    else:
        fn = load_deblur_function(args.model)
    report = diagnose(fn, data_cfg, args.split, encoder)
    if isinstance(model, UIDGAN):  # A training checkpoint.
        crops = make_test_examples(data_cfg, 16, split=args.split, whole=False)
        crop = next(iter(crops))
        report["blur_code_use"] = blur_code_use(model, crop["sharp"])
        report["deblur_code_use"] = deblur_code_use(model, crop["blurred"])
        print(f"G_B and the blur code, on 16 sharp crops: {report['blur_code_use']}")
        print(
            "G_S and the blur code, on their 16 blurred crops: "
            f"{report['deblur_code_use']}"
        )
    names = list(report["psnr"]["all"])[1:]
    print("| family | pages | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for group, row in report["psnr"].items():
        cells = " | ".join(f"{row[n]:.2f}" for n in names)
        print(f"| {group} | {row['pages']} | {cells} |")
    if "blur_code" in report:
        code = report["blur_code"]
        print(
            f"blur code mu(E^b(b)): standard deviation {code['over_pages']} over "
            f"pages, {code['between_families']} between the families' means"
        )
    Path(args.results).write_text(
        json.dumps(
            {"model": args.model, "split": args.split, "seed": data_cfg.seed, **report},
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
