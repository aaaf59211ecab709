"""Data for UID-GAN: unpaired training streams and paired test sets per domain.

Modules: `images` (robust file scanning and decoding), `text` (synthetic
documents), `degrade` (tf.data blur, noise and JPEG ops), `domains` (which
images are sharp, blurred and held out, per domain; the `DOMAINS` registry) and
`pipeline` (the `tf.data` pipelines). Blur kernels come from `keras_udd.blur`.
"""

from keras_udd.data.domains import DOMAINS, DomainData, build_domain
from keras_udd.data.pipeline import (
    kernel_bank,
    make_paired_train_dataset,
    make_test_dataset,
    make_test_examples,
    make_train_dataset,
    make_train_examples,
    with_counted_cardinality,
)

__all__ = [
    "DOMAINS",
    "DomainData",
    "build_domain",
    "kernel_bank",
    "make_test_dataset",
    "make_paired_train_dataset",
    "make_test_examples",
    "make_train_dataset",
    "make_train_examples",
    "with_counted_cardinality",
]
