"""Multi-scale PatchGAN discriminators D_S, D_B (and D_S2, D_B2)."""

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
