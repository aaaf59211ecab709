"""Reusable, serializable building blocks of the UID-GAN networks.

Each block is written with ops that the TFLite converter lowers to builtin
ops the XNNPACK delegate runs (slices, concatenation, mean, rsqrt, multiply),
so that the exported deblurrer is not split into many delegate partitions.
"""

import contextlib

import keras
from keras import layers, ops

from keras_udd import keras_private


def conv_initializer():
    """N(0, 0.02) for conv and transposed-conv kernels, as the reference."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _slice(x, start, stop, axis):
    index = [slice(None)] * 4
    index[axis] = slice(start, stop)
    return x[tuple(index)]


@keras.saving.register_keras_serializable(package="keras_udd")
class ReflectionPadding2D(layers.Layer):
    """Reflection padding of H and W (PyTorch `ReflectionPad2d`).

    Input [N, H, W, C] -> [N, H + 2p, W + 2p, C]; needs H, W > p. Trains with
    one MIRROR_PAD (whose gradient is one fused op). Inside
    `sliced_reflection_padding(model)` it is traced as single-pixel slices and
    concatenations instead: the same values, but ops that TFLite's XNNPACK
    delegate runs (it does not take MIRROR_PAD).
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)
        self.use_slices = False

    def call(self, x):
        p = self.padding
        if not self.use_slices:
            return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")
        for axis in (1, 2):
            before = [_slice(x, i, i + 1, axis) for i in range(p, 0, -1)]
            after = [_slice(x, -i - 1, -i, axis) for i in range(1, p + 1)]
            if p > 1:  # 3-input concatenations: XNNPACK left a 7-input one out.
                before = [ops.concatenate(before, axis=axis)]
                after = [ops.concatenate(after, axis=axis)]
            x = ops.concatenate(before + [x] + after, axis=axis)
        return x

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda d: None if d is None else d + 2 * self.padding  # noqa: E731
        return (n, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="keras_udd")
class InstanceNormalization(layers.Layer):
    """Instance normalisation without affine ("IN"; PyTorch InstanceNorm2d).

    Normalises each sample and channel over H and W with the biased variance;
    statistics are computed in float32 under mixed precision.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        x32 = ops.cast(x, "float32")
        centered = x32 - ops.mean(x32, axis=(1, 2), keepdims=True)
        variance = ops.mean(ops.square(centered), axis=(1, 2), keepdims=True)
        return ops.cast(centered * ops.rsqrt(variance + self.epsilon), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_udd")
class LayerNormalizationHWC(layers.Layer):
    """Layer norm over (H, W, C) with a per-channel scale and offset.

    The reference's `LayerNorm`: statistics over all of a sample's features,
    affine parameters of shape [C] (so any H, W is accepted).
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(
            shape=(channels,), initializer="ones", name="gamma"
        )
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x):
        x32 = ops.cast(x, "float32")
        centered = x32 - ops.mean(x32, axis=(1, 2, 3), keepdims=True)
        variance = ops.mean(ops.square(centered), axis=(1, 2, 3), keepdims=True)
        y = centered * ops.rsqrt(variance + self.epsilon)
        y = y * ops.cast(self.gamma, "float32") + ops.cast(self.beta, "float32")
        return ops.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_udd")
class ConcatBlurCode(layers.Layer):
    """Tiles the blur code z [N, D] to [N, H, W, D] and appends it to x.

    Inputs `(x, z)` with x [N, H, W, C]; output [N, H, W, C + D]. Tiling is a
    broadcasting MUL/ADD (0 * x + z), not BROADCAST_TO.
    """

    def call(self, inputs):
        x, z = inputs
        # 0 * x + z broadcasts z over H x W with MUL/ADD, which XNNPACK runs;
        # ones_like(x) * z lowers to BROADCAST_TO, which it does not. Equal
        # bit for bit wherever x is finite.
        # stop_gradient: no gradient flows back into x through the zeros.
        tiled = (
            ops.stop_gradient(x[..., :1]) * 0.0 + ops.cast(z, x.dtype)[:, None, None, :]
        )
        return ops.concatenate([x, tiled], axis=-1)

    def compute_output_shape(self, input_shapes):
        x_shape, z_shape = input_shapes
        return (*x_shape[:-1], x_shape[-1] + z_shape[-1])


@keras.saving.register_keras_serializable(package="keras_udd")
class ConvTranspose3x3Stride2(layers.Conv2DTranspose):
    """PyTorch's `ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)`.

    Input [N, H, W, C] -> [N, 2H, 2W, filters]. Of the full (2H+1)-sized
    transposed convolution it keeps rows/columns 1..2H, as PyTorch does:
    out[2i] = x[i] w[1], out[2i + 1] = x[i] w[2] + x[i + 1] w[0] per axis
    (Keras' `padding="same"` keeps 0..2H-1, one pixel off).
    """

    def __init__(self, filters, **kwargs):
        for fixed in ("kernel_size", "strides", "padding"):
            kwargs.pop(fixed, None)
        kwargs.setdefault("kernel_initializer", conv_initializer())
        super().__init__(filters, 3, strides=2, padding="valid", **kwargs)

    def call(self, x):
        return super().call(x)[:, 1:, 1:, :]

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        double = lambda d: None if d is None else 2 * d  # noqa: E731
        return (n, double(h), double(w), self.filters)


@keras.saving.register_keras_serializable(package="keras_udd")
class AveragePoolExcludePad(layers.Layer):
    """3x3 stride-2 average pooling over a 1-pixel border that is left out
    of the average: PyTorch's `AvgPool2d(3, 2, padding=1,
    count_include_pad=False)`. Window i covers rows 2i-1..2i+1.

    Input [N, H, W, C] -> [N, ceil(H / 2), ceil(W / 2), C].
    """

    def call(self, x):
        pads = [[0, 0], [1, 1], [1, 1], [0, 0]]
        total = ops.average_pool(ops.pad(x, pads), 3, 2, "valid")
        ones = ops.pad(ops.ones_like(x[:1, :, :, :1]), pads)
        return total / ops.average_pool(ones, 3, 2, "valid")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        half = lambda d: None if d is None else (d + 1) // 2  # noqa: E731
        return (n, half(h), half(w), c)


@keras.saving.register_keras_serializable(package="keras_udd")
class ResidualBlock(layers.Layer):
    """[pad 1, conv 3x3, IN, ReLU, pad 1, conv 3x3, IN] + x (`INSResBlock`).

    Input and output [N, H, W, filters].
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.pad1 = ReflectionPadding2D(1)
        self.conv1 = layers.Conv2D(filters, 3, kernel_initializer=conv_initializer())
        self.norm1 = InstanceNormalization()
        self.pad2 = ReflectionPadding2D(1)
        self.conv2 = layers.Conv2D(filters, 3, kernel_initializer=conv_initializer())
        self.norm2 = InstanceNormalization()

    def build(self, input_shape):
        shape = (*input_shape[:-1], self.filters)
        self.conv1.build(shape)
        self.conv2.build(shape)

    def call(self, x):
        y = ops.relu(self.norm1(self.conv1(self.pad1(x))))
        y = self.norm2(self.conv2(self.pad2(y)))
        return x + y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="keras_udd")
class ConvBlock(layers.Layer):
    """Reflection pad, conv, optional IN, activation (the reference's
    `LeakyReLUConv2d` / `ReLUINSConv2d`).

    `activation` is "relu", "leaky_relu" (with `negative_slope`) or None.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding=0,
        instance_norm=False,
        activation=None,
        negative_slope=0.01,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.instance_norm = instance_norm
        self.activation = activation
        self.negative_slope = negative_slope
        self.pad = ReflectionPadding2D(padding)
        self.conv = layers.Conv2D(
            filters, kernel_size, strides=strides, kernel_initializer=conv_initializer()
        )
        self.norm = InstanceNormalization() if instance_norm else None

    def build(self, input_shape):
        self.conv.build(self.pad.compute_output_shape(input_shape))

    def call(self, x, input_activation=None, activate=True):
        """`input_activation` (a function) is applied to the padded input;
        with `activate` False the block's activation is left to the caller
        (both for `run_blocks`)."""
        if self.padding:
            x = self.pad(x)
        if input_activation is not None:
            x = input_activation(x)
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return self.activate(x) if activate else x

    def activate(self, x):
        """The block's activation alone."""
        if self.activation == "relu":
            return ops.relu(x)
        if self.activation == "leaky_relu":
            return ops.leaky_relu(x, self.negative_slope)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(
            self.pad.compute_output_shape(input_shape)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "instance_norm": self.instance_norm,
            "activation": self.activation,
            "negative_slope": self.negative_slope,
        }


def run_blocks(blocks, x, input_activation=None):
    """`x` through `blocks` (layers) in order, `input_activation` (a function)
    first: the values of `for block in blocks: x = block(x)`, but no
    activation reads a convolution's output directly. The activation of a
    `ConvBlock` without normalisation is applied after the next ConvBlock's
    padding (reflection padding copies pixels: the same values), or, before
    another layer or at the end, to the output viewed as [N, H * W, C].

    Why: in a training graph whose batch size is not fixed (as in `fit`),
    grappler's remapper (TF's oneDNN CPU builds) fuses conv + bias +
    LeakyRelu into one op and deletes the conv's output, which the
    LeakyRelu's gradient still reads. It then fails for the whole graph
    ("remapper failed: ... Mutation::Apply error", logged on every run), and
    none of its fusions apply.
    """
    pending = input_activation
    for block in blocks:
        if isinstance(block, ConvBlock):
            defer = block.norm is None and block.activation is not None
            x = block(x, input_activation=pending, activate=not defer)
            pending = block.activate if defer else None
        else:
            x = block(x if pending is None else _activate_rows(pending, x))
            pending = None
    return x if pending is None else _activate_rows(pending, x)


def _activate_rows(activation, x):
    """`activation(x)` of [N, H, W, C] `x`, computed on x viewed as
    [N, H * W, C] (see `run_blocks`)."""
    shape = ops.shape(x)
    return ops.reshape(activation(ops.reshape(x, (shape[0], -1, shape[3]))), shape)


@contextlib.contextmanager
def sliced_reflection_padding(model):
    """Within the block, every `ReflectionPadding2D` of `model` traces as
    slices + concatenations (identical values; for TFLite export)."""
    pads = [
        layer
        for layer in keras_private.sublayers(model)
        if isinstance(layer, ReflectionPadding2D)
    ]
    for layer in pads:
        layer.use_slices = True
    try:
        yield len(pads)
    finally:
        for layer in pads:
            layer.use_slices = False
