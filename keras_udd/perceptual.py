"""The fixed feature networks of the perceptual loss: VGG19 (the paper's), and
two alternatives for training without ImageNet weights: a low-pass one and a
small content network trained offline on the domain's own sharp images."""

import os

import keras
import numpy as np
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


@keras.saving.register_keras_serializable(package="keras_udd")
class ContentNetwork(layers.Layer):
    """A small VGG-like feature network trained offline on the domain's sharp
    images (`bench/train_content_network.py`: it learns to find the ink of
    sharp text pages), frozen; features taken before the last conv's ReLU.

    Input [N, H, W, 3] in [-1, 1]; 3x3 convs of `widths` (None: a 2x2 max
    pool; default: 32, 32, pool, 64, 64), output [N, H / 2^p, W / 2^p,
    widths[-1]]. The offline stand-in for the ImageNet VGG19 the paper's term
    uses: features learnt to tell what is on the page, not its pixels.
    `load_pretrained` reads the weights file the offline training writes.
    """

    def __init__(self, widths=(32, 32, None, 64, 64), **kwargs):
        super().__init__(**kwargs)
        self.widths = tuple(None if w is None else int(w) for w in widths)
        if not self.widths or self.widths[-1] is None:
            raise ValueError(f"widths must end with a conv width, got {widths!r}")
        self.convs = [
            None if w is None else layers.Conv2D(w, 3, padding="same", name=f"conv{i}")
            for i, w in enumerate(self.widths)
        ]
        self.trainable = False

    def build(self, input_shape):
        channels = 3
        for conv in self.convs:
            if conv is not None:
                conv.build((None, None, None, channels))
                channels = conv.filters

    def call(self, x):
        for i, conv in enumerate(self.convs):
            if conv is None:
                x = ops.max_pool(x, 2, 2)
            else:
                x = conv(x) if i == len(self.convs) - 1 else ops.relu(conv(x))
        return x

    def save_pretrained(self, path):
        """Writes the weights (and widths) as the .npz `load_pretrained` reads."""
        arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(self.get_weights())}
        np.savez(path, widths=np.array([w or 0 for w in self.widths]), **arrays)

    def load_pretrained(self, path):
        """Reads the weights `save_pretrained` wrote (offline training)."""
        if not os.path.isfile(str(path)):
            raise FileNotFoundError(
                f"content_network_weights: no such file: {path!r} (train one "
                "with bench/train_content_network.py, or None for random weights)"
            )
        with np.load(path) as saved:
            widths = tuple(int(w) or None for w in saved["widths"])
            if widths != self.widths:
                raise ValueError(
                    f"{path}: a content network of widths {widths}, this model's "
                    f"has {self.widths}"
                )
            self.set_weights([saved[f"w{i}"] for i in range(len(saved.files) - 1)])

    def get_config(self):
        return {**super().get_config(), "widths": list(self.widths)}
