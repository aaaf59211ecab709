"""Checkout entry point of the exporter: `python -m export` and
`python -m export.verify` run `keras_udd.export` (where the code lives, and
what `pip install` installs; this folder is not installed)."""
