"""Parameter count of each network, against the reference architecture.

`python -m keras_udd.summary` prints the README's table for the default
`UIDGAN()` (built with random VGG19 weights, no download).
"""

from keras_udd.model import UIDGAN


def _conv(k, c_in, c_out):
    """A k x k conv or transposed conv with bias (every one in the reference)."""
    return k * k * c_in * c_out + c_out


def _res_block(c):
    """`INSResBlock(c, c)`: two 3x3 convs (instance norms have no parameters)."""
    return 2 * _conv(3, c, c)


def _basic_block(c_in, c_out):
    """`BasicBlock` of the blur encoder: 3x3 in -> in, 3x3 in -> out (then
    mean pool), shortcut mean pool + 1x1 in -> out."""
    return _conv(3, c_in, c_in) + _conv(3, c_in, c_out) + _conv(1, c_in, c_out)


def _disc_scale(layers=4, width=64):
    """One scale of `MultiScaleDis`: `layers` 4x4 convs (3 -> width, then
    doubling), then a 1x1 conv to one logit."""
    widths = [3] + [width * 2**i for i in range(layers)]
    return sum(_conv(4, a, b) for a, b in zip(widths, widths[1:])) + _conv(
        1, widths[-1], 1
    )


# Parameter counts of the authors' PyTorch networks, counted from the
# reference code (github.com/ustclby/Unsupervised-Domain-Specific-Deblurring,
# src/networks.py: E_content, E_attr_concat, G_concat, MultiScaleDis; default
# options: 64 filters, nz = 8, 3 scales of 4 layers), written out here from
# those classes and not from keras_udd's layers, so that the test comparing
# the two (tests/test_model.py) checks the Keras networks against them. The
# decoder's LayerNorm(n) has an affine weight and bias of n each.
_DECODER = (
    3 * _res_block(256 + 8)  # decA1: 3 x INSResBlock on (content, z).
    + _conv(3, 264 + 8, 136) + 2 * 136  # decA2: ConvTranspose2d, LayerNorm.
    + _conv(3, 136 + 8, 72) + 2 * 72  # decA3.
    + _conv(1, 72 + 8, 3)  # decA4: 1x1 ConvTranspose2d, tanh.
)  # fmt: skip
# E_content.convA / convB: 7x7 3 -> 64, 3x3 s2 64 -> 128 -> 256, 3 blocks.
_CONTENT = _conv(7, 3, 64) + _conv(3, 64, 128) + _conv(3, 128, 256)
_CONTENT += 3 * _res_block(256)
REFERENCE_PARAMETERS = {
    "content_encoder_sharp": _CONTENT,  # E_content.convA (E^c_S).
    "content_encoder_blurred": _CONTENT,  # E_content.convB (E^c_B).
    "content_shared": _res_block(256),  # E_content.conv_share.
    # E_attr_concat: 4x4 s2 3 -> 64, blocks 64 -> 128 -> 192 -> 256, fc_B and
    # fcVar_B (Linear 256 -> 8).
    "blur_encoder": _conv(4, 3, 64) + _basic_block(64, 128)
    + _basic_block(128, 192) + _basic_block(192, 256) + 2 * (256 * 8 + 8),
    "generator_shared": _res_block(256),  # G_concat.dec_share.
    "decoder_sharp": _DECODER,  # G_concat.decA1-4 (G_S).
    "decoder_blurred": _DECODER,  # G_concat.decB1-4 (G_B).
    "disc_sharp": 3 * _disc_scale(),  # disA (D_S).
    "disc_blurred": 3 * _disc_scale(),  # disB (D_B).
    "disc_sharp_random": 3 * _disc_scale(),  # disA2 (D_S2).
    "disc_blurred_random": 3 * _disc_scale(),  # disB2 (D_B2).
}  # fmt: skip

SYMBOLS = {
    "content_encoder_sharp": "E^c_S (private)",
    "content_encoder_blurred": "E^c_B (private)",
    "content_shared": "E^c shared block",
    "blur_encoder": "E^b",
    "generator_shared": "G shared block",
    "decoder_sharp": "G_S branch",
    "decoder_blurred": "G_B branch",
    "disc_sharp": "D_S",
    "disc_blurred": "D_B",
    "disc_sharp_random": "D_S2",
    "disc_blurred_random": "D_B2",
    "disc_content": "D_c (option, DRIT's)",
    "perceptual": "VGG19 to conv3_3 (frozen)",
}


def parameter_counts(model):
    """{network attribute name: parameter count} for the built networks."""
    networks = model.generator_networks + model.discriminators
    if model.perceptual is not None:
        networks.append(model.perceptual)
    return {net.name: net.count_params() for net in networks}


def markdown_table(model):
    counts = parameter_counts(model)
    rows = ["| network | code name | parameters | reference |", "|---|---|---:|---:|"]
    for name, count in counts.items():
        reference = REFERENCE_PARAMETERS.get(name)
        ref = f"{reference:,}" if reference is not None else "-"
        rows.append(f"| {SYMBOLS.get(name, name)} | `{name}` | {count:,} | {ref} |")
    deblur = model.deblurrer.count_params()
    rows.append(f"| deblurring path (exported) | `deblurrer` | {deblur:,} | - |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table(UIDGAN(vgg_weights=None)))
