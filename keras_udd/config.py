"""The one configuration object: the paper's (reference code's) defaults.

`Config` groups three sections: `ModelConfig` (networks, losses, optimizers),
`DataConfig` (domain and preprocessing) and `TrainConfig` (the run). The
command line of `train.py` is derived from these fields, and every run saves
`Config.to_dict()` as JSON beside its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass
class ModelConfig:
    """Networks, loss weights and optimizer settings (reference defaults).

    A loss weight of 0 turns the term off and skips the networks that only it
    needs (for example `perceptual_weight=0` and `random_perceptual_weight=0`
    build no VGG19; `random_branch=False` builds no D_S2 / D_B2).
    """

    # Architecture.
    content_filters: int = 64  # E^c first conv width; doubled twice (-> 256).
    content_res_blocks: int = 3  # Residual blocks per E^c before the shared one.
    blur_dim: int = 8  # Size of the blur code z = E^b(b).
    blur_filters: int = 64  # E^b first conv width (64 -> 128 -> 192 -> 256).
    generator_res_blocks: int = 3  # Residual blocks per G branch after concat z.
    disc_filters: int = 64  # PatchGAN first conv width (64, 128, 256, 512).
    disc_layers: int = 4  # Strided 4x4 convs per scale.
    disc_scales: int = 3  # Scales of the multi-scale discriminators.
    content_noise_stddev: float = 1.0  # Training-time noise on the content code.
    # Losses.
    gan_mode: str = "nonsaturating"  # "nonsaturating" (log-loss) or "lsgan".
    adversarial_weight: float = 1.0
    cycle_weight: float = 10.0
    kl_weight: float = 0.01
    perceptual_weight: float = 0.1
    self_recon_weight: float = 10.0  # Reference-code extra.
    random_branch: bool = True  # Reference-code extra: z_r ~ N(0, I), D_S2, D_B2.
    latent_weight: float = 10.0  # Latent regression (needs random_branch).
    random_perceptual_weight: float = 0.1  # Perceptual on G_S(E^c_B(b), z_r).
    perceptual_network: str = "vgg19"  # "vgg19" (the paper's) or "lowpass".
    lowpass_factor: int = 8  # "lowpass": average pooling of this many pixels.
    vgg_weights: str | None = "imagenet"  # "imagenet", a weights file, or None.
    vgg_layer: str = "block3_conv3"  # Tapped before its ReLU, as the reference.
    # Optimisation.
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    weight_decay: float = 1e-4  # L2 added to gradients, as PyTorch's Adam.
    d_steps_per_g_step: int = 2  # D every step, E/G every second step.
    decay_start_fraction: float = 0.5  # Constant lr, then linear decay to 0.

    def __post_init__(self):
        if self.gan_mode not in ("nonsaturating", "lsgan"):
            raise ValueError(
                f"gan_mode must be 'nonsaturating' or 'lsgan', got {self.gan_mode!r}"
            )
        if self.perceptual_network not in ("vgg19", "lowpass"):
            raise ValueError(
                "perceptual_network must be 'vgg19' or 'lowpass', got "
                f"{self.perceptual_network!r}"
            )
        if self.d_steps_per_g_step < 1:
            raise ValueError("d_steps_per_g_step must be >= 1")
        for name in (
            "adversarial_weight",
            "cycle_weight",
            "kl_weight",
            "perceptual_weight",
            "self_recon_weight",
            "latent_weight",
            "random_perceptual_weight",
            "weight_decay",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class DataConfig:
    """Which images to train on and how to preprocess them (reference sizes)."""

    domain: str = "text"  # "text" (offline default), "face", "folder".
    data_dir: str | None = None  # face: a folder of images instead of TFDS.
    sharp_dir: str | None = None  # folder: real sharp images.
    blur_dir: str | None = None  # folder: real blurred images.
    test_dir: str | None = None  # folder: real pairs (validation and test).
    load_size: int = 144  # Shorter side resized to this (bicubic).
    crop_size: int = 128  # Random training crop (val/test pairs: whole images).
    batch_size: int = 2
    test_images: int = 64  # Held-out test pairs (keras_udd.evaluate).
    val_images: int = 64  # Validation pairs (picks best.keras), disjoint from test.
    seed: int = 0
    deterministic: bool = False  # tf.data determinism (slower when True).
    random_flip: bool = True  # Random horizontal flip of training crops.
    # text: rendered pages (test_images test, val_images validation, then a sharp
    # and a blurred half).
    text_pool_size: int = 20000
    font_dir: str | None = None  # text: .ttf/.otf folder (default: system fonts).
    tfds_dir: str | None = None  # face: TFDS data_dir (default ~/tensorflow_datasets).
    # Synthetic blur (text, face; folder test pairs without test_dir).
    blur_kernel_size: int = 31  # Motion paths of the 64-px canvas scaled by k/64.
    blur_kernel_bank: int = 1000  # Seeded kernels drawn per blurred image.
    blur_kernel_file: str | None = None  # .npy [n, k, k]: read if present, else saved.
    motion_blur_prob: float = 0.8  # Camera shake; the rest Gaussian/defocus evenly.
    noise_std: float = 0.01  # Additive noise std ~ U(0, noise_std), [0, 1] units.
    jpeg_prob: float = 0.0  # Chance of JPEG re-compression of a blurred image.
    jpeg_quality_min: int = 60  # JPEG quality ~ U[jpeg_quality_min, 95].


@dataclass
class TrainConfig:
    """One training run."""

    epochs: int = 100
    steps_per_epoch: int = 1000
    output_dir: str | None = None  # Default: runs/<domain>-<timestamp>.
    strategy: str = "auto"  # "auto", "default", "mirrored", "multiworker".
    jit_compile: bool = False  # XLA on a single device (see its --help).
    seed: int = 0
    sample_images: int = 4  # Fixed validation images in the sample grids.
    val_ocr_images: int = 0  # Validation pages OCR-scored per epoch (val_cer; 0: off).
    backup_freq: int = 0  # Also back up every N steps in an epoch (0: epoch ends).
    log_freq: int = 50  # TensorBoard loss scalars every N steps (0: per epoch).
    time_limit_minutes: float = 0.0  # Stop with a backup after this long (0: none).


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        return cls(
            model=ModelConfig(**d.get("model", {})),
            data=DataConfig(**d.get("data", {})),
            train=TrainConfig(**d.get("train", {})),
        )

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path) -> Config:
        with open(path) as f:
            return cls.from_dict(json.load(f))
