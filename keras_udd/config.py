"""The one configuration object: the paper's (reference code's) defaults.

`Config` groups three sections: `ModelConfig` (networks, losses, optimizers),
`DataConfig` (domain and preprocessing) and `TrainConfig` (the run). The
command line of `train.py` is derived from these fields, and every run saves
`Config.to_dict()` as JSON beside its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields

PERCEPTUAL_NETWORKS = ("vgg19", "lowpass", "content")


def opt(default, help: str):
    """A config field: its default and its help text (the `--flag`'s help)."""
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    """Networks, loss weights and optimizer settings (reference defaults).

    A loss weight of 0 turns the term off: it is not computed (nor the passes
    only it needs, e.g. the cycle's with `cycle_weight=0`) or logged, and the
    networks that only it needs are not built (`perceptual_weight=0` and
    `random_perceptual_weight=0` build no perceptual network;
    `random_branch=False` builds no D_S2 / D_B2, `content_adversarial_weight=0`
    no D_c). The image discriminators are built and trained whatever
    `adversarial_weight` is; at 0 the E/G step does not run them.
    """

    # Architecture.
    content_filters: int = opt(64, "E^c first conv width; doubled twice (-> 256).")
    content_res_blocks: int = opt(3, "Residual blocks per E^c before the shared one.")
    blur_dim: int = opt(8, "Size of the blur code z = E^b(b).")
    blur_filters: int = opt(64, "E^b first conv width (64 -> 128 -> 192 -> 256).")
    generator_res_blocks: int = opt(3, "Residual blocks per G branch after concat z.")
    disc_filters: int = opt(64, "PatchGAN first conv width (64, 128, 256, 512).")
    disc_layers: int = opt(4, "Strided 4x4 convs per scale.")
    disc_scales: int = opt(3, "Scales of the multi-scale discriminators.")
    content_noise_stddev: float = opt(1.0, "Training-time noise on the content code.")
    residual_output: bool = opt(
        False,
        "Not the reference's: G_S and G_B add their tanh output to the image "
        "they translate (a global skip whose last conv starts at zero, so "
        "both start as the identity and keep the page's tone).",
    )
    logvar_bound: float = opt(
        0.0,
        "Not the reference's: E^b's log-variance becomes B * tanh(logvar / B) "
        "before the blur code and the KL term use it, so exp(logvar) cannot "
        "overflow (0: unbounded, as the reference).",
    )
    # Losses.
    gan_mode: str = opt("nonsaturating", '"nonsaturating" (log-loss) or "lsgan".')
    adversarial_weight: float = opt(
        1.0,
        "Weight of the GAN terms (D_S, D_B and the random branch).",
    )
    blurred_adversarial_factor: float = opt(
        1.0,
        "Not the reference's: G_B's GAN term (against D_B) counts this many "
        "times the adversarial weight (1: as the reference).",
    )
    cycle_weight: float = opt(10.0, "Weight of L1(s, s_hat) + L1(b, b_hat).")
    kl_weight: float = opt(0.01, "Weight of the KL term on the blur code.")
    perceptual_weight: float = opt(
        0.1,
        "Weight of ||VGG(s_b) - VGG(b)||^2 (too high keeps s_b blurred, too low"
        " lets artifacts through).",
    )
    self_recon_weight: float = opt(
        10.0,
        "Weight of the self-reconstruction L1 terms (reference-code extra).",
    )
    identity_weight: float = opt(
        0.0,
        "Not the reference's: weight of L1(s, G_S(E^c_B(s), mu(E^b(s)))), "
        "CycleGAN's identity term: the deblurring path leaves sharp images as "
        "they are (0: off, as the reference).",
    )
    content_adversarial_weight: float = opt(
        0.0,
        "Not the reference's (DRIT's, which UID-GAN builds on): weight of the "
        "E/G term against a content discriminator D_c that tells E^c_S's "
        "codes from E^c_B's, so that a blurred image's content code cannot "
        "carry its blur (0: off, no D_c, as the reference).",
    )
    random_branch: bool = opt(True, "Reference-code extra: z_r ~ N(0, I), D_S2, D_B2.")
    latent_weight: float = opt(
        10.0,
        "Weight of the latent regression L1(E^b(G_B(., z_r)), z_r) (random "
        "branch only).",
    )
    random_perceptual_weight: float = opt(
        0.1,
        "Weight of the perceptual term on G_S(E^c_B(b), z_r) vs b (random "
        "branch only).",
    )
    perceptual_network: str = opt(
        "vgg19",
        "Feature network of the perceptual terms: 'vgg19' (the paper's; see "
        "--vgg-weights), 'lowpass' (--lowpass-factor average pooling: no "
        "weights, for training offline) or 'content' (a small network trained "
        "offline on the domain's sharp images: --content-network-weights).",
    )
    lowpass_factor: int = opt(8, '"lowpass": average pooling of this many pixels.')
    content_network_weights: str | None = opt(
        None,
        '"content": the .npz that bench/train_content_network.py writes (None: '
        "random weights; for tests).",
    )
    vgg_weights: str | None = opt(
        "imagenet",
        "VGG19 weights of the perceptual loss: 'imagenet' (downloaded once to "
        "~/.keras/models), the path of a local "
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, or 'none' (random "
        "weights; for offline smoke tests).",
    )
    vgg_layer: str = opt(
        "block3_conv3",
        "VGG19 layer of the perceptual features, tapped before its ReLU.",
    )
    learning_rate: float = opt(2e-4, "Adam learning rate of every network.")
    beta_1: float = opt(0.5, "Adam beta_1.")
    beta_2: float = opt(0.999, "Adam beta_2.")
    adam_epsilon: float = opt(
        1e-7,
        "Adam epsilon, Keras' (added to sqrt(v) before the bias correction): "
        "it acts as PyTorch's epsilon / sqrt(1 - beta_2^t) at step t. 1e-8 "
        "matches the reference's PyTorch 1e-8 once t >> 1 / (1 - beta_2) "
        "(1e-7: Keras' default, which the shipped model was trained with).",
    )
    weight_decay: float = opt(1e-4, "L2 added to gradients, as PyTorch's Adam.")
    d_steps_per_g_step: int = opt(2, "D every step, E/G every second step.")
    decay_start_fraction: float = opt(0.5, "Constant lr, then linear decay to 0.")

    def __post_init__(self):
        if self.gan_mode not in ("nonsaturating", "lsgan"):
            raise ValueError(
                f"gan_mode must be 'nonsaturating' or 'lsgan', got {self.gan_mode!r}"
            )
        if self.perceptual_network not in PERCEPTUAL_NETWORKS:
            raise ValueError(
                "perceptual_network must be 'vgg19', 'lowpass' or 'content', got "
                f"{self.perceptual_network!r}"
            )
        if self.d_steps_per_g_step < 1:
            raise ValueError("d_steps_per_g_step must be >= 1")
        for name in (
            "adversarial_weight",
            "blurred_adversarial_factor",
            "cycle_weight",
            "kl_weight",
            "perceptual_weight",
            "self_recon_weight",
            "identity_weight",
            "content_adversarial_weight",
            "latent_weight",
            "random_perceptual_weight",
            "weight_decay",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class DataConfig:
    """Which images to train on and how to preprocess them (reference sizes)."""

    domain: str = opt(
        "text",
        "Image domain: 'text' (synthetic, offline), 'face' (CelebA via TFDS or "
        "--data-dir) or 'folder' (--sharp-dir, --blur-dir[, --test-dir]).",
    )
    data_dir: str | None = opt(None, "face: a folder of images instead of TFDS.")
    sharp_dir: str | None = opt(None, "folder: real sharp images.")
    blur_dir: str | None = opt(None, "folder: real blurred images.")
    test_dir: str | None = opt(None, "folder: real pairs (validation and test).")
    load_size: int = opt(144, "Shorter side resized to this (bicubic).")
    crop_size: int = opt(128, "Random training crop (val/test pairs: whole images).")
    batch_size: int = opt(2, "Global batch size (split across replicas).")
    crops_per_image: int = opt(
        1,
        "Training crops taken from each loaded image (from that many images in "
        "turn): a costly source, such as a rendered page, feeds more crops.",
    )
    test_images: int = opt(64, "Held-out test pairs (keras_udd.evaluate).")
    val_images: int = opt(
        64,
        "Validation pairs (picks best.keras), disjoint from test.",
    )
    seed: int = opt(0, "Random seed of the data pipeline and of the run.")
    deterministic: bool = opt(False, "tf.data determinism (slower when True).")
    random_flip: bool = opt(True, "Random horizontal flip of training crops.")
    text_pool_size: int = opt(
        20000,
        "text: rendered pages (test-images test, val-images validation, then a "
        "sharp and a blurred half).",
    )
    unseen_images: int = opt(
        64,
        "text: pages set in fonts that training never sees (the unseen-fonts "
        "split of keras_udd.evaluate).",
    )
    text_pages: str = opt(
        "document",
        "text: 'document' (paragraphs, headings, lists, inline monospace and "
        "code in the pinned fonts, x-height 5-14 px) or 'lines' (the earlier "
        "domain: lines of random words, one font per page, sizes relative to "
        "the page, --text-tones).",
    )
    text_look: str = opt(
        "photo",
        "text, document pages: 'photo' (photographed or scanned: paper tone and "
        "texture, uneven light, ink bleed, rotation, perspective, noise, JPEG) "
        "or 'clean' (black ink on white).",
    )
    font_dir: str | None = opt(
        None,
        "text: a folder of .ttf/.otf/.pfb fonts instead of the pinned set "
        "(every fifth file, sorted, is held out for the unseen-fonts split).",
    )
    text_tones: str = opt(
        "varied",
        "text, lines pages: ink and paper tones: 'varied' (inks 0-90, papers "
        "215-255, tinted) or 'document' (ink 0-30 on paper 235-255).",
    )
    tfds_dir: str | None = opt(
        None,
        "face: TFDS data_dir (default ~/tensorflow_datasets).",
    )
    # Synthetic blur (text, face; folder test pairs without test_dir).
    blur_families: str = opt(
        "auto",
        "Synthetic blur: 'shake' (the paper's: DeblurGAN camera shake scaled "
        "to --blur-kernel-size, --motion-blur-prob; the rest Gaussian/defocus), "
        "'photo' (the blur families of real photos, each image its own kernel: "
        "nearly sharp, Gaussian sigma 0.5-2, defocus radius 0.5-4, linear "
        "motion 3-21 px, camera shake 5-21 px) or 'auto' (photo for text, "
        "shake otherwise).",
    )
    photo_families: str = opt(
        "all",
        "photo: the families of the training blur, comma-separated from sharp, "
        "gaussian, defocus, linear, shake (their shares renormalised), or 'all'. "
        "For blur of one known kind; the held-out splits keep every family.",
    )
    blur_kernel_size: int = opt(
        31,
        "Kernel side in px (shake: paths of the 64-px canvas scaled by k/64; "
        "photo: at least 23).",
    )
    blur_kernel_bank: int = opt(1000, "Seeded kernels drawn per blurred image.")
    blur_kernel_file: str | None = opt(
        None,
        ".npy [n, k, k]: read if present, else saved.",
    )
    motion_blur_prob: float = opt(
        0.8,
        "shake: camera shake; the rest Gaussian/defocus evenly.",
    )
    noise_std: float = opt(0.01, "Additive noise std ~ U(0, noise_std), [0, 1] units.")
    jpeg_prob: float = opt(0.0, "Chance of JPEG re-compression of a blurred image.")
    jpeg_quality_min: int = opt(60, "JPEG quality ~ U[jpeg_quality_min, 95].")
    sharp_noise: bool = opt(
        False,
        "Synthetic blur: the sharp training images get the blurred ones' noise "
        "and JPEG too (--noise-std, --jpeg-prob), as sharp photos have, so the "
        "two pools differ by blur only.",
    )


@dataclass
class TrainConfig:
    """One training run."""

    epochs: int = opt(
        100,
        "Training epochs (validation, checkpoints and samples after each).",
    )
    steps_per_epoch: int = opt(
        1000,
        "Discriminator steps per epoch (E/G update every --d-steps-per-g-step "
        "of them).",
    )
    output_dir: str | None = opt(
        None,
        "Run folder for checkpoints, logs and samples (default: "
        "runs/<domain>-<timestamp>). Rerun with the same folder and flags to "
        "resume.",
    )
    strategy: str = opt(
        "auto",
        "tf.distribute strategy: 'auto' (mirrored when more than one GPU is "
        "visible, else one device), 'default' (one device), 'mirrored' (all "
        "local GPUs) or 'multiworker' (MultiWorkerMirroredStrategy, TF_CONFIG).",
    )
    jit_compile: bool = opt(
        False,
        "XLA-compile the train step, on a single device only: refused with a "
        "warning under --strategy mirrored/multiworker (and auto with several "
        "GPUs), where TF cannot compile the step's cross-replica all-reduce. "
        "Off by default; `python bench/train_step.py [--preset NAME] --jit` "
        "and `--no-jit` compare the two on a machine.",
    )
    mixed_precision: str = opt(
        "none",
        "Compute in float16 or bfloat16, variables in float32: 'float16' (GPUs;"
        " dynamic loss scaling by a LossScaleOptimizer, saved with the run), "
        "'bfloat16' (TPUs, recent GPUs and CPUs; no scaling needed) or 'none'. "
        "Losses and the output tanh stay float32, and exports are float32.",
    )
    collective_timeout_seconds: float = opt(
        120.0,
        "--strategy multiworker: a collective operation that waits longer than "
        "this (a worker hangs) stops every worker with an error instead of "
        "blocking (0: wait forever). It must exceed the longest time one worker "
        "runs ahead of another (tracing the first steps, epoch-end validation); "
        "a killed worker is noticed sooner, by gRPC.",
    )
    seed: int = opt(0, "Random seed of the data pipeline and of the run.")
    sample_images: int = opt(4, "Fixed validation images in the sample grids.")
    val_ocr_images: int = opt(
        0,
        "Validation pages OCR-scored per epoch (val_cer; 0: off).",
    )
    backup_freq: int = opt(0, "Also back up every N steps in an epoch (0: epoch ends).")
    log_freq: int = opt(50, "TensorBoard loss scalars every N steps (0: per epoch).")
    time_limit_minutes: float = opt(
        0.0,
        "Stop with a backup after this long (0: none).",
    )


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def section_from_dict(section: str, values: dict):
    """One section of the config ("model", "data" or "train") from
    `Config.to_dict`'s form; a setting this version does not know (e.g. from
    a run of another version) is a ValueError naming it."""
    kind = SECTIONS[section]
    unknown = set(values) - {f.name for f in fields(kind)}
    if unknown:
        raise ValueError(
            f"unknown {section} settings {', '.join(sorted(unknown))} "
            "(written by another version of keras_udd?)"
        )
    return kind(**values)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """The config of `to_dict`'s form; see `section_from_dict`."""
        return cls(**{s: section_from_dict(s, d.get(s, {})) for s in SECTIONS})

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path) -> Config:
        with open(path) as f:
            d = json.load(f)
        try:
            return cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
