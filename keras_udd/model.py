"""UIDGAN: every network of the method, the forward pass and the custom train_step.

Paper symbol -> code name (the only place they are mapped):

    E^c_S       content_encoder_sharp, then content_shared    sharp -> content
    E^c_B       content_encoder_blurred, then content_shared  blurred -> content
    E^b         blur_encoder                  blurred -> (mu, logvar), z
    G_S         generator_shared, then decoder_sharp    (content, z) -> sharp
    G_B         generator_shared, then decoder_blurred  (content, z) -> blurred
    D_S, D_B    disc_sharp, disc_blurred      real vs s_b, real vs b_s
    D_S2, D_B2  disc_sharp_random, disc_blurred_random  real vs z_r outputs
    D_c         disc_content (an option; DRIT's)   E^c_S(s) vs E^c_B(b) codes
    VGG         perceptual                    frozen VGG19 conv3_3 features
                                              (or a stand-in: perceptual.py)
    s, b        the training batch: real unpaired sharp and blurred images
    s_b, b_s, s_hat, b_hat, ...  fields of `Translation`, the forward pass
"""

import dataclasses
import functools
import random

import keras
import tensorflow as tf
from keras import ops

from keras_udd import distribute, losses
from keras_udd.config import ModelConfig, section_from_dict
from keras_udd.discriminators import ContentDiscriminator, MultiScaleDiscriminator
from keras_udd.encoders import BlurEncoder, ContentEncoder, SharedContentBlock
from keras_udd.generators import Decoder
from keras_udd.keras_private import PrebuiltModel, compiled_step
from keras_udd.layers import ResidualBlock
from keras_udd.metrics import psnr, ssim, to_unit_range
from keras_udd.optimizers import OptimizerPair
from keras_udd.perceptual import ContentNetwork, LowPassFeatures, PerceptualNetwork
from keras_udd.schedules import ConstantThenLinearDecay, scale_by_factor

MIN_IMAGE_SIZE = 16  # E^b halves H and W four times.
# The noise streams of one training step (see `UIDGAN.sample_normal`): eps of
# z_b and z_bs, z_r, and the content noise of E^c_S(s), E^c_B(b), then of the
# cycle's E^c_S(s_b), E^c_B(b_s).
EPS_B, EPS_BS, Z_RANDOM, CONTENT_S, CONTENT_B, CONTENT_SB, CONTENT_BS = range(7)
NOISE_STREAMS = 7


@dataclasses.dataclass
class Translation:
    """The images and codes of one training step's forward pass, named as in
    the paper (`UIDGAN.translate`); None where the step does not need them.
    s, b are the real sharp and blurred batch; z_b = mu + eps * sigma of
    E^b(b); h are the features of generator_shared."""

    mu: object  # E^b(b): the mean and log-variance of b's blur code.
    logvar: object
    content_s: object  # E^c_S(s) and E^c_B(b), with the training noise.
    content_b: object
    s_b: object  # G_S(E^c_B(b), z_b): b deblurred.
    b_s: object  # G_B(E^c_S(s), z_b): s blurred with b's blur.
    s_recon: object = None  # G_S(E^c_S(s), z_b): s reconstructed.
    b_recon: object = None  # G_B(E^c_B(b), z_b): b reconstructed.
    s_identity: object = None  # G_S(E^c_B(s), mu(E^b(s))): s deblurred.
    z_r: object = None  # Random branch: a blur code drawn from N(0, I),
    s_r: object = None  # G_S(E^c_B(b), z_r),
    b_r: object = None  # G_B(E^c_S(s), z_r),
    mu_r: object = None  # mu(E^b(b_r)), regressed onto z_r.
    s_hat: object = None  # G_S(E^c_B(b_s), z_bs), z_bs from E^b(b_s): cycle of s.
    b_hat: object = None  # G_B(E^c_S(s_b), z_bs): cycle of b.


@keras.saving.register_keras_serializable(package="keras_udd")
class Deblurrer(keras.Model):
    """The test-time path s = G_S(E^c_B(b), mu(E^b(b))), deterministic.

    Input [N, H, W, 3] in [-1, 1], any H, W >= 16; output the same shape. The
    image is reflection-padded to a multiple of 4 and the output cropped back.
    Inside a `UIDGAN` it holds references to that model's networks, not
    copies; export it (it tracks only the deblurring networks' weights). It
    saves and loads alone as a `.keras` file (`get_config` serializes the five
    networks), which is how the pretrained models ship.
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
        content = self.content_shared(self.content_encoder(x))
        mu, _ = self.blur_encoder(x)
        sharp = self.decoder((self.generator_shared(content), mu, x))
        return sharp[:, :height, :width, :]

    NETWORKS = (
        "content_encoder",
        "content_shared",
        "blur_encoder",
        "generator_shared",
        "decoder",
    )

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        for key in self.NETWORKS:
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        """The networks load under the caller's dtype policy, all five alike:
        Keras records a plain layer's policy (generator_shared) but not a
        model's, so a Deblurrer saved while training in mixed precision
        would otherwise come back half bfloat16, half float32."""
        config = dict(config)
        networks = {}
        for key in cls.NETWORKS:
            network = dict(config.pop(key))
            network["config"] = {
                k: v for k, v in network["config"].items() if k != "dtype"
            }
            networks[key] = keras.saving.deserialize_keras_object(network)
        return cls(**networks, **config)


@keras.saving.register_keras_serializable(package="keras_udd")
class UIDGAN(PrebuiltModel):
    """Unsupervised domain-specific deblurring via disentangled representations.

    `UIDGAN()` builds the reference architecture; pass a `ModelConfig` and/or
    keyword overrides of its fields (`UIDGAN(content_filters=8,
    vgg_weights=None)`). `call(blurred)` deblurs [N, H, W, 3] images in
    [-1, 1] (see `Deblurrer`). `fit` takes a dataset of unpaired
    `(sharp, blurred)` batches and logs `d_loss`, `g_loss` (the sum of the
    weighted E/G terms), each E/G term, and `loss` = d_loss + g_loss (for
    Keras' TerminateOnNaN and callbacks that monitor "loss"); `evaluate`
    takes paired `(blurred, sharp)` batches and reports PSNR/SSIM of the
    output and of the blurred input. After `compile`, `optimizer` is both
    optimizers behind one learning rate for Keras' callbacks
    (`optimizers.OptimizerPair`).
    """

    def __init__(self, config=None, name="uid_gan", **overrides):
        super().__init__(name=name)
        if isinstance(config, dict):
            config = section_from_dict("model", config)
        self.config = dataclasses.replace(config or ModelConfig(), **overrides)
        c = self.config
        width = 4 * c.content_filters
        self.content_encoder_sharp = ContentEncoder(
            c.content_filters, c.content_res_blocks, name="content_encoder_sharp"
        )
        self.content_encoder_blurred = ContentEncoder(
            c.content_filters, c.content_res_blocks, name="content_encoder_blurred"
        )
        self.content_shared = SharedContentBlock(width, name="content_shared")
        self.blur_encoder = BlurEncoder(c.blur_filters, c.blur_dim, name="blur_encoder")
        self.generator_shared = ResidualBlock(width, name="generator_shared")
        decoder = functools.partial(
            Decoder, width, c.generator_res_blocks, c.blur_dim, c.residual_output
        )
        self.decoder_sharp = decoder(name="decoder_sharp")
        self.decoder_blurred = decoder(name="decoder_blurred")
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
        self.disc_content = (
            ContentDiscriminator(width, name="disc_content")
            if self._weight("content_adversarial")
            else None
        )
        self.perceptual = None
        if self._weight("perceptual") or self._weight("random_perceptual"):
            if c.perceptual_network == "lowpass":
                self.perceptual = LowPassFeatures(c.lowpass_factor, name="perceptual")
            elif c.perceptual_network == "content":
                self.perceptual = ContentNetwork(name="perceptual")
            else:
                self.perceptual = PerceptualNetwork(c.vgg_layer, name="perceptual")
        self.deblurrer = Deblurrer(
            self.content_encoder_blurred,
            self.content_shared,
            self.blur_encoder,
            self.generator_shared,
            self.decoder_sharp,
            name="deblurrer",
        )
        # The diagnostic s -> E^c_S -> G_S: how well G_S can draw sharp images.
        self.sharp_autoencoder = Deblurrer(
            self.content_encoder_sharp,
            self.content_shared,
            self.blur_encoder,
            self.generator_shared,
            self.decoder_sharp,
            name="sharp_autoencoder",
        )
        # The step count (D updates; LossScaleOptimizer may skip an optimizer
        # step, this never skips) and the base seed of the training noise.
        self.iterations = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="iterations",
        )  # fmt: skip
        self.noise_seed = self.add_weight(
            shape=(), dtype="int64", trainable=False, name="noise_seed",
            initializer=keras.initializers.Constant(random.randrange(2**31)),
        )  # fmt: skip
        # What Keras' learning-rate callbacks set: a factor on both
        # optimizers' rates (optimizers.OptimizerPair).
        self.learning_rate_factor = self.add_weight(
            shape=(), dtype="float32", initializer="ones", trainable=False,
            aggregation="only_first_replica", name="learning_rate_factor",
        )  # fmt: skip
        self.loss_trackers = {
            name: keras.metrics.Mean(name=name) for name in self.loss_names()
        }
        self.eval_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "psnr",
                "ssim",
                "psnr_blurred",
                "ssim_blurred",
                "psnr_sharp_recon",
            )
        }
        self.d_optimizer = None
        self.g_optimizer = None
        self._perceptual_loaded = False
        self._build_networks()

    # ----------------------------------------------------------- structure
    def _weight(self, term):
        """A loss weight, 0 where the term is switched off."""
        return losses.term_weight(self.config, term)

    def loss_names(self):
        """The logged loss terms: one list drives trackers and logs."""
        return losses.logged_terms(self.config)

    @property
    def discriminators(self):
        """Every discriminator that is built, trained by the D optimizer."""
        return [
            d
            for d in (
                self.disc_sharp,
                self.disc_blurred,
                self.disc_sharp_random,
                self.disc_blurred_random,
                self.disc_content,
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
        self.decoder_sharp((features, mu, image))
        self.decoder_blurred((features, mu, image))
        for disc in self.discriminators:
            disc(content if disc is self.disc_content else image)
        if self.perceptual is not None:
            self.perceptual(image)
        self.deblurrer(image)
        self.sharp_autoencoder(image)
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
        `vgg_weights` (or the content network's, `content_network_weights`)
        unless `load_perceptual_weights` is False. Other keyword
        arguments (`jit_compile`, `run_eagerly`) go to `keras.Model.compile`.
        Both optimizers' rates (floats or schedules) are made their rate times
        `learning_rate_factor`, and `optimizer` becomes the `OptimizerPair`
        through which Keras' callbacks set that factor.
        """
        if kwargs.get("steps_per_execution", 1) != 1:
            raise ValueError("UIDGAN alternates D and E/G steps: steps_per_execution=1")
        super().compile(optimizer=None, **kwargs)
        c = self.config
        # The E/G optimizer steps every k-th iteration, twice with the random
        # branch (main terms, then random-branch terms).
        g_steps = None
        if total_steps is not None:
            g_steps = max(total_steps // c.d_steps_per_g_step, 1)
            g_steps *= 2 if c.random_branch else 1
        self.d_optimizer = self._loss_scaled(
            d_optimizer or self._default_optimizer(total_steps)
        )
        self.g_optimizer = self._loss_scaled(
            g_optimizer or self._default_optimizer(g_steps)
        )
        d_rate = scale_by_factor(self.d_optimizer, self.learning_rate_factor)
        scale_by_factor(self.g_optimizer, self.learning_rate_factor)
        self.optimizer = OptimizerPair(self, d_rate.unscaled(0))
        self.d_optimizer.build(self._d_variables())
        self.g_optimizer.build(self._g_variables())
        weights = {"vgg19": c.vgg_weights, "content": c.content_network_weights}
        weights = weights.get(c.perceptual_network)  # None: nothing to load.
        if (
            load_perceptual_weights
            and self.perceptual is not None
            and weights is not None
            and not self._perceptual_loaded
        ):
            self.perceptual.load_pretrained(weights)
            self._perceptual_loaded = True

    def _default_optimizer(self, total_steps):
        c = self.config
        learning_rate = c.learning_rate
        if total_steps is not None:
            learning_rate = ConstantThenLinearDecay(
                c.learning_rate, total_steps, c.decay_start_fraction
            )
        return keras.optimizers.Adam(
            learning_rate, beta_1=c.beta_1, beta_2=c.beta_2, epsilon=c.adam_epsilon
        )

    def _loss_scaled(self, optimizer):
        """Under the mixed_float16 policy, `optimizer` in a LossScaleOptimizer
        (dynamic loss scaling: float16 gradients would underflow), as Keras'
        own compile does; else `optimizer`."""
        if self.dtype_policy.name != "mixed_float16" or isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(optimizer)

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

    def load_own_variables(self, store):
        """Also loads the files of earlier versions, written before
        `learning_rate_factor` existed (so their runs resume): their two own
        variables, iterations and noise_seed, and a factor of 1."""
        if len(store.keys()) == 2:
            self.iterations.assign(store["0"])
            self.noise_seed.assign(store["1"])
            self.learning_rate_factor.assign(1.0)
            return
        super().load_own_variables(store)

    def get_config(self):
        return {"name": self.name, **dataclasses.asdict(self.config)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        name = config.pop("name", "uid_gan")
        return cls(config, name=name)

    def _d_variables(self):
        return [v for d in self.discriminators for v in d.trainable_variables]

    def _g_variables(self, blur_encoder=True):
        return [
            v
            for n in self.generator_networks
            if blur_encoder or n is not self.blur_encoder
            for v in n.trainable_variables
        ]

    # ------------------------------------------------------------ training
    def sample_normal(self, shape, stream):
        """float32 N(0, I) samples of `shape` (this replica's share of the
        batch) for noise `stream` (EPS_B, ..., of this module): a function of
        the noise seed, the step and the stream only. So a resumed run draws
        what the uninterrupted one would have, and under tf.distribute each
        replica gets its own rows of the global batch's draw (the numbers of
        one device on the same global batch)."""
        step = self.iterations.value * NOISE_STREAMS + stream
        seed = ops.stack([self.noise_seed.value, step])
        return distribute.replica_normal(shape, seed)

    def _blur_code(self, mu, logvar, stream):
        """(z, logvar) in float32: z = mu + eps * exp(logvar / 2), eps ~ N(0, I),
        with the log-variance first bounded to B * tanh(logvar / B) if
        `logvar_bound` B is set (the logvar returned is the one z used)."""
        mu, logvar = ops.cast(mu, "float32"), ops.cast(logvar, "float32")
        bound = self.config.logvar_bound
        if bound:
            logvar = bound * ops.tanh(logvar / bound)
        eps = self.sample_normal(ops.shape(mu), stream)
        return mu + eps * ops.exp(0.5 * logvar), logvar

    def _encode_blur(self, images):
        """E^b with the reparameterisation: (z, mu, logvar)."""
        mu, logvar = self.blur_encoder(images)
        z, logvar = self._blur_code(mu, logvar, EPS_B)
        return z, mu, logvar

    def _encode_content(self, sharp, blurred, streams):
        """(E^c_S(sharp), E^c_B(blurred)), the shared block run once on both,
        plus the training noise N(0, content_noise_stddev^2) on each code
        (noise `streams`: one per code, each of the batch's shape)."""
        private = ops.concatenate(
            [self.content_encoder_sharp(sharp), self.content_encoder_blurred(blurred)]
        )
        codes = ops.split(self.content_shared(private), 2)
        stddev = self.config.content_noise_stddev
        if not stddev:
            return codes
        return [
            code
            + ops.cast(stddev * self.sample_normal(ops.shape(code), stream), code.dtype)
            for code, stream in zip(codes, streams)
        ]

    @staticmethod
    def _decode(decoder, jobs):
        """{name: decoder(features, z, source)} for `jobs` {name: (features,
        z, source)} in one batched decoder call (`source`: the image the
        decoded one is a translation of, which a residual decoder adds to)."""
        inputs = [ops.concatenate(parts) for parts in zip(*jobs.values())]
        images = ops.split(decoder(inputs), len(jobs))
        return dict(zip(jobs, images))

    def translate(self, s, b, full=True):
        """The forward pass of a training step on real sharp `s` and blurred
        `b`, as a `Translation`. With `full` False only what the
        discriminators judge: s_b, b_s and (random branch) s_r, b_r."""
        content_s, content_b = self._encode_content(s, b, (CONTENT_S, CONTENT_B))
        z_b, mu, logvar = self._encode_blur(b)
        h_s, h_b = ops.split(
            self.generator_shared(ops.concatenate([content_s, content_b])), 2
        )
        to_sharp, to_blurred = {"s_b": (h_b, z_b, b)}, {"b_s": (h_s, z_b, s)}
        if full and self._weight("self_recon"):
            to_sharp["s_recon"], to_blurred["b_recon"] = (h_s, z_b, s), (h_b, z_b, b)
        z_r = None
        if self.config.random_branch:
            z_r = self.sample_normal(ops.shape(z_b), Z_RANDOM)
            to_sharp["s_r"], to_blurred["b_r"] = (h_b, z_r, b), (h_s, z_r, s)
        t = Translation(
            content_s=content_s,
            content_b=content_b,
            mu=mu,
            logvar=logvar,
            z_r=z_r,
            **self._decode(self.decoder_sharp, to_sharp),
            **self._decode(self.decoder_blurred, to_blurred),
        )
        if full:
            if self._weight("identity"):  # The deblurrer as at test time.
                t.s_identity = self.deblurrer(s)
            self._cycle(t)
        return t

    def _cycle(self, t):
        """Fills in what the E/G terms that are on need beyond `translate`'s
        first pass: the cycle s_hat = G_S(E^c_B(b_s), z_bs) and b_hat =
        G_B(E^c_S(s_b), z_bs) with z_bs from E^b(b_s) (cycle weight above 0),
        and mu_r = mu(E^b(b_r)) (latent regression); E^b runs once on both."""
        cycle, latent = self._weight("cycle"), self._weight("latent")
        blur_inputs = [t.b_s] * bool(cycle) + [t.b_r] * bool(latent)
        if not blur_inputs:
            return
        mu_all, logvar_all = self.blur_encoder(ops.concatenate(blur_inputs))
        mus = ops.split(mu_all, len(blur_inputs))
        if latent:
            t.mu_r = mus[-1]
        if not cycle:
            return
        content_sb, content_bs = self._encode_content(
            t.s_b, t.b_s, (CONTENT_SB, CONTENT_BS)
        )
        logvar_bs = ops.split(logvar_all, len(blur_inputs))[0]
        z_bs, _ = self._blur_code(mus[0], logvar_bs, EPS_BS)
        h_bs, h_sb = ops.split(
            self.generator_shared(ops.concatenate([content_bs, content_sb])), 2
        )
        t.s_hat = self.decoder_sharp((h_bs, z_bs, t.b_s))
        t.b_hat = self.decoder_blurred((h_sb, z_bs, t.s_b))

    def _discriminator_pairs(self, s, b, t):
        """(discriminator, real, fake) for D_S, D_B and the random-z D_S2, D_B2."""
        pairs = [(self.disc_sharp, s, t.s_b), (self.disc_blurred, b, t.b_s)]
        if self.config.random_branch:
            pairs.append((self.disc_sharp_random, s, t.s_r))
            pairs.append((self.disc_blurred_random, b, t.b_r))
        return pairs

    def _discriminator_step(self, s, b, t):
        """One update of every discriminator on real vs (detached) fake
        images, and of D_c on E^c_S's (as real) vs E^c_B's codes; returns the
        D loss (global mean)."""
        pairs = self._discriminator_pairs(s, b, t)
        if self.disc_content is not None:
            pairs.append((self.disc_content, t.content_s, t.content_b))
        pairs = [
            (disc, ops.stop_gradient(real), ops.stop_gradient(fake))
            for disc, real, fake in pairs
        ]
        d_vars = self._d_variables()
        with tf.GradientTape() as tape:
            d_loss = losses.discriminators_loss(pairs, self.config.gan_mode)
            scaled = self.d_optimizer.scale_loss(d_loss)
        self._apply(self.d_optimizer, tape.gradient(scaled, d_vars), d_vars)
        return d_loss

    def generator_terms(self, s, b, t):
        """The weighted E/G terms (main, random) of `losses.generator_terms`,
        the adversarial ones against the discriminators as they are now (not
        run at all with an adversarial weight of 0)."""
        fake_logits = []
        if self._weight("adversarial"):
            fake_logits = [
                disc(fake) for disc, _, fake in self._discriminator_pairs(s, b, t)
            ]
        content_logits = None
        if self.disc_content is not None:
            content_logits = self.disc_content(t.content_b)
        return losses.generator_terms(
            s, b, t, fake_logits, self.config, self.perceptual, content_logits
        )

    def train_step(self, data, update_generators=None):
        """One step on an unpaired batch `(sharp, blurred)`, both [N, H, W, 3]
        in [-1, 1], H and W multiples of 4. The reference's order:

        1. Forward (`translate`): content and blur codes, s_b, b_s,
           self-reconstructions, random-z outputs and (E/G steps) the cycle
           s_hat, b_hat.
        2. The discriminators take one step on real vs detached fake images.
        3. (E/G steps) The adversarial terms are computed against the UPDATED
           discriminators, with the other terms.
        4. Both E/G gradients are computed, then applied as two Adam steps,
           as the reference does: E^c, E^b and G on the main terms, then E^c
           and G on the random-branch terms (D_S2 / D_B2 adversarial, latent
           regression, random perceptual; E^b gets no gradient from them).
           The reference takes its second gradient through weights that the
           first step already changed in place, which current PyTorch refuses
           ("modified by an inplace operation"); here both come from the same
           weights.
        `update_generators` None: decided from the step count (E/G every
        `d_steps_per_g_step`-th step); `fit` passes it explicitly.
        """
        s, b = data
        if update_generators is None:
            update_generators = self._generators_update_next()
        if not update_generators:
            t = self.translate(s, b, full=False)
            return self._end_step({"d_loss": self._discriminator_step(s, b, t)})
        with tf.GradientTape(persistent=True) as tape:
            t = self.translate(s, b, full=True)
            with tape.stop_recording():
                d_loss = self._discriminator_step(s, b, t)
            main, random = self.generator_terms(s, b, t)
            # Main terms: E^c, E^b and G; random-branch terms: E^c and G.
            groups = [(main, True), (random, False)]
            totals = [(sum(g.values()), e_b) for g, e_b in groups if g]
            # Gradients of the scaled losses (mixed float16; else unscaled).
            scaled = [self.g_optimizer.scale_loss(total) for total, _ in totals]
        updates = [self._g_variables(blur_encoder=e_b) for _, e_b in totals]
        grads = [tape.gradient(loss, v) for loss, v in zip(scaled, updates)]
        del tape
        for g, variables in zip(grads, updates):
            self._apply(self.g_optimizer, g, variables)
        g_loss = sum(total for total, _ in totals)
        return self._end_step({"d_loss": d_loss, "g_loss": g_loss, **main, **random})

    def _end_step(self, terms):
        """Counts the step and returns its logs; `terms` {name: global mean}.
        `loss` is d_loss + g_loss as logged (each a mean over the epoch's
        steps so far, g_loss over its E/G steps): NaN or infinite as soon as
        a step's D or E/G loss is."""
        for name, value in terms.items():
            self.loss_trackers[name].update_state(value * self._replicas())
        self.iterations.assign_add(1)
        logs = {name: t.result() for name, t in self.loss_trackers.items()}
        logs["loss"] = logs["d_loss"] + logs["g_loss"]
        return self._logs(logs)

    def _apply(self, optimizer, grads, variables):
        """One optimizer step, with L2 weight decay as PyTorch's Adam: decay *
        w added to each gradient (split over replicas, whose gradients are
        summed; scaled as the loss is, which a LossScaleOptimizer undoes)."""
        decay = self.config.weight_decay / self._replicas()
        if decay:
            decay = optimizer.scale_loss(decay)
            grads = [g + decay * ops.cast(v, g.dtype) for g, v in zip(grads, variables)]
        optimizer.apply(grads, variables)

    @staticmethod
    def _logs(logs):
        """The step's logs `{name: scalar}`. Under MultiWorkerMirroredStrategy,
        Keras averages each log over replicas AND along axis 0 (which a scalar
        lacks: "Invalid reduction dimension 0"), so there each has shape [1]."""
        if distribute.is_multi_worker(tf.distribute.get_strategy()):
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    @staticmethod
    def _replicas():
        return tf.distribute.get_replica_context().num_replicas_in_sync

    def _generators_update_next(self):
        """True when the coming step is an E/G step: every
        `d_steps_per_g_step`-th D step (steps k-1, 2k-1, ... from 0)."""
        step = int(self.iterations.numpy())
        return (step + 1) % self.config.d_steps_per_g_step == 0

    def make_train_function(self, force=False):
        """Two compiled steps, D only and D + E/G, chosen per step in Python
        (a `tf.cond` around optimizer updates cannot run under MirroredStrategy)."""
        if self.train_function is not None and not force:
            return self.train_function
        d_only = compiled_step(
            self, functools.partial(self.train_step, update_generators=False)
        )
        both = compiled_step(
            self, functools.partial(self.train_step, update_generators=True)
        )

        def train_function(iterator):
            return (both if self._generators_update_next() else d_only)(iterator)

        self.train_function = train_function
        return train_function

    # ---------------------------------------------------------- evaluation
    def make_test_function(self, force=False):
        """Without XLA even when training uses it: whole validation pages
        differ in size, and XLA compiles once per input shape (a text
        validation set of 64 pages took over a minute of compiles)."""
        jit_compile = self.jit_compile
        self.jit_compile = False
        try:
            return super().make_test_function(force)
        finally:
            self.jit_compile = jit_compile

    def test_step(self, data):
        """`validation_values` of a paired batch `(blurred, sharp)`, averaged
        over the evaluation by the trackers."""
        for name, value in self.validation_values(*data).items():
            self.eval_trackers[name].update_state(value)
        return self._logs({name: t.result() for name, t in self.eval_trackers.items()})

    def validation_values(self, blurred, sharp):
        """Per-image PSNR/SSIM of a paired batch in [-1, 1]: of the deblurred
        output (psnr, ssim) and of the blurred input (the baseline,
        psnr_blurred, ssim_blurred), all on [0, 1]; and psnr_sharp_recon, the
        PSNR of the sharp image autoencoded through E^c_S and G_S (a
        diagnostic: the best G_S can draw that image)."""
        deblurred = to_unit_range(self.deblurrer(blurred))
        recon = to_unit_range(self.sharp_autoencoder(sharp))
        blurred, sharp = to_unit_range(blurred), to_unit_range(sharp)
        return {
            "psnr": psnr(deblurred, sharp),
            "ssim": ssim(deblurred, sharp),
            "psnr_blurred": psnr(blurred, sharp),
            "ssim_blurred": ssim(blurred, sharp),
            "psnr_sharp_recon": psnr(recon, sharp),
        }
