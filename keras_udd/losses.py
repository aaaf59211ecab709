"""The loss terms of UID-GAN, each returned per example ([N]).

Per-example values let the model average over the GLOBAL batch, which is
what `tf.distribute` needs (gradients are summed over replicas).
"""

from keras import ops


def _mean_over_features(x):
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def _float32(*tensors):
    return [ops.cast(t, "float32") for t in tensors]


def l1(x, y):
    """Mean absolute error per example (cycle, self-reconstruction, latent)."""
    x, y = _float32(x, y)
    return _mean_over_features(ops.abs(x - y))


def mean_squared(x, y):
    """Mean squared error per example (the perceptual term on VGG features)."""
    x, y = _float32(x, y)
    return _mean_over_features(ops.square(x - y))


def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) = 0.5 * sum(mu^2 + e^logvar - logvar - 1).

    Summed over the code's dimensions, per example.
    """
    mu, logvar = _float32(mu, logvar)
    return 0.5 * ops.sum(ops.square(mu) + ops.exp(logvar) - logvar - 1.0, axis=-1)


def discriminator_loss(real_logits, fake_logits, mode="nonsaturating"):
    """D loss per example, summed over scales, averaged over patch positions.

    real_logits, fake_logits: lists (one per scale) of [N, h, w, 1] logits.
    "nonsaturating": -log D(real) - log(1 - D(fake)) (binary cross-entropy
    on sigmoid outputs, as the reference); "lsgan": (D(real) - 1)^2 + D(fake)^2.
    """
    total = 0.0
    for real, fake in zip(real_logits, fake_logits):
        real, fake = _float32(real, fake)
        if mode == "lsgan":
            term = ops.square(real - 1.0) + ops.square(fake)
        else:
            term = ops.softplus(-real) + ops.softplus(fake)
        total = total + _mean_over_features(term)
    return total


def generator_adversarial_loss(fake_logits, mode="nonsaturating"):
    """The generators' adversarial loss per example, summed over scales.

    "nonsaturating": -log D(fake); "lsgan": (D(fake) - 1)^2.
    """
    total = 0.0
    for fake in fake_logits:
        fake = ops.cast(fake, "float32")
        term = ops.square(fake - 1.0) if mode == "lsgan" else ops.softplus(-fake)
        total = total + _mean_over_features(term)
    return total
