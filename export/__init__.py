"""Export of the deblurring path (SavedModel, TFLite) and its verification."""
