"""Images for verification and int8 calibration: synthetic, from a folder or
from the model's own training domain.

All functions return lists of float32 [1, H, W, 3] arrays in [0, 1] (RGB),
reproducible from `seed`.
"""

import numpy as np
from PIL import Image, ImageDraw

from keras_udd import blur
from keras_udd.runtime import signed_to_uint8


def synthetic_image(height, width, rng):
    """A blurred picture of random shapes, strokes and text, [1, H, W, 3]."""
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    for _ in range(max(6, height * width // 200)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, x1 = sorted(rng.integers(-width // 4, width + width // 4, 2))
        y0, y1 = sorted(rng.integers(-height // 4, height + height // 4, 2))
        kind = rng.integers(4)
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif kind == 2:
            draw.line((x0, y0, x1, y1), fill=color, width=int(rng.integers(1, 4)))
        else:
            draw.text((x0, y0), "deblur 0123", fill=color)
    array = np.asarray(image, np.float32) / 255.0
    sigma = rng.uniform(0.6, 2.0)
    array = blur.blur_image(array, blur.gaussian_kernel(9, sigma))
    return np.clip(array, 0.0, 1.0)[None]


def synthetic_images(sizes, seed=0):
    """One synthetic blurred image per `(height, width)` in `sizes`."""
    rng = np.random.default_rng(seed)
    return [synthetic_image(h, w, rng) for h, w in sizes]


def folder_crops(directory, count, size, seed=0):
    """`count` random `size` x `size` crops of the images in `directory`
    (cycling through the files; images smaller than `size` are enlarged).
    Found and decoded as training does (`keras_udd.data.images`: unreadable
    files skipped with a warning, 16-bit, alpha and EXIF orientation)."""
    from keras_udd.data.images import load_rgb, scan_folder

    files = scan_folder(directory, "--calibration-dir").files
    rng = np.random.default_rng(seed)
    return [
        random_crop(load_rgb(files[i % len(files)]), size, rng) for i in range(count)
    ]


def random_crop(image, size, rng, width=None):
    """A random `size` x `size` (or `size` x `width`) crop of a uint8
    [H, W, 3] image, enlarged first (bicubic) if smaller, [1, H, W, 3] float32
    in [0, 1]."""
    height, width = size, width or size
    scale = max(height / image.shape[0], width / image.shape[1])
    if scale > 1:
        new_size = (
            max(width, round(image.shape[1] * scale)),
            max(height, round(image.shape[0] * scale)),
        )
        image = np.asarray(Image.fromarray(image).resize(new_size, Image.BICUBIC))
    array = np.asarray(image, np.float32) / 255.0
    top = rng.integers(0, array.shape[0] - height + 1)
    left = rng.integers(0, array.shape[1] - width + 1)
    return array[None, top : top + height, left : left + width]


def domain_pages(data_config, count):
    """The first `count` blurred validation images of a training run's
    domain (`data_config`: its DataConfig), as uint8 [H, W, 3] arrays."""
    from keras_udd.data import make_test_dataset

    pages = [
        signed_to_uint8(blurred[0])
        for blurred, _ in make_test_dataset(data_config, split="val").take(count)
    ]
    if not pages:
        raise ValueError("the training config has no validation images (val_images 0)")
    return pages


def domain_crops(data_config, count, size, seed=0):
    """`count` random `size` x `size` crops of the domain's blurred
    validation images (see `domain_pages`)."""
    pages = domain_pages(data_config, count)
    rng = np.random.default_rng(seed)
    return [random_crop(pages[i % len(pages)], size, rng) for i in range(count)]


def domain_images(data_config, sizes, seed=0):
    """One crop of the domain's blurred validation images per `(height,
    width)` in `sizes`, each from another image where there are enough."""
    pages = domain_pages(data_config, len(sizes))
    rng = np.random.default_rng(seed)
    return [
        random_crop(pages[i % len(pages)], h, rng, width=w)
        for i, (h, w) in enumerate(sizes)
    ]


def readable_domain(trained):
    """The DataConfig of `trained` (a model's training Config, or None) if its
    validation images can be read on this machine, else None, printing why
    (e.g. `--val-images 0`, or the run's folders or face data are elsewhere):
    export then verifies and calibrates on synthetic images."""
    if trained is None:
        return None
    try:
        domain_pages(trained.data, 1)
    except (OSError, ValueError) as err:
        print(
            f"note: the model's {trained.data.domain} validation images cannot be "
            f"read here ({err}); using synthetic images",
            flush=True,
        )
        return None
    return trained.data


def describe(directory=None, data_config=None):
    """What `calibration_images` (and the verifier) take their images from."""
    if directory is not None:
        return str(directory)
    if data_config is not None:
        return f"{data_config.domain} validation images"
    return "synthetic images"


def calibration_images(directory=None, count=32, size=128, seed=0, data_config=None):
    """Representative blurred inputs for int8: crops of `directory` when
    given, else of the validation images of `data_config` (the model's
    training data) when given, else synthetic images."""
    if directory is not None:
        return folder_crops(directory, count, size, seed)
    if data_config is not None:
        return domain_crops(data_config, count, size, seed)
    return synthetic_images([(size, size)] * count, seed)
