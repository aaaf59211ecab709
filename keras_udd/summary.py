"""Parameter count of each network, against the reference architecture.

`python -m keras_udd.summary` prints the README's table for the default
`UIDGAN()` (built with random VGG19 weights, no download).
"""

from keras_udd.model import UIDGAN

# Counts of the authors' PyTorch networks (conv weights + biases, LayerNorm
# scale/offset), written out from the architecture in SPEC.md.
REFERENCE_PARAMETERS = {
    "content_encoder_sharp": 3_918_976,  # E^c_S private part
    "content_encoder_blurred": 3_918_976,  # E^c_B private part
    "content_shared": 1_180_160,  # Last block shared by E^c_S and E^c_B
    "blur_encoder": 1_344_080,  # E^b
    "generator_shared": 1_180_160,  # First block shared by G_S and G_B
    "decoder_sharp": 4_192_275,  # G_S branch
    "decoder_blurred": 4_192_275,  # G_B branch
    "disc_sharp": 8_271_171,  # D_S
    "disc_blurred": 8_271_171,  # D_B
    "disc_sharp_random": 8_271_171,  # D_S2
    "disc_blurred_random": 8_271_171,  # D_B2
}

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
