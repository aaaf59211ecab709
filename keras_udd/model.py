"""UIDGAN: every network of the method, its losses and the custom train_step.

Paper symbol -> code name (the only place they are mapped):

    E^c_S       content_encoder_sharp, then content_shared    sharp -> content
    E^c_B       content_encoder_blurred, then content_shared  blurred -> content
    E^b         blur_encoder                  blurred -> (mu, logvar), z
    G_S         generator_shared, then decoder_sharp    (content, z) -> sharp
    G_B         generator_shared, then decoder_blurred  (content, z) -> blurred
    D_S, D_B    disc_sharp, disc_blurred      real vs s_b, real vs b_s
    D_S2, D_B2  disc_sharp_random, disc_blurred_random  real vs z_r outputs
    VGG         perceptual                    frozen VGG19 conv3_3 features
    s, b        sharp, blurred                real unpaired images
    s_b, b_s    deblurred, reblurred          G_S(E^c_B(b), z_b), G_B(E^c_S(s), z_b)
    s_hat, b_hat  sharp_cycle, blurred_cycle  the cycle reconstructions
"""

import dataclasses
import functools

import keras
import tensorflow as tf
from keras import ops

from keras_udd import losses
from keras_udd.config import ModelConfig
from keras_udd.discriminators import MultiScaleDiscriminator
from keras_udd.encoders import BlurEncoder, ContentEncoder, SharedContentBlock
from keras_udd.generators import Decoder
from keras_udd.layers import ResidualBlock
from keras_udd.metrics import psnr, ssim, to_unit_range
from keras_udd.perceptual import PerceptualNetwork
from keras_udd.schedules import ConstantThenLinearDecay

MIN_IMAGE_SIZE = 16  # E^b halves H and W four times.


class Deblurrer(keras.Model):
    """The test-time path s = G_S(E^c_B(b), mu(E^b(b))), deterministic.

    Input [N, H, W, 3] in [-1, 1], any H, W >= 16; output the same shape. The
    image is reflection-padded to a multiple of 4 and the output cropped back.
    It holds references to the networks of a `UIDGAN`, not copies; export it
    (it tracks only the deblurring networks' weights).
    """

    def __init__(self, content_encoder, content_shared, blur_encoder, generator_shared,
                 decoder, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.content_encoder = content_encoder
        self.content_shared = content_shared
        self.blur_encoder = blur_encoder
        self.generator_shared = generator_shared
        self.decoder = decoder

    def call(self, blurred):
        height, width = ops.shape(blurred)[1], ops.shape(blurred)[2]
        # Reflection pad of the bottom/right to a multiple of 4: a static 3-pixel
        # reflection (slices + concat) cropped to size. The same values as
        # tf.pad(REFLECT) by (-H) % 4, but the channel count stays static and it
        # converts to TFLite ops that XNNPACK runs (not a dynamic MIRROR_PAD).
        x = ops.concatenate([blurred] + [blurred[:, -i - 1 : -i] for i in (1, 2, 3)], 1)
        x = ops.concatenate([x] + [x[:, :, -i - 1 : -i] for i in (1, 2, 3)], 2)
        x = x[:, : height + (-height) % 4, : width + (-width) % 4]
        content = self.content_shared(self.content_encoder(x), training=False)
        mu, _ = self.blur_encoder(x)
        sharp = self.decoder((self.generator_shared(content), mu))
        return sharp[:, :height, :width, :]


@keras.saving.register_keras_serializable(package="keras_udd")
class UIDGAN(keras.Model):
    """Unsupervised domain-specific deblurring via disentangled representations.

    `UIDGAN()` builds the reference architecture; pass a `ModelConfig` and/or
    keyword overrides of its fields (`UIDGAN(content_filters=8,
    vgg_weights=None)`). `call(blurred)` deblurs [N, H, W, 3] images in
    [-1, 1] (see `Deblurrer`). `fit` takes a dataset of unpaired
    `(sharp, blurred)` batches; `evaluate` takes paired `(blurred, sharp)`
    batches and reports PSNR/SSIM of the output and of the blurred input.
    """

    def __init__(self, config=None, name="uid_gan", **overrides):
        super().__init__(name=name)
        if isinstance(config, dict):
            config = ModelConfig(**config)
        self.config = dataclasses.replace(config or ModelConfig(), **overrides)
        c = self.config
        width = 4 * c.content_filters
        self.content_encoder_sharp = ContentEncoder(
            c.content_filters, c.content_res_blocks, name="content_encoder_sharp"
        )
        self.content_encoder_blurred = ContentEncoder(
            c.content_filters, c.content_res_blocks, name="content_encoder_blurred"
        )
        self.content_shared = SharedContentBlock(
            width, c.content_noise_stddev, name="content_shared"
        )
        self.blur_encoder = BlurEncoder(c.blur_filters, c.blur_dim, name="blur_encoder")
        self.generator_shared = ResidualBlock(width, name="generator_shared")
        self.decoder_sharp = Decoder(
            width, c.generator_res_blocks, c.blur_dim, name="decoder_sharp"
        )
        self.decoder_blurred = Decoder(
            width, c.generator_res_blocks, c.blur_dim, name="decoder_blurred"
        )
        disc = functools.partial(
            MultiScaleDiscriminator, c.disc_filters, c.disc_layers, c.disc_scales
        )
        self.disc_sharp = disc(name="disc_sharp")
        self.disc_blurred = disc(name="disc_blurred")
        self.disc_sharp_random = (
            disc(name="disc_sharp_random") if c.random_branch else None
        )
        self.disc_blurred_random = (
            disc(name="disc_blurred_random") if c.random_branch else None
        )
        self.perceptual = (
            PerceptualNetwork(c.vgg_layer, name="perceptual")
            if self._weight("perceptual") or self._weight("random_perceptual")
            else None
        )
        self.deblurrer = Deblurrer(
            self.content_encoder_blurred,
            self.content_shared,
            self.blur_encoder,
            self.generator_shared,
            self.decoder_sharp,
            name="deblurrer",
        )
        self.seed_generator = keras.random.SeedGenerator(0)
        self.loss_trackers = {
            name: keras.metrics.Mean(name=name) for name in self.loss_names()
        }
        self.eval_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("psnr", "ssim", "psnr_blurred", "ssim_blurred")
        }
        self.d_optimizer = None
        self.g_optimizer = None
        self._perceptual_loaded = False
        self._build_networks()

    # ----------------------------------------------------------- structure
    def _weight(self, term):
        """A loss weight, 0 where the term is switched off."""
        c = self.config
        if term in ("latent", "random_perceptual") and not c.random_branch:
            return 0.0
        return float(getattr(c, f"{term}_weight"))

    def loss_names(self):
        """The logged loss terms: one list drives trackers and logs."""
        names = ["d_loss", "g_loss", "adversarial", "cycle", "kl"]
        for term in ("perceptual", "self_recon", "latent", "random_perceptual"):
            if self._weight(term):
                names.append(term)
        return names

    @property
    def discriminators(self):
        return [
            d
            for d in (
                self.disc_sharp,
                self.disc_blurred,
                self.disc_sharp_random,
                self.disc_blurred_random,
            )
            if d is not None
        ]

    @property
    def generator_networks(self):
        """The encoders and generators, updated by the E/G optimizer."""
        return [
            self.content_encoder_sharp,
            self.content_encoder_blurred,
            self.content_shared,
            self.blur_encoder,
            self.generator_shared,
            self.decoder_sharp,
            self.decoder_blurred,
        ]

    def _build_networks(self):
        image = keras.KerasTensor((None, None, None, 3))
        content = self.content_shared(self.content_encoder_sharp(image))
        self.content_encoder_blurred(image)
        mu, _ = self.blur_encoder(image)
        features = self.generator_shared(content)
        self.decoder_sharp((features, mu))
        self.decoder_blurred((features, mu))
        for disc in self.discriminators:
            disc(image)
        if self.perceptual is not None:
            self.perceptual(image)
        self.deblurrer(image)
        self.built = True

    @property
    def metrics(self):
        return list(self.loss_trackers.values()) + list(self.eval_trackers.values())

    def call(self, blurred, training=False):
        return self.deblurrer(blurred)

    # ------------------------------------------------------------- compile
    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        total_steps=None,
        load_perceptual_weights=True,
        **kwargs,
    ):
        """Sets the D and E/G optimizers and builds them (so their state is
        saved and restored with the weights).

        Defaults: Adam(lr, beta_1, beta_2) from the config; with `total_steps`
        (training steps, i.e. D updates) the learning rate is constant for the
        first half and then decays linearly to 0, for both optimizers. Weight
        decay is the config's L2 term, added to every gradient in train_step
        (as PyTorch's Adam does). Loads the pretrained VGG19 weights named by
        `vgg_weights` unless `load_perceptual_weights` is False. Other keyword
        arguments (`jit_compile`, `run_eagerly`) go to `keras.Model.compile`.
        """
        if kwargs.get("steps_per_execution", 1) != 1:
            raise ValueError("UIDGAN alternates D and E/G steps: steps_per_execution=1")
        super().compile(optimizer=None, **kwargs)
        c = self.config
        k = c.d_steps_per_g_step
        self.d_optimizer = d_optimizer or self._default_optimizer(total_steps)
        self.g_optimizer = g_optimizer or self._default_optimizer(
            None if total_steps is None else max(total_steps // k, 1)
        )
        self.d_optimizer.build(self._d_variables())
        self.g_optimizer.build(self._g_variables())
        if (
            load_perceptual_weights
            and self.perceptual is not None
            and c.vgg_weights is not None
            and not self._perceptual_loaded
        ):
            self.perceptual.load_pretrained(c.vgg_weights)
            self._perceptual_loaded = True

    def _default_optimizer(self, total_steps):
        c = self.config
        learning_rate = c.learning_rate
        if total_steps is not None:
            learning_rate = ConstantThenLinearDecay(
                c.learning_rate, total_steps, c.decay_start_fraction
            )
        return keras.optimizers.Adam(learning_rate, beta_1=c.beta_1, beta_2=c.beta_2)

    def get_compile_config(self):
        if self.d_optimizer is None:
            return None
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
        }

    def compile_from_config(self, config):
        # The saved weights (VGG19's included) are loaded right after this.
        self.compile(
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
            load_perceptual_weights=False,
        )

    def get_config(self):
        return {"name": self.name, **dataclasses.asdict(self.config)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        name = config.pop("name", "uid_gan")
        return cls(ModelConfig(**config), name=name)

    def _d_variables(self):
        return [v for d in self.discriminators for v in d.trainable_variables]

    def _g_variables(self):
        return [v for n in self.generator_networks for v in n.trainable_variables]

    # ------------------------------------------------------------ training
    def sample_normal(self, shape):
        """N(0, I) samples for the blur code (eps and z_r)."""
        return keras.random.normal(shape, seed=self.seed_generator)

    def _reparameterize(self, mu, logvar):
        """z = mu + eps * exp(logvar / 2), eps ~ N(0, I), in float32."""
        mu, logvar = ops.cast(mu, "float32"), ops.cast(logvar, "float32")
        return mu + self.sample_normal(ops.shape(mu)) * ops.exp(0.5 * logvar)

    def _encode_blur(self, images):
        """E^b with the reparameterisation: (z, mu, logvar)."""
        mu, logvar = self.blur_encoder(images)
        return self._reparameterize(mu, logvar), mu, logvar

    def _encode_content(self, sharp, blurred):
        """(E^c_S(sharp), E^c_B(blurred)), the shared block run once on both."""
        private = ops.concatenate(
            [self.content_encoder_sharp(sharp), self.content_encoder_blurred(blurred)]
        )
        return ops.split(self.content_shared(private, training=True), 2)

    @staticmethod
    def _decode(decoder, pairs):
        """One batched decoder call on several (features, z) pairs."""
        features = ops.concatenate([h for h, _ in pairs])
        codes = ops.concatenate([z for _, z in pairs])
        return ops.split(decoder((features, codes)), len(pairs))

    def _translate(self, sharp, blurred, full):
        """The forward pass. With `full` False only what D needs:
        s_b, b_s and (random branch) the z_r outputs."""
        c = self.config
        out = {}
        content_s, content_b = self._encode_content(sharp, blurred)
        z_b, out["mu"], out["logvar"] = self._encode_blur(blurred)
        features_s, features_b = ops.split(
            self.generator_shared(ops.concatenate([content_s, content_b])), 2
        )
        to_sharp = [("deblurred", features_b, z_b)]
        to_blurred = [("reblurred", features_s, z_b)]
        if full and self._weight("self_recon"):
            to_sharp.append(("sharp_recon", features_s, z_b))
            to_blurred.append(("blurred_recon", features_b, z_b))
        if c.random_branch:
            out["z_random"] = self.sample_normal(ops.shape(z_b))
            to_sharp.append(("sharp_random", features_b, out["z_random"]))
            to_blurred.append(("blurred_random", features_s, out["z_random"]))
        for decoder, jobs in ((self.decoder_sharp, to_sharp),
                              (self.decoder_blurred, to_blurred)):  # fmt: skip
            images = self._decode(decoder, [(h, z) for _, h, z in jobs])
            out.update({key: image for (key, _, _), image in zip(jobs, images)})
        if not full:
            return out
        # Cycle: s_hat = G_S(E^c_B(b_s), E^b(b_s)), b_hat = G_B(E^c_S(s_b), E^b(b_s)).
        content_sb, content_bs = self._encode_content(
            out["deblurred"], out["reblurred"]
        )
        blur_inputs = [out["reblurred"]]
        if self._weight("latent"):
            blur_inputs.append(out["blurred_random"])
        mu_all, logvar_all = self.blur_encoder(ops.concatenate(blur_inputs))
        mus = ops.split(mu_all, len(blur_inputs))
        logvar_bs = ops.split(logvar_all, len(blur_inputs))[0]
        z_bs = self._reparameterize(mus[0], logvar_bs)
        if self._weight("latent"):
            out["mu_random"] = mus[1]
        features_bs, features_sb = ops.split(
            self.generator_shared(ops.concatenate([content_bs, content_sb])), 2
        )
        out["sharp_cycle"] = self.decoder_sharp((features_bs, z_bs))
        out["blurred_cycle"] = self.decoder_blurred((features_sb, z_bs))
        return out

    def _global_mean(self, per_example):
        """Sum over the local batch / GLOBAL batch: correct under tf.distribute,
        where replica gradients are summed."""
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        batch = ops.cast(ops.shape(per_example)[0] * replicas, "float32")
        return ops.sum(ops.cast(per_example, "float32")) / batch

    def _discriminator_pairs(self, sharp, blurred, out):
        """(discriminator, real, fake) for D_S, D_B and the random-z D_S2, D_B2."""
        pairs = [
            (self.disc_sharp, sharp, out["deblurred"]),
            (self.disc_blurred, blurred, out["reblurred"]),
        ]
        if self.config.random_branch:
            pairs.append((self.disc_sharp_random, sharp, out["sharp_random"]))
            pairs.append((self.disc_blurred_random, blurred, out["blurred_random"]))
        return pairs

    def _generator_losses(self, sharp, blurred, out, fake_logits):
        """Weighted per-term losses of the encoders/generators (global means)."""
        c = self.config
        mean = self._global_mean
        terms = {
            "adversarial": sum(
                mean(losses.generator_adversarial_loss(f, c.gan_mode))
                for f in fake_logits
            ),
            "cycle": mean(losses.l1(sharp, out["sharp_cycle"]))
            + mean(losses.l1(blurred, out["blurred_cycle"])),
            "kl": mean(losses.kl_divergence(out["mu"], out["logvar"])),
        }
        if self._weight("self_recon"):
            terms["self_recon"] = mean(losses.l1(sharp, out["sharp_recon"])) + mean(
                losses.l1(blurred, out["blurred_recon"])
            )
        if self._weight("latent"):
            terms["latent"] = mean(losses.l1(out["mu_random"], out["z_random"]))
        perceptual_inputs = [out["deblurred"]] if self._weight("perceptual") else []
        if self._weight("random_perceptual"):
            perceptual_inputs.append(out["sharp_random"])
        if perceptual_inputs:
            features = self.perceptual(ops.concatenate(perceptual_inputs + [blurred]))
            features = ops.split(features, len(perceptual_inputs) + 1)
            target = ops.stop_gradient(features[-1])
            names = ["perceptual"] if self._weight("perceptual") else []
            names += ["random_perceptual"] if self._weight("random_perceptual") else []
            for name, feature in zip(names, features):
                terms[name] = mean(losses.mean_squared(feature, target))
        return {name: self._weight(name) * value for name, value in terms.items()}

    def train_step(self, data, update_generators=None):
        """One step on an unpaired batch `(sharp, blurred)`, both [N, H, W, 3]
        in [-1, 1], H and W multiples of 4.

        1. Forward: content and blur codes, s_b, b_s, self-reconstructions,
           random-z outputs and (E/G steps) the cycle s_hat, b_hat.
        2. Discriminators on real vs fake images (one batched call each).
        3. D loss; on E/G steps the generator losses too.
        4. All gradients are computed, then all are applied (the reference
           applies D's update before computing E/G's, which crashes on current
           PyTorch). E^b gets no gradient from the latent regression, as in
           the reference (it updates only E^c and G with that term).
        `update_generators` None: decided from the D optimizer's iterations
        (E/G every `d_steps_per_g_step`-th step); `fit` passes it explicitly.
        """
        sharp, blurred = data
        if update_generators is None:
            update_generators = self._generators_update_next()
        d_vars, g_vars = self._d_variables(), self._g_variables()
        c = self.config
        with tf.GradientTape(persistent=update_generators) as tape:
            if update_generators:
                out = self._translate(sharp, blurred, full=True)
            else:
                with tape.stop_recording():
                    out = self._translate(sharp, blurred, full=False)
            d_terms, fake_logits = [], []
            for disc, real, fake in self._discriminator_pairs(sharp, blurred, out):
                logits = disc(ops.concatenate([real, fake]))
                real_logits = [ops.split(x, 2)[0] for x in logits]
                fake_now = [ops.split(x, 2)[1] for x in logits]
                d_terms.append(
                    losses.discriminator_loss(real_logits, fake_now, c.gan_mode)
                )
                fake_logits.append(fake_now)
            d_loss = sum(self._global_mean(t) for t in d_terms)
            if update_generators:
                g_terms = self._generator_losses(sharp, blurred, out, fake_logits)
                g_loss = sum(g_terms.values())
        d_grads = tape.gradient(d_loss, d_vars)
        if update_generators:
            g_grads = tape.gradient(g_loss, g_vars)
            if "latent" in g_terms:
                g_grads = self._without_latent_on_blur_encoder(tape, g_terms, g_grads)
        del tape
        self.d_optimizer.apply(self._add_weight_decay(d_grads, d_vars), d_vars)
        trackers = self.loss_trackers
        trackers["d_loss"].update_state(d_loss * self._replicas())
        if update_generators:
            self.g_optimizer.apply(self._add_weight_decay(g_grads, g_vars), g_vars)
            trackers["g_loss"].update_state(g_loss * self._replicas())
            for name, value in g_terms.items():
                trackers[name].update_state(value * self._replicas())
        return {name: t.result() for name, t in trackers.items()}

    def _without_latent_on_blur_encoder(self, tape, g_terms, g_grads):
        blur_vars = self.blur_encoder.trainable_variables
        latent_grads = tape.gradient(g_terms["latent"], blur_vars)
        by_id = {id(v): g for v, g in zip(blur_vars, latent_grads)}
        return [
            g - by_id[id(v)] if by_id.get(id(v)) is not None else g
            for v, g in zip(self._g_variables(), g_grads)
        ]

    def _add_weight_decay(self, grads, variables):
        """L2 weight decay as PyTorch's Adam: decay * w added to each gradient
        (split over replicas, whose gradients are summed)."""
        decay = self.config.weight_decay / self._replicas()
        if not decay:
            return grads
        return [g + decay * ops.cast(v, g.dtype) for g, v in zip(grads, variables)]

    @staticmethod
    def _replicas():
        return tf.distribute.get_replica_context().num_replicas_in_sync

    def _generators_update_next(self):
        """True when the coming step is an E/G step: every
        `d_steps_per_g_step`-th D step (steps k-1, 2k-1, ... from 0)."""
        step = int(self.d_optimizer.iterations.numpy())
        return (step + 1) % self.config.d_steps_per_g_step == 0

    def make_train_function(self, force=False):
        """Two compiled steps, D only and D + E/G, chosen per step in Python
        (a `tf.cond` around optimizer updates cannot run under MirroredStrategy)."""
        if self.train_function is not None and not force:
            return self.train_function
        d_only = self._make_function(
            functools.partial(self.train_step, update_generators=False)
        )
        both = self._make_function(
            functools.partial(self.train_step, update_generators=True)
        )

        def train_function(iterator):
            return (both if self._generators_update_next() else d_only)(iterator)

        self.train_function = train_function
        return train_function

    # ---------------------------------------------------------- evaluation
    def test_step(self, data):
        """PSNR/SSIM on a paired batch `(blurred, sharp)` in [-1, 1]: of the
        deblurred output (psnr, ssim) and of the blurred input (the baseline,
        psnr_blurred, ssim_blurred), all on [0, 1]."""
        blurred, sharp = data
        deblurred = to_unit_range(self.deblurrer(blurred))
        blurred, sharp = to_unit_range(blurred), to_unit_range(sharp)
        values = {
            "psnr": psnr(deblurred, sharp),
            "ssim": ssim(deblurred, sharp),
            "psnr_blurred": psnr(blurred, sharp),
            "ssim_blurred": ssim(blurred, sharp),
        }
        for name, value in values.items():
            self.eval_trackers[name].update_state(value)
        return {name: t.result() for name, t in self.eval_trackers.items()}
