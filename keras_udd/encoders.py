"""Encoders: content encoders E^c_S / E^c_B and the blur encoder E^b."""

import functools

import keras
from keras import layers, ops

from keras_udd.layers import ConvBlock, ResidualBlock, conv_initializer, run_blocks


@keras.saving.register_keras_serializable(package="keras_udd")
class ContentEncoder(keras.Model):
    """The private part of a content encoder (E^c_S or E^c_B).

    [N, H, W, 3] in [-1, 1] -> [N, H/4, W/4, 4 * filters]: pad 3, conv 7x7,
    LReLU(0.01); two [pad 1, conv 3x3 s2, IN, ReLU]; `res_blocks` residual
    blocks. The full encoder is this followed by `SharedContentBlock`.
    """

    def __init__(self, filters=64, res_blocks=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.res_blocks = res_blocks
        self.blocks = [
            ConvBlock(
                filters, 7, padding=3, activation="leaky_relu", negative_slope=0.01
            ),
            ConvBlock(2 * filters, 3, 2, 1, instance_norm=True, activation="relu"),
            ConvBlock(4 * filters, 3, 2, 1, instance_norm=True, activation="relu"),
        ] + [ResidualBlock(4 * filters) for _ in range(res_blocks)]

    def call(self, x):
        return run_blocks(self.blocks, x)

    def get_config(self):
        return {
            "name": self.name,
            "filters": self.filters,
            "res_blocks": self.res_blocks,
        }


@keras.saving.register_keras_serializable(package="keras_udd")
class SharedContentBlock(keras.Model):
    """The last block shared by E^c_S and E^c_B: a residual block.

    [N, h, w, filters] -> the content code, same shape. (In training the
    model adds N(0, content_noise_stddev^2) noise to the code.)
    """

    def __init__(self, filters=256, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.block = ResidualBlock(filters)

    def call(self, x):
        return self.block(x)

    def get_config(self):
        return {"name": self.name, "filters": self.filters}


@keras.saving.register_keras_serializable(package="keras_udd")
class BlurBasicBlock(layers.Layer):
    """E^b's residual "basic block" (no norm), halving H and W.

    main: LReLU(0.2), pad 1, conv 3x3 (in -> in), LReLU(0.2), pad 1,
    conv 3x3 (in -> out), avgpool 2; shortcut: avgpool 2, conv 1x1.
    """

    def __init__(self, in_filters, out_filters, **kwargs):
        super().__init__(**kwargs)
        self.in_filters = in_filters
        self.out_filters = out_filters
        self.conv1 = ConvBlock(
            in_filters, 3, padding=1, activation="leaky_relu", negative_slope=0.2
        )
        self.conv2 = ConvBlock(out_filters, 3, padding=1)
        self.pool = layers.AveragePooling2D(2)
        self.shortcut = layers.Conv2D(
            out_filters, 1, kernel_initializer=conv_initializer()
        )

    def build(self, input_shape):
        shape = (*input_shape[:-1], self.in_filters)
        self.conv1.build(shape)
        self.conv2.build(shape)
        self.shortcut.build(shape)

    def call(self, x):
        lrelu = functools.partial(ops.leaky_relu, negative_slope=0.2)
        y = self.pool(run_blocks([self.conv1, self.conv2], x, input_activation=lrelu))
        return y + self.shortcut(self.pool(x))

    def get_config(self):
        return {
            **super().get_config(),
            "in_filters": self.in_filters,
            "out_filters": self.out_filters,
        }


@keras.saving.register_keras_serializable(package="keras_udd")
class BlurEncoder(keras.Model):
    """E^b: blurred image [N, H, W, 3] in [-1, 1] -> (mu, logvar), each
    [N, blur_dim]. H and W must be at least 16.

    pad 1, conv 4x4 s2 (3 -> f); basic blocks f -> 2f -> 3f -> 4f; LReLU(0.2);
    global average pool; two dense heads. The blur code is
    z = mu + eps * exp(logvar / 2) in training and mu at test time.
    """

    def __init__(self, filters=64, blur_dim=8, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.blur_dim = blur_dim
        self.stem = ConvBlock(filters, 4, 2, 1)
        widths = [filters, 2 * filters, 3 * filters, 4 * filters]
        self.blocks = [BlurBasicBlock(i, o) for i, o in zip(widths[:-1], widths[1:])]
        self.mu_head = layers.Dense(blur_dim)
        self.logvar_head = layers.Dense(blur_dim)

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        # LReLU and mean over H x W on [N, H * W, C]: the same values, but the
        # LeakyRelu does not read the residual sum (see `run_blocks`: a conv +
        # bias + add + LeakyRelu fusion deletes the sum that its gradient reads).
        x = ops.reshape(x, (ops.shape(x)[0], -1, x.shape[-1]))
        x = ops.mean(ops.leaky_relu(x, 0.2), axis=1)
        return self.mu_head(x), self.logvar_head(x)

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "blur_dim": self.blur_dim}
