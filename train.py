"""Trains UID-GAN on one domain, from a checkout: python train.py --help.

The same command as the installed `keras-udd-train`; the code is in
keras_udd/train.py.
"""

import sys

from keras_udd.train import main

if __name__ == "__main__":
    sys.exit(main())
