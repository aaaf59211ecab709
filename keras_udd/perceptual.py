"""The fixed feature networks of the perceptual loss: VGG19 (the paper's) and
a low-pass alternative for training without ImageNet weights."""

import os

import keras
from keras import layers, ops

# (name, filters) of Keras' VGG19 in order; filters None marks a max pool.
VGG19_LAYERS = (
    ("block1_conv1", 64), ("block1_conv2", 64), ("block1_pool", None),
    ("block2_conv1", 128), ("block2_conv2", 128), ("block2_pool", None),
    ("block3_conv1", 256), ("block3_conv2", 256), ("block3_conv3", 256),
    ("block3_conv4", 256), ("block3_pool", None),
    ("block4_conv1", 512), ("block4_conv2", 512), ("block4_conv3", 512),
    ("block4_conv4", 512), ("block4_pool", None),
    ("block5_conv1", 512), ("block5_conv2", 512), ("block5_conv3", 512),
    ("block5_conv4", 512),
)  # fmt: skip


@keras.saving.register_keras_serializable(package="keras_udd")
class PerceptualNetwork(layers.Layer):
    """VGG19 up to `layer`, frozen; features taken before that layer's ReLU.

    Input [N, H, W, 3] in [-1, 1]; it is mapped to [0, 255] and through
    `keras.applications.vgg19.preprocess_input` (RGB -> BGR, ImageNet mean
    subtracted). Output [N, H / 2^p, W / 2^p, C] for the p pools before
    `layer` (block3_conv3: [N, H/4, W/4, 256]). Only the needed layers are
    built; their weights start random and `load_pretrained` copies them from
    Keras' VGG19 ("imagenet", downloaded once) or a local weights file.
    """

    def __init__(self, layer="block3_conv3", **kwargs):
        super().__init__(**kwargs)
        names = [name for name, _ in VGG19_LAYERS]
        if layer not in names or dict(VGG19_LAYERS)[layer] is None:
            raise ValueError(
                f"vgg_layer must be a VGG19 conv layer name, got {layer!r}"
            )
        self.layer = layer
        self.vgg_layers = []
        for name, filters in VGG19_LAYERS[: names.index(layer) + 1]:
            if filters is None:
                self.vgg_layers.append(layers.MaxPooling2D(2, name=name))
            else:
                self.vgg_layers.append(
                    layers.Conv2D(
                        filters, 3, padding="same", activation="relu", name=name
                    )
                )
        self.trainable = False

    def build(self, input_shape):
        channels = 3
        for layer in self.vgg_layers:
            if isinstance(layer, layers.Conv2D):
                layer.build((None, None, None, channels))
                channels = layer.filters

    def call(self, x):
        x = keras.applications.vgg19.preprocess_input((x + 1.0) * 127.5)
        for layer in self.vgg_layers[:-1]:
            x = layer(x)
        last = self.vgg_layers[-1]
        return ops.conv(x, last.kernel, padding="same") + last.bias

    def load_pretrained(self, weights="imagenet"):
        """Copies VGG19 weights: "imagenet" (Keras' download, cached in
        ~/.keras/models) or the path of a Keras VGG19 (include_top=False)
        weights file, e.g. `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`.
        """
        if weights != "imagenet" and not os.path.isfile(str(weights)):
            raise FileNotFoundError(
                f"vgg_weights: no such VGG19 weights file: {weights!r} "
                "(use 'imagenet', a local .h5 file, or None for random weights)"
            )
        vgg = keras.applications.VGG19(
            include_top=False, weights=weights, input_shape=(None, None, 3)
        )
        for layer in self.vgg_layers:
            if isinstance(layer, layers.Conv2D):
                layer.set_weights(vgg.get_layer(layer.name).get_weights())

    def get_config(self):
        return {**super().get_config(), "layer": self.layer}


@keras.saving.register_keras_serializable(package="keras_udd")
class LowPassFeatures(layers.Layer):
    """The image's low frequencies: `factor` x `factor` average pooling.

    Input [N, H, W, 3] in [-1, 1]; output [N, H / factor, W / factor, 3]. A
    weight-free perceptual network for training offline, where the ImageNet
    VGG19 cannot be had: a blur moves light by a few pixels, so a sharp image
    and its blurred version agree at this scale, and the term anchors the
    deblurred output's layout, tone and colour to its input's without
    penalising the detail that the adversarial term adds (a shallow random
    VGG19 compares almost pixels, and keeps the output blurred).
    """

    def __init__(self, factor=8, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)
        self.trainable = False

    def call(self, x):
        return ops.average_pool(x, self.factor, self.factor, "valid")

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
