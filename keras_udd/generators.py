"""Generators: the decoder branches of G_S (deblur) and G_B (blur)."""

import keras
from keras import layers, ops

from keras_udd.layers import (
    ConcatBlurCode,
    ConvTranspose3x3Stride2,
    LayerNormalizationHWC,
    ResidualBlock,
    conv_initializer,
)


@keras.saving.register_keras_serializable(package="keras_udd")
class Decoder(keras.Model):
    """One decoder branch of G_S or G_B (the reference's `G_concat` branch).

    Inputs `(h, z)`: features h [N, h, w, filters] from the shared first
    generator block and the blur code z [N, blur_dim]. Output: an image
    [N, 4h, 4w, 3] in [-1, 1]. z is tiled and concatenated four times:
    concat z -> res_blocks x residual block -> concat z -> transposed conv
    3x3 s2 (aligned as PyTorch's), LayerNorm(H, W, C), ReLU -> concat z ->
    the same -> concat z -> conv 1x1 -> tanh (float32). With the defaults the widths
    are 264, 136, 72, 3.

    With `residual` (not the reference's; `ModelConfig.residual_output`) the
    inputs are `(h, z, image)` and the output is image + that tanh: the branch
    draws a change of its input image, and its last conv starts at zero, so
    the branch starts as the identity.
    """

    def __init__(self, filters=256, res_blocks=3, blur_dim=8, residual=False,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.filters = filters
        self.res_blocks_count = res_blocks
        self.blur_dim = blur_dim
        self.residual = residual
        width = filters + blur_dim
        self.concat = ConcatBlurCode()
        self.res_blocks = [ResidualBlock(width) for _ in range(res_blocks)]
        self.up_widths = [(width + blur_dim) // 2]
        self.up_widths.append((self.up_widths[0] + blur_dim) // 2)
        self.ups = [ConvTranspose3x3Stride2(w) for w in self.up_widths]
        self.norms = [LayerNormalizationHWC() for _ in self.up_widths]
        self.to_image = layers.Conv2D(
            3, 1, kernel_initializer="zeros" if residual else conv_initializer()
        )

    def call(self, inputs):
        h, z = inputs[:2]
        x = self.concat((h, z))
        for block in self.res_blocks:
            x = block(x)
        for up, norm in zip(self.ups, self.norms):
            x = ops.relu(norm(up(self.concat((x, z)))))
        # The output tanh in float32 under mixed precision.
        out = ops.tanh(ops.cast(self.to_image(self.concat((x, z))), "float32"))
        return out + ops.cast(inputs[2], "float32") if self.residual else out

    def get_config(self):
        return {
            "name": self.name,
            "filters": self.filters,
            "res_blocks": self.res_blocks_count,
            "blur_dim": self.blur_dim,
            "residual": self.residual,
        }
