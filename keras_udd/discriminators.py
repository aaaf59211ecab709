"""Multi-scale PatchGAN discriminators D_S, D_B (and D_S2, D_B2), and the
content discriminator D_c (an option; not the reference's)."""

import keras
from keras import layers

from keras_udd.layers import (
    AveragePoolExcludePad,
    ConvBlock,
    conv_initializer,
    run_blocks,
)


@keras.saving.register_keras_serializable(package="keras_udd")
class MultiScaleDiscriminator(keras.Model):
    """PatchGAN at `scales` scales (the reference's `MultiScaleDis`).

    Input [N, H, W, 3] in [-1, 1]; output a list of `scales` logit maps,
    the k-th [N, H / 2^(layers + k), W / 2^(layers + k), 1]. Each scale is
    `layers` x [pad 1, conv 4x4 s2, LReLU(0.01)] with widths filters * 2^i,
    then conv 1x1 -> 1; no normalisation. Between scales the input is
    average-pooled (3x3, stride 2, pad 1 left out of the average: PyTorch's
    `count_include_pad=False`).
    """

    def __init__(self, filters=64, layers_per_scale=4, scales=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.layers_per_scale = layers_per_scale
        self.scales = scales
        self.downsample = AveragePoolExcludePad()
        self.heads = [
            [
                ConvBlock(
                    filters * 2**i,
                    4,
                    2,
                    1,
                    activation="leaky_relu",
                    negative_slope=0.01,
                )
                for i in range(layers_per_scale)
            ]
            + [layers.Conv2D(1, 1, kernel_initializer=conv_initializer())]
            for _ in range(scales)
        ]

    def call(self, x):
        outputs = []
        for k, head in enumerate(self.heads):
            if k:
                x = self.downsample(x)
            outputs.append(run_blocks(head, x))
        return outputs

    def get_config(self):
        return {
            "name": self.name,
            "filters": self.filters,
            "layers_per_scale": self.layers_per_scale,
            "scales": self.scales,
        }


@keras.saving.register_keras_serializable(package="keras_udd")
class ContentDiscriminator(keras.Model):
    """D_c: tells E^c_S's content codes from E^c_B's (DRIT's `Dis_content`,
    which UID-GAN's reference leaves out; `content_adversarial_weight`).

    Input a content code [N, H / 4, W / 4, C]; output a one-element list
    (as `MultiScaleDiscriminator`) of a [N, H / 32, W / 32, 1] logit map:
    3 x [pad 1, conv 3x3 s2, LReLU(0.01)] at C channels, then conv 1x1 -> 1;
    no normalisation, as the image discriminators. DRIT's 7x7 convs with
    IN and its final 4x4 conv need codes of at least 53 px (crops of 212);
    3x3 convs fit the 64-px crops of the presets.
    """

    def __init__(self, filters=256, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.head = [
            ConvBlock(
                filters,
                3,
                2,
                1,
                activation="leaky_relu",
                negative_slope=0.01,
            )
            for _ in range(3)
        ] + [layers.Conv2D(1, 1, kernel_initializer=conv_initializer())]

    def call(self, x):
        return [run_blocks(self.head, x)]

    def get_config(self):
        return {"name": self.name, "filters": self.filters}
