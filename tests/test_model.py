"""UIDGAN: network shapes, the deblur path, losses, train/test steps, saving."""

import collections
import dataclasses
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_udd import UIDGAN, losses
from keras_udd.config import ModelConfig
from keras_udd.discriminators import MultiScaleDiscriminator
from keras_udd.generators import Decoder
from keras_udd.model import Z_RANDOM
from keras_udd.schedules import ConstantThenLinearDecay
from keras_udd.summary import REFERENCE_PARAMETERS, parameter_counts


class DeterministicUIDGAN(UIDGAN):
    """Draws its "random" blur codes from a fixed function, for exact checks."""

    def sample_normal(self, shape, stream):
        return 0.1 * keras.ops.ones(shape)


def unpaired_dataset(batch):
    return tf.data.Dataset.from_tensors(batch).repeat()


def snapshot(variables):
    return [np.array(v) for v in variables]


LOSS_WEIGHTS = (
    "adversarial_weight", "cycle_weight", "kl_weight", "perceptual_weight",
    "random_perceptual_weight", "self_recon_weight", "latent_weight",
    "identity_weight", "content_adversarial_weight",
)  # fmt: skip


def only_terms(config, *keep, **overrides):
    """`config` with every loss weight but `keep` at 0 and no weight decay."""
    zero = {name: 0.0 for name in LOSS_WEIGHTS if name not in keep}
    return dataclasses.replace(config, weight_decay=0.0, **zero, **overrides)


def changed(before, variables):
    return [not np.array_equal(b, np.array(v)) for b, v in zip(before, variables)]


def assert_changed_only(before, trained, untouched):
    """Each network of `trained` changed from `before` ({name: snapshot}),
    none of `untouched`."""
    for n in trained:
        assert any(changed(before[n.name], n.trainable_variables)), n.name
    for n in untouched:
        assert not any(changed(before[n.name], n.trainable_variables)), n.name


# ------------------------------------------------------------------ networks
def test_network_output_shapes(tiny_config):
    model = UIDGAN(tiny_config)
    image = np.zeros((2, 32, 48, 3), "float32")
    private = model.content_encoder_sharp(image)
    assert private.shape == (2, 8, 12, 16)
    assert model.content_shared(private).shape == (2, 8, 12, 16)
    mu, logvar = model.blur_encoder(image)
    assert mu.shape == logvar.shape == (2, 8)
    features = model.generator_shared(private)
    for decoder in (model.decoder_sharp, model.decoder_blurred):
        out = np.asarray(decoder((features, mu)))
        assert out.shape == (2, 32, 48, 3)
        assert out.min() >= -1 and out.max() <= 1
    logits = model.disc_sharp(image)
    assert [tuple(x.shape) for x in logits] == [(2, 2, 3, 1), (2, 1, 1, 1)]
    features = model.perceptual(image)
    assert features.shape == (2, 16, 24, 128)
    assert np.asarray(features).min() < 0  # Tapped before the ReLU.


@pytest.mark.parametrize("shape", [(1, 37, 53, 3), (3, 32, 32, 3), (2, 16, 21, 3)])
def test_deblur_output_shape_equals_input(tiny_config, shape):
    model = UIDGAN(tiny_config)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    y = np.asarray(model(x))
    assert y.shape == shape
    assert np.isfinite(y).all() and np.abs(y).max() <= 1


def test_pad_to_a_multiple_of_4_reflects_the_bottom_and_right(tiny_config):
    """The deblurrer's output on H x W equals its output on the image
    reflection-padded (numpy "reflect": the edge row is not repeated) to a
    multiple of 4 at the bottom and right, cropped back: the values of the
    padding, not only the shapes (pads of 3, 2, 1 and 0 rows/columns)."""
    deblurrer = UIDGAN(tiny_config).deblurrer
    rng = np.random.default_rng(1)
    for height, width in ((37, 53), (38, 33), (39, 40)):
        x = rng.uniform(-1, 1, (1, height, width, 3)).astype("float32")
        pad = [(0, 0), (0, -height % 4), (0, -width % 4), (0, 0)]
        expected = np.asarray(deblurrer(np.pad(x, pad, "reflect")))
        expected = expected[:, :height, :width]
        np.testing.assert_allclose(np.asarray(deblurrer(x)), expected, atol=1e-5)
        edge = np.asarray(deblurrer(np.pad(x, pad, "edge")))[:, :height, :width]
        assert np.abs(edge - expected).max() > 1e-3  # The padding values matter.


def test_call_is_deterministic(tiny_config):
    model = UIDGAN(tiny_config)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 37, 53, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    # Batch independence: one image alone gives the same as inside a batch.
    np.testing.assert_allclose(
        np.asarray(model(x[:1])), np.asarray(model(x))[:1], atol=1e-5
    )


def test_residual_output_starts_as_the_identity_and_adds_its_input(tiny_config):
    """residual_output: same weights as the reference decoder, whose output
    it adds to the translated image; a new model deblurs to its input (any
    size, reflection padding included) and a saved one keeps the setting."""
    x = np.random.default_rng(0).uniform(-1, 1, (2, 37, 53, 3)).astype("float32")
    model = UIDGAN(tiny_config, residual_output=True)
    np.testing.assert_array_equal(np.asarray(model(x)), x)
    plain = Decoder(8, 1, 4)
    residual = Decoder(8, 1, 4, residual=True)
    h = np.random.default_rng(1).normal(size=(2, 4, 4, 8)).astype("float32")
    z = np.ones((2, 4), "float32")
    image = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    plain((h, z))
    residual((h, z, image))
    assert len(plain.weights) == len(residual.weights)
    residual.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        np.asarray(residual((h, z, image))),
        np.asarray(plain((h, z))) + image,
        atol=1e-6,
    )
    clone = Decoder.from_config(residual.get_config())
    assert clone.residual


def test_logvar_bound_keeps_the_blur_code_and_kl_finite(tiny_config, batch):
    """logvar_bound B: E^b's log-variance as B * tanh(logvar / B), for both
    the blur code and the KL term; unbounded (the reference) a log-variance
    of 200 overflows exp(logvar) and the KL is inf."""
    sharp, blurred = batch

    def translate(bound):
        model = UIDGAN(tiny_config, logvar_bound=bound, random_branch=False)
        model.translate(sharp, blurred)  # Builds E^b.
        model.blur_encoder.logvar_head.bias.assign(np.full(8, 200.0, "float32"))
        return model.translate(sharp, blurred)

    bounded = translate(10.0)
    np.testing.assert_allclose(np.asarray(bounded.logvar), 10.0 * np.tanh(20.0))
    kl = losses.kl_divergence(bounded.mu, bounded.logvar)
    assert np.isfinite(np.asarray(kl)).all()
    assert np.isfinite(np.asarray(bounded.s_hat)).all()
    unbounded = translate(0.0)
    kl = losses.kl_divergence(unbounded.mu, unbounded.logvar)
    assert np.isinf(np.asarray(kl)).all()


def test_reference_architecture_parameter_counts():
    counts = parameter_counts(UIDGAN(vgg_weights=None))
    for name, expected in REFERENCE_PARAMETERS.items():
        assert counts[name] == expected, name


def test_switched_off_terms_build_no_networks(tiny_config):
    model = UIDGAN(
        tiny_config, random_branch=False, perceptual_weight=0.0, self_recon_weight=0.0
    )
    assert model.perceptual is None
    assert model.disc_sharp_random is None and len(model.discriminators) == 2
    assert model.loss_names() == ["d_loss", "g_loss", "adversarial", "cycle", "kl"]


def counting(function, calls, key):
    """`function` (a method too), adding 1 to `calls[key]` per call."""

    def counted(*args, **kwargs):
        calls[key] += 1
        return function(*args, **kwargs)

    return counted


@pytest.mark.parametrize("term", [None, "adversarial", "cycle", "kl"])
def test_a_weight_of_0_computes_nothing_for_its_term(tiny_config, batch, term,
                                                     monkeypatch):  # fmt: skip
    """Counted calls in one E/G step: the KL term, the E/G adversarial terms
    (and the discriminator passes they need), the decoder passes of the cycle.
    Each weight of 0 removes its own calls (and its log entry) only."""
    overrides = {} if term is None else {f"{term}_weight": 0.0}
    model = DeterministicUIDGAN(tiny_config, **overrides)
    model.compile()
    calls = collections.Counter()
    spied = [
        (losses, "kl_divergence"),
        (losses, "generator_adversarial_loss"),
        (Decoder, "call"),
        (MultiScaleDiscriminator, "call"),
    ]
    for owner, name in spied:
        key = f"{owner.__name__}.{name}"
        monkeypatch.setattr(owner, name, counting(getattr(owner, name), calls, key))
    logs = model.train_step(batch, update_generators=True)
    expected = {
        "keras_udd.losses.kl_divergence": 1,
        "keras_udd.losses.generator_adversarial_loss": 4,  # D_S, D_B, D_S2, D_B2.
        "Decoder.call": 4,  # G_S and G_B, then their cycle passes.
        "MultiScaleDiscriminator.call": 8,  # The D step, then the E/G terms.
    }
    if term == "kl":
        expected["keras_udd.losses.kl_divergence"] = 0
    if term == "adversarial":
        expected["keras_udd.losses.generator_adversarial_loss"] = 0
        expected["MultiScaleDiscriminator.call"] = 4  # The D step only.
    if term == "cycle":
        expected["Decoder.call"] = 2
    assert {k: calls[k] for k in expected} == expected
    off = {term, f"random_{term}"}  # The random branch's adversarial term too.
    off |= {"identity", "content_adversarial"}  # Off by default (not the reference's).
    assert set(logs) == {"loss", "d_loss", "g_loss", *losses.E_G_TERMS} - off
    named = [t for t in losses.E_G_TERMS if t in logs]
    assert float(logs["g_loss"]) == pytest.approx(sum(float(logs[t]) for t in named))


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="gan_mode"):
        ModelConfig(gan_mode="wgan")
    with pytest.raises(ValueError, match="cycle_weight"):
        ModelConfig(cycle_weight=-1)
    with pytest.raises(ValueError, match="vgg_layer"):
        UIDGAN(ModelConfig(vgg_layer="block9_conv9", vgg_weights=None))


def test_a_checkpoint_config_with_an_unknown_setting_is_named(tiny_config):
    """A .keras file of another version (a setting since removed) fails
    naming the setting, through Keras' deserialization too."""
    serialized = keras.saving.serialize_keras_object(UIDGAN(tiny_config))
    serialized["config"]["mode_seeking_weight"] = 0.0
    with pytest.raises(ValueError, match="unknown model settings mode_seeking_weight"):
        keras.saving.deserialize_keras_object(serialized)


# -------------------------------------------------------------------- losses
def test_losses_are_zero_where_they_should_be():
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(losses.l1(x, x), 0.0)
    np.testing.assert_allclose(losses.mean_squared(x, x), 0.0)
    np.testing.assert_allclose(
        losses.kl_divergence(np.zeros((3, 8)), np.zeros((3, 8))), 0
    )
    ones, zeros = [np.ones((3, 2, 2, 1))], [np.zeros((3, 2, 2, 1))]
    np.testing.assert_allclose(losses.discriminator_loss(ones, zeros, "lsgan"), 0.0)
    np.testing.assert_allclose(losses.generator_adversarial_loss(ones, "lsgan"), 0.0)
    # Log-loss: minimal (-> 0) for confident correct logits.
    big = [np.full((3, 2, 2, 1), 30.0)]
    assert np.all(np.asarray(losses.discriminator_loss(big, [-big[0]])) < 1e-6)
    assert np.all(np.asarray(losses.generator_adversarial_loss(big)) < 1e-6)
    np.testing.assert_allclose(
        losses.discriminator_loss(zeros, zeros), 2 * np.log(2.0), rtol=1e-6
    )


def test_kl_matches_closed_form():
    mu, logvar = np.array([[1.0, 0.0]]), np.array([[0.0, np.log(2.0)]])
    expected = 0.5 * ((1 + 1 - 0 - 1) + (0 + 2 - np.log(2.0) - 1))
    np.testing.assert_allclose(losses.kl_divergence(mu, logvar), [expected], rtol=1e-6)


def test_losses_finite_on_random_input(tiny_config, batch):
    model = UIDGAN(tiny_config)
    model.compile()
    logs = model.train_step(batch, update_generators=True)
    assert set(model.loss_names()) | {"loss"} == set(logs)
    for name, value in logs.items():
        assert np.isfinite(float(value)), name
    assert float(logs["g_loss"]) > 0 and float(logs["d_loss"]) > 0


# ---------------------------------------------------------------- train step
def test_d_step_changes_only_discriminators(tiny_config, batch):
    # No weight decay, which would move every weight whatever its gradient.
    model = DeterministicUIDGAN(tiny_config, weight_decay=0.0)
    model.compile()
    d_vars, g_vars = model._d_variables(), model._g_variables()
    d0, g0, p0 = snapshot(d_vars), snapshot(g_vars), snapshot(model.perceptual.weights)
    model.train_step(batch, update_generators=False)
    kernels = [c for c, v in zip(changed(d0, d_vars), d_vars) if "kernel" in v.path]
    assert kernels and all(kernels)
    assert not any(changed(g0, g_vars))
    assert not any(changed(p0, model.perceptual.weights))
    assert int(model.g_optimizer.iterations) == 0


def test_eg_step_changes_encoders_and_generators_and_d_as_a_d_only_step(
    tiny_config, batch
):
    """On an E/G step, E and G change; D gets exactly the update of a D-only
    step from the same state (it steps first, on the same fakes)."""
    model = DeterministicUIDGAN(tiny_config, content_noise_stddev=0.0, weight_decay=0.0)
    model.compile()
    d_vars, g_vars = model._d_variables(), model._g_variables()
    start = model.get_weights()
    p0 = snapshot(model.perceptual.weights)
    model.train_step(batch, update_generators=False)
    d_after_d_step = snapshot(d_vars)

    model.set_weights(start)
    model.compile()  # Fresh optimizer state.
    g0 = snapshot(g_vars)
    model.train_step(batch, update_generators=True)
    kernels = [c for c, v in zip(changed(g0, g_vars), g_vars) if "kernel" in v.path]
    assert kernels and all(kernels)
    assert not any(changed(p0, model.perceptual.weights))
    for a, v in zip(d_after_d_step, d_vars):
        np.testing.assert_allclose(a, np.array(v), atol=1e-6)


def test_eg_adversarial_gradient_uses_the_updated_discriminators(tiny_config, batch):
    """The reference's order: D steps first, then the E/G adversarial terms
    are computed against the updated D. With only the adversarial term on and
    SGD(1) for E/G, the E/G update equals minus the gradient of that term
    taken through the post-update D weights (and not the pre-update ones)."""
    config = only_terms(
        tiny_config,
        "adversarial_weight",
        random_branch=False,
        content_noise_stddev=0.0,
    )
    model = DeterministicUIDGAN(config)
    sgd = keras.optimizers.SGD
    model.compile(d_optimizer=sgd(0.5), g_optimizer=sgd(1.0))
    sharp, blurred = (tf.constant(x) for x in batch)
    g_vars, d_vars = model._g_variables(), model._d_variables()
    start = model.get_weights()

    def adversarial_gradient():
        with tf.GradientTape() as tape:
            t = model.translate(sharp, blurred, full=True)
            main, _ = model.generator_terms(sharp, blurred, t)
        return [np.asarray(g) for g in tape.gradient(main["adversarial"], g_vars)]

    before_update = adversarial_gradient()
    model.train_step((sharp, blurred), update_generators=False)  # D steps.
    d_updated = snapshot(d_vars)
    after_update = adversarial_gradient()
    model.set_weights(start)
    g_start = snapshot(g_vars)
    model.train_step((sharp, blurred), update_generators=True)
    for a, v in zip(d_updated, d_vars):
        np.testing.assert_allclose(np.asarray(v), a, atol=1e-6)
    step = [np.asarray(v) - w for v, w in zip(g_vars, g_start)]
    scale = max(float(np.abs(g).max()) for g in after_update)
    worst = max(float(np.abs(s + g).max()) for s, g in zip(step, after_update))
    stale = max(float(np.abs(s + g).max()) for s, g in zip(step, before_update))
    assert scale > 0
    assert worst <= 1e-2 * scale
    assert stale > 100 * worst  # The test would catch the simultaneous order.


def test_random_branch_is_a_second_eg_update_without_the_blur_encoder(
    tiny_config, batch
):
    """With the random branch on, one E/G step is two optimizer steps (that
    E^b gets nothing from the second: the latent-regression test below)."""
    config = only_terms(
        tiny_config, "adversarial_weight", "latent_weight", "random_perceptual_weight"
    )
    model = DeterministicUIDGAN(config)
    model.compile()
    logs = model.train_step(batch, update_generators=True)
    assert int(model.g_optimizer.iterations) == 2
    assert {"random_adversarial", "latent", "random_perceptual"} <= set(logs)


def test_latent_regression_does_not_train_blur_encoder(tiny_config, batch):
    """With only the latent term on, E^b gets no update but G does."""
    model = DeterministicUIDGAN(only_terms(tiny_config, "latent_weight"))
    model.compile()
    blur0 = snapshot(model.blur_encoder.trainable_variables)
    dec0 = snapshot(model.decoder_blurred.trainable_variables)
    model.train_step(batch, update_generators=True)
    assert not any(changed(blur0, model.blur_encoder.trainable_variables))
    assert any(changed(dec0, model.decoder_blurred.trainable_variables))


def test_identity_term_trains_the_deblurring_path_only(tiny_config, batch):
    """The identity term runs the sharp batch through the deblurrer (E^c_B,
    E^b, G_S): those networks learn from it, E^c_S and G_B do not."""
    config = only_terms(
        dataclasses.replace(tiny_config, identity_weight=1.0),
        "identity_weight", random_branch=False, residual_output=True,
    )  # fmt: skip
    model = UIDGAN(config)
    model.compile()
    rng = np.random.default_rng(3)
    for v in model.decoder_sharp.to_image.weights:  # Not the identity yet.
        v.assign(rng.normal(0, 0.05, v.shape).astype("float32"))
    trained = (model.content_encoder_blurred, model.blur_encoder, model.decoder_sharp)
    untouched = (model.content_encoder_sharp, model.decoder_blurred)
    before = {n.name: snapshot(n.trainable_variables) for n in trained + untouched}
    logs = model.train_step(batch, update_generators=True)
    assert set(logs) == {"d_loss", "g_loss", "loss", "identity"}
    assert_changed_only(before, trained, untouched)


def test_content_discriminator_pulls_blurred_codes_towards_sharp_ones(
    tiny_config, batch
):
    """D_c (an option) learns in the D step from both domains' content codes;
    its E/G term trains E^c_B and the shared block only: not E^c_S (its
    codes are D_c's "real"), not E^b, not the generators."""
    config = only_terms(
        tiny_config, "content_adversarial_weight", content_adversarial_weight=1.0
    )
    assert UIDGAN(tiny_config).disc_content is None  # Off by default.
    model = UIDGAN(config)
    model.compile()
    trained = (model.content_encoder_blurred, model.content_shared)
    untouched = (
        model.content_encoder_sharp, model.blur_encoder, model.generator_shared,
        model.decoder_sharp, model.decoder_blurred,
    )  # fmt: skip
    before = {
        n.name: snapshot(n.trainable_variables)
        for n in trained + untouched + (model.disc_content,)
    }
    model.train_step(batch, update_generators=False)
    assert all(changed(before["disc_content"], model.disc_content.trainable_variables))
    logs = model.train_step(batch, update_generators=True)
    assert set(logs) == {"d_loss", "g_loss", "loss", "content_adversarial"}
    assert_changed_only(before, trained, untouched)


def test_d_to_g_step_ratio_over_fit(tiny_config, batch):
    ratio = 3  # The default 2 is checked by the MirroredStrategy test.
    model = UIDGAN(tiny_config, d_steps_per_g_step=ratio)
    model.compile()
    model.fit(unpaired_dataset(batch), steps_per_epoch=6, epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations) == 6
    # Two E/G optimizer steps per E/G iteration with the random branch.
    assert int(model.g_optimizer.iterations) == 2 * (6 // ratio)


def test_adam_epsilon_acts_as_pytorch_epsilon_over_sqrt_1_minus_beta2_power(
    tiny_config,
):
    """Keras' Adam adds epsilon to sqrt(v) before the bias correction,
    PyTorch's after it: Keras with e takes PyTorch's steps with e /
    sqrt(1 - beta_2^t) (the README's fidelity section). Gradients of the
    order of epsilon, where it matters; `adam_epsilon` reaches both
    optimizers."""
    model = UIDGAN(tiny_config, adam_epsilon=1e-8)
    model.compile()
    assert model.d_optimizer.epsilon == model.g_optimizer.epsilon == 1e-8
    lr, beta_1, beta_2, eps = 0.1, 0.5, 0.999, 1e-6
    adam = keras.optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=eps)
    variable = keras.Variable(np.zeros(4, "float32"))
    grads = np.random.default_rng(0).normal(0, 1e-6, (5, 4)).astype("float32")
    torch_w, m, v = np.zeros(4), np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads.astype("float64"), 1):
        adam.apply([g], [variable])
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat, v_hat = m / (1 - beta_1**t), v / (1 - beta_2**t)
        torch_eps = eps / np.sqrt(1 - beta_2**t)
        torch_w -= lr * m_hat / (np.sqrt(v_hat) + torch_eps)
        np.testing.assert_allclose(np.asarray(variable), torch_w, rtol=1e-4)
    constant = lr * m_hat / (np.sqrt(v_hat) + eps)  # PyTorch's own, at t = 5.
    assert np.abs(constant - lr * m_hat / (np.sqrt(v_hat) + torch_eps)).max() > 1e-3


def test_learning_rate_is_constant_then_decays(tiny_config):
    schedule = ConstantThenLinearDecay(2e-4, total_steps=100)
    assert float(schedule(0)) == pytest.approx(2e-4)
    assert float(schedule(49)) == pytest.approx(2e-4)
    assert float(schedule(75)) == pytest.approx(1e-4)
    assert float(schedule(100)) == 0.0

    def total_steps(model, optimizer):
        """Of the schedule inside the learning-rate factor (schedules.py)."""
        config = model.get_compile_config()[optimizer]["config"]["learning_rate"]
        return config["config"]["rate"]["config"]["total_steps"]

    model = UIDGAN(tiny_config)
    model.compile(total_steps=100)
    # E/G iterations every second D step, two optimizer steps each (main and
    # random branch); without the random branch one.
    assert total_steps(model, "d_optimizer") == 100
    assert total_steps(model, "g_optimizer") == 100
    model = UIDGAN(tiny_config, random_branch=False)
    model.compile(total_steps=100)
    assert total_steps(model, "g_optimizer") == 50


def test_test_step_reports_psnr_ssim_and_baseline(tiny_config):
    model = UIDGAN(tiny_config)
    model.compile()
    rng = np.random.default_rng(0)
    sharp = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((sharp, sharp)).batch(2)
    logs = model.evaluate(data, return_dict=True, verbose=0)
    assert logs["psnr_blurred"] == pytest.approx(100.0)  # Identical: the ceiling.
    assert logs["ssim_blurred"] == pytest.approx(1.0)
    assert np.isfinite(logs["psnr"]) and -1 <= logs["ssim"] <= 1


# -------------------------------------------------------------------- saving
def test_get_config_round_trip(tiny_config):
    model = UIDGAN(tiny_config, cycle_weight=3.0)
    clone = UIDGAN.from_config(model.get_config())
    assert clone.config == model.config
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize(
    "network",
    ["content_encoder_sharp", "content_shared", "blur_encoder", "generator_shared",
     "decoder_sharp", "disc_sharp", "perceptual"],
)  # fmt: skip
def test_sub_network_config_round_trip(tiny_config, network):
    """Each network rebuilds from its config alone; with the same weights it
    computes the same outputs."""
    model = UIDGAN(tiny_config, perceptual_network="lowpass")
    if network == "perceptual":
        model = UIDGAN(tiny_config)  # The VGG19 features.
    net = getattr(model, network)
    clone = type(net).from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    width = 4 * tiny_config.content_filters
    inputs = {
        "content_shared": rng.normal(size=(1, 8, 8, width)).astype("float32"),
        "generator_shared": rng.normal(size=(1, 8, 8, width)).astype("float32"),
        "decoder_sharp": (rng.normal(size=(1, 8, 8, width)).astype("float32"),
                          rng.normal(size=(1, tiny_config.blur_dim)).astype("float32")),
    }.get(network, image)  # fmt: skip
    clone(inputs)
    clone.set_weights(net.get_weights())
    for a, b in zip(keras.tree.flatten(net(inputs)), keras.tree.flatten(clone(inputs))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def trained_two_steps(config, batch):
    """A compiled model after two eager train steps (one D, one D + E/G)."""
    model = UIDGAN(config)
    model.compile()
    for _ in range(2):
        model.train_step(batch)
    return model


def test_keras_round_trip_gives_identical_outputs(tiny_config, batch, tmp_path):
    model = trained_two_steps(tiny_config, batch)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, UIDGAN) and loaded.config == model.config
    x = np.random.default_rng(1).uniform(-1, 1, (2, 37, 53, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert int(loaded.d_optimizer.iterations) == 2
    for a, b in zip(loaded.perceptual.weights, model.perceptual.weights):
        np.testing.assert_array_equal(np.array(a), np.array(b))


def test_weights_checkpoint_restores_optimizer_state(tiny_config, batch, tmp_path):
    model = trained_two_steps(tiny_config, batch)
    path = tmp_path / "ckpt.weights.h5"
    model.save_weights(path)

    restored = UIDGAN(tiny_config)
    restored.compile()
    restored.load_weights(path)
    for opt in ("d_optimizer", "g_optimizer"):
        a, b = getattr(model, opt), getattr(restored, opt)
        assert int(b.iterations) == int(a.iterations) > 0
        for va, vb in zip(a.variables, b.variables):
            np.testing.assert_array_equal(np.array(va), np.array(vb))


def test_weights_written_before_the_learning_rate_factor_load(tiny_config, tmp_path):
    """Files of earlier versions have two own model variables (no
    learning_rate_factor): they load, with a factor of 1, so their runs
    resume."""
    import h5py

    model = UIDGAN(tiny_config)
    model.compile(total_steps=10)
    model.iterations.assign(7)
    model.learning_rate_factor.assign(0.5)
    path = tmp_path / "old.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r+") as f:
        del f["vars/2"]  # The factor: the file as an earlier version wrote it.
    loaded = UIDGAN(tiny_config)
    loaded.compile(total_steps=10)
    loaded.load_weights(path)
    assert int(loaded.iterations) == 7
    assert int(loaded.noise_seed) == int(model.noise_seed)
    assert float(loaded.learning_rate_factor) == 1.0
    for a, b in zip(loaded.trainable_weights, model.trainable_weights):
        np.testing.assert_array_equal(a, b)


def test_vgg_weights_load_from_local_file(tiny_config, tmp_path):
    vgg = keras.applications.VGG19(include_top=False, weights=None)
    path = tmp_path / "vgg19_notop.weights.h5"
    vgg.save_weights(path)
    model = UIDGAN(tiny_config, vgg_weights=str(path))
    model.compile()
    conv = model.perceptual.vgg_layers[0]
    np.testing.assert_array_equal(
        np.array(conv.kernel), np.array(vgg.get_layer("block1_conv1").kernel)
    )
    with pytest.raises(FileNotFoundError, match="no-such.h5"):
        UIDGAN(tiny_config, vgg_weights=str(tmp_path / "no-such.h5")).compile()


# -------------------------------------------------------------- distribution
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_udd import UIDGAN
    from tests.conftest import TINY

    class Deterministic(UIDGAN):
        def sample_normal(self, shape, stream):
            return 0.1 * keras.ops.ones(shape)

    rng = np.random.default_rng(0)
    batches = [tuple(rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
                     for _ in range(2)) for _ in range(3)]
    def dataset():
        return tf.data.Dataset.from_generator(
            lambda: iter(batches),
            output_signature=(tf.TensorSpec((4, 32, 32, 3)),) * 2)

    def train(strategy, weights):
        with strategy.scope():
            model = Deterministic(content_noise_stddev=0.0, **TINY)
            model.set_weights(weights)
            # SGD: Adam's g / sqrt(v) would blow up rounding noise in the
            # exactly-zero gradients (conv biases before IN) to full steps.
            model.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05),
                          jit_compile=False)
        model.fit(dataset(), epochs=1, steps_per_epoch=3, verbose=0)
        return model

    keras.utils.set_random_seed(1)
    start = Deterministic(content_noise_stddev=0.0, **TINY).get_weights()
    single = train(tf.distribute.get_strategy(), start)
    mirrored = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), start)
    assert int(mirrored.g_optimizer.iterations.numpy()) == 2  # Main + random.
    diff = max(float(np.abs(a - b).max())
               for a, b in zip(single.get_weights(), mirrored.get_weights()))
    moved = max(float(np.abs(a - b).max())
                for a, b in zip(single.get_weights(), start))
    print("MAXDIFF", diff, "MOVED", moved)
    """
)


@pytest.mark.slow
def test_mirrored_strategy_matches_single_device():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [s for s in result.stdout.splitlines() if s.startswith("MAXDIFF")][-1]
    _, diff, _, moved = line.split()
    assert float(moved) > 1e-4  # Training really moved the weights...
    assert float(diff) <= 1e-5  # ...identically on one and on two devices.


def test_deblurrer_saves_and_loads_alone(tiny_config, tmp_path):
    """The deblurring path is a serializable model of its own (how the
    pretrained models ship): same outputs after a .keras round trip."""
    model = UIDGAN(tiny_config)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 37, 53, 3)).astype("float32")
    path = tmp_path / "deblurrer.keras"
    model.deblurrer.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded).__name__ == "Deblurrer"
    assert len(loaded.weights) == len(model.deblurrer.weights)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    clone = type(loaded).from_config(loaded.get_config())
    assert clone.get_config() == loaded.get_config()


def test_lowpass_perceptual_network_compares_pooled_images(tiny_config, batch):
    """perceptual_network="lowpass": no VGG19, the term is the mean squared
    difference of factor x factor averages of s_b and b."""
    model = DeterministicUIDGAN(
        tiny_config, perceptual_network="lowpass", lowpass_factor=4
    )
    assert not model.perceptual.weights
    x = np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    pooled = x.reshape(2, 2, 4, 2, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(np.asarray(model.perceptual(x)), pooled, atol=1e-6)
    model.compile()
    logs = model.train_step(batch, update_generators=True)
    assert np.isfinite(float(logs["perceptual"]))
    with pytest.raises(ValueError, match="perceptual_network"):
        ModelConfig(perceptual_network="resnet")


def test_content_network_weights_load_and_stay_frozen(tiny_config, tmp_path):
    """perceptual_network="content": the offline-trained network's .npz is
    loaded at compile, frozen, saved with the model; a wrong file is named."""
    from keras_udd.perceptual import ContentNetwork

    trained = ContentNetwork()
    trained(np.zeros((1, 8, 8, 3), "float32"))
    trained.set_weights([w + 0.01 * i for i, w in enumerate(trained.get_weights())])
    path = tmp_path / "content.npz"
    trained.save_pretrained(path)
    model = UIDGAN(
        tiny_config, perceptual_network="content", content_network_weights=str(path)
    )
    model.compile()
    x = np.random.default_rng(2).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model.perceptual(x)), trained(x))
    assert model.perceptual(x).shape == (2, 4, 4, 64)
    assert not model.perceptual.trainable_weights
    before = [np.array(w) for w in model.perceptual.weights]
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    for a, b in zip(before, loaded.perceptual.weights):
        np.testing.assert_array_equal(a, b)
    ContentNetwork(widths=(8, None, 8)).save_pretrained(tmp_path / "other.npz")
    wrong = (
        ("no-such.npz", FileNotFoundError, "no-such.npz"),
        ("other.npz", ValueError, "widths"),  # Another network's weights.
    )
    for name, error, match in wrong:
        with pytest.raises(error, match=match):
            UIDGAN(
                tiny_config,
                perceptual_network="content",
                content_network_weights=str(tmp_path / name),
            ).compile()


def test_content_network_trains_offline_on_sharp_pages(tiny_config, tmp_path):
    """bench/train_content_network.py learns the ink of sharp pages and
    writes the weights file --content-network-weights loads."""
    import json

    from bench import train_content_network

    out = tmp_path / "content.npz"
    argv = ["--pages", "4", "--val-pages", "2", "--steps", "4", "--batch", "4",
            "--output", str(out)]  # fmt: skip
    assert train_content_network.main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    before, after = record["validation_untrained"], record["validation_trained"]
    assert after["bce"] < before["bce"]
    model = UIDGAN(
        tiny_config, perceptual_network="content", content_network_weights=str(out)
    )
    model.compile()
    with np.load(out) as saved:
        np.testing.assert_array_equal(model.perceptual.weights[0], saved["w0"])
    with pytest.raises(SystemExit):
        train_content_network.parse_args(["--output", str(tmp_path / "x.h5")])


# ------------------------------------------------------------ golden terms
class FixedCodesUIDGAN(UIDGAN):
    """eps = 0.1 for the blur codes, z_r = 2 for the random branch."""

    def sample_normal(self, shape, stream):
        return (2.0 if stream == Z_RANDOM else 0.1) * keras.ops.ones(shape)


@pytest.mark.parametrize("residual", [False, True], ids=["reference", "residual"])
def test_every_logged_term_is_its_formula_on_the_right_images(
    tiny_config, batch, residual
):
    """Golden test of the wiring: each loss term the E/G step logs equals its
    formula from the spec, computed here from the networks' outputs on the
    images that term must see (distinct weights, fixed codes, no content
    noise). Swapping s and b anywhere, or giving a discriminator the wrong
    fakes, changes some term. With `residual_output` each translation also
    adds the image it translates (the decoders' last convs made non-zero)."""
    weights = dict(adversarial_weight=1.5, cycle_weight=2.0, kl_weight=0.3,
                   perceptual_weight=0.7, self_recon_weight=1.3, latent_weight=0.9,
                   random_perceptual_weight=0.4, identity_weight=1.1,
                   content_adversarial_weight=0.8)  # fmt: skip
    config = dataclasses.replace(
        tiny_config, content_noise_stddev=0.0, weight_decay=0.0,
        perceptual_network="lowpass", lowpass_factor=4, residual_output=residual,
        blurred_adversarial_factor=1.7, **weights,
    )  # fmt: skip
    model = FixedCodesUIDGAN(config)
    model.compile(jit_compile=False)
    rng = np.random.default_rng(7)
    for v in model._d_variables():  # Discriminators that tell images apart.
        v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
    for decoder in (model.decoder_sharp, model.decoder_blurred):
        for v in decoder.to_image.weights:  # Zeros in a residual decoder.
            v.assign(rng.normal(0, 0.05, v.shape).astype("float32"))
    s, b = (np.asarray(x) for x in batch)
    start = model.get_weights()

    def f(x):
        return np.asarray(x)

    def content(encoder, x):
        return model.content_shared(encoder(x))

    def decode(decoder, c, z, source):  # The residual added here, not inside.
        out = f(decoder((model.generator_shared(c), z, np.zeros_like(source))))
        return out + source if residual else out

    def code(x):
        mu, logvar = (f(t) for t in model.blur_encoder(x))
        return mu, logvar, mu + 0.1 * np.exp(0.5 * logvar)

    def l1(x, y):
        return float(np.mean(np.abs(x - y)))

    def softplus(x):
        return np.logaddexp(0.0, x)

    mu, logvar, z_b = code(b)
    z_r = np.full_like(z_b, 2.0)
    c_s, c_b = (
        content(model.content_encoder_sharp, s),
        content(model.content_encoder_blurred, b),
    )
    s_b = decode(model.decoder_sharp, c_b, z_b, b)  # Deblurred.
    b_s = decode(model.decoder_blurred, c_s, z_b, s)  # Reblurred.
    s_r = decode(model.decoder_sharp, c_b, z_r, b)  # The random branch.
    b_r = decode(model.decoder_blurred, c_s, z_r, s)
    _, _, z_bs = code(b_s)
    s_hat = decode(
        model.decoder_sharp, content(model.content_encoder_blurred, b_s), z_bs, b_s
    )
    b_hat = decode(
        model.decoder_blurred, content(model.content_encoder_sharp, s_b), z_bs, s_b
    )
    lowpass = f(model.perceptual(b))
    raw = {
        "cycle": l1(s, s_hat) + l1(b, b_hat),
        "self_recon": l1(s, decode(model.decoder_sharp, c_s, z_b, s))
        + l1(b, decode(model.decoder_blurred, c_b, z_b, b)),
        "kl": float(np.mean(0.5 * np.sum(mu**2 + np.exp(logvar) - logvar - 1, -1))),
        "perceptual": float(np.mean((f(model.perceptual(s_b)) - lowpass) ** 2)),
        "random_perceptual": float(np.mean((f(model.perceptual(s_r)) - lowpass) ** 2)),
        "latent": l1(code(b_r)[0], z_r),
        "identity": l1(
            s,
            decode(
                model.decoder_sharp,
                content(model.content_encoder_blurred, s),
                code(s)[0],
                s,
            ),
        ),  # fmt: skip
    }
    pairs = [
        (model.disc_sharp, s, s_b),
        (model.disc_blurred, b, b_s),
        (model.disc_sharp_random, s, s_r),
        (model.disc_blurred_random, b, b_r),
    ]

    def patch_mean(logits, fn):
        return sum(float(np.mean(fn(f(x)))) for x in logits)

    d_loss = sum(
        patch_mean(d(real), lambda x: softplus(-x)) + patch_mean(d(fake), softplus)
        for d, real, fake in pairs + [(model.disc_content, c_s, c_b)]
    )
    # The E/G adversarial terms see the discriminators after their step.
    model.train_step(batch, update_generators=False)
    adversarial = [patch_mean(d(fake), lambda x: softplus(-x)) for d, _, fake in pairs]
    raw["content_adversarial"] = patch_mean(
        model.disc_content(c_b), lambda x: softplus(-x)
    )
    raw["adversarial"] = adversarial[0] + 1.7 * adversarial[1]
    raw["random_adversarial"] = adversarial[2] + adversarial[3]

    model.set_weights(start)
    model.compile(jit_compile=False)  # Fresh optimizer state.
    model.reset_metrics()
    logs = {
        k: float(v) for k, v in model.train_step(batch, update_generators=True).items()
    }
    weight_of = {"random_adversarial": "adversarial_weight"}
    expected = {
        name: value * weights[weight_of.get(name, f"{name}_weight")]
        for name, value in raw.items()
    }
    expected["d_loss"] = d_loss
    expected["g_loss"] = sum(v for k, v in expected.items() if k != "d_loss")
    expected["loss"] = expected["d_loss"] + expected["g_loss"]
    assert set(logs) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(
            logs[name], value, rtol=1e-4, atol=1e-6, err_msg=name
        )


def test_graphs_pass_grappler_remapper(tiny_config, batch, capfd):
    """Training (batch size unknown, as in `fit`) and deblurring graphs that
    grappler's remapper optimizes without failing: on TF's oneDNN CPU builds
    it failed on E^b's and the discriminators' LeakyRelu (layers.run_blocks),
    logging "remapper failed" on every run."""
    model = UIDGAN(tiny_config, random_branch=False)
    model.compile()
    images = tf.TensorSpec([None, None, None, 3])
    step = tf.function(  # A D + E/G step: every network trains.
        lambda s, b: model.train_step((s, b), update_generators=True),
        input_signature=[images, images],
    )
    step(*batch)
    tf.function(model.deblurrer, input_signature=[images])(batch[1])
    assert "remapper failed" not in capfd.readouterr().err
