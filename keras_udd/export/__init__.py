"""Export of the deblurring path (SavedModel, TFLite) and its verification.

`savedmodel.py` and `tflite.py` write the artifacts, `verify.py` checks them
against the Keras model, `contract.py` writes the JSON contract beside each,
`images.py` makes test and calibration images and `cli.py` is the command line
(`keras-udd-export`, `python -m keras_udd.export`, or `python -m export` from a
checkout).
"""
