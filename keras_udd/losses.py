"""The loss terms of UID-GAN, and their assembly into a training step's losses.

Each term is returned per example ([N]): the assembly averages over the
GLOBAL batch, which is what `tf.distribute` needs (gradients are summed over
replicas).
"""

import tensorflow as tf
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


# ----------------------------------------------------------------- assembly
def term_weight(config, term):
    """The weight of loss `term` in a `ModelConfig`, 0 where it is off (the
    random branch's terms and the latent regression without the branch)."""
    if term.startswith("random_") or term == "latent":
        if not config.random_branch:
            return 0.0
    if term == "random_adversarial":
        term = "adversarial"
    return float(getattr(config, f"{term}_weight"))


E_G_TERMS = (
    "adversarial",
    "cycle",
    "kl",
    "random_adversarial",
    "perceptual",
    "self_recon",
    "identity",
    "content_adversarial",
    "latent",
    "random_perceptual",
)


def logged_terms(config):
    """The names a training step logs: the D and E/G totals, then each E/G
    term that is on (weight above 0)."""
    return ["d_loss", "g_loss"] + [t for t in E_G_TERMS if term_weight(config, t)]


def global_mean(per_example):
    """Sum over this replica's examples / the GLOBAL batch size: right under
    tf.distribute, which sums the replicas' gradients."""
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    batch = ops.cast(ops.shape(per_example)[0] * replicas, "float32")
    return ops.sum(ops.cast(per_example, "float32")) / batch


def discriminators_loss(pairs, gan_mode):
    """The summed loss of every discriminator on real vs fake images (global
    mean). `pairs`: (discriminator, real, fake), the fakes detached."""
    total = 0.0
    for disc, real, fake in pairs:
        logits = disc(ops.concatenate([real, fake]))
        real_logits = [ops.split(x, 2)[0] for x in logits]
        fake_logits = [ops.split(x, 2)[1] for x in logits]
        total += global_mean(discriminator_loss(real_logits, fake_logits, gan_mode))
    return total


def generator_terms(s, b, t, fake_logits, config, perceptual=None, content_logits=None):
    """The weighted E/G loss terms (global means) as two groups, (main,
    random): the reference's two E/G updates; `random` is empty without the
    random branch. A term of weight 0 is left out and not computed.

    s, b: the real sharp and blurred batch; t: the step's `Translation`
    (model.py); fake_logits: the discriminators' logits of t's fakes, in the
    order D_S(s_b), D_B(b_s)[, D_S2(s_r), D_B2(b_r)] (none when the
    adversarial weight is 0); perceptual: the network the perceptual terms
    compare features of (VGG19 or low-pass); content_logits: D_c's logits of
    E^c_B(b) (None without D_c), which the E/G term makes look like E^c_S's.
    """

    def weight(term):
        return term_weight(config, term)

    def adversarial(logits):
        return sum(
            global_mean(generator_adversarial_loss(f, config.gan_mode)) for f in logits
        )

    main, random = {}, {}
    if weight("adversarial"):
        factor = config.blurred_adversarial_factor  # G_B's term against D_B.
        main["adversarial"] = adversarial(fake_logits[:1]) + factor * adversarial(
            fake_logits[1:2]
        )
    if weight("cycle"):
        main["cycle"] = global_mean(l1(s, t.s_hat)) + global_mean(l1(b, t.b_hat))
    if weight("kl"):
        main["kl"] = global_mean(kl_divergence(t.mu, t.logvar))
    if weight("random_adversarial"):
        random["random_adversarial"] = adversarial(fake_logits[2:])
    if weight("self_recon"):
        main["self_recon"] = global_mean(l1(s, t.s_recon)) + global_mean(
            l1(b, t.b_recon)
        )
    if weight("identity"):
        main["identity"] = global_mean(l1(s, t.s_identity))
    if weight("content_adversarial"):
        main["content_adversarial"] = adversarial([content_logits])
    if weight("latent"):
        random["latent"] = global_mean(l1(t.mu_r, t.z_r))
    # ||VGG(s_b) - VGG(b)||^2 and ||VGG(s_r) - VGG(b)||^2, one network call.
    compared = [
        (group, name, image)
        for group, name, image in (
            (main, "perceptual", t.s_b),
            (random, "random_perceptual", t.s_r),
        )
        if weight(name)
    ]
    if compared:
        images = [image for _, _, image in compared]
        features = ops.split(perceptual(ops.concatenate(images + [b])), len(images) + 1)
        target = ops.stop_gradient(features[-1])
        for (group, name, _), feature in zip(compared, features):
            group[name] = global_mean(mean_squared(feature, target))

    def weighted(group):
        return {name: weight(name) * value for name, value in group.items()}

    return weighted(main), weighted(random)
