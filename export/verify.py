"""`python -m export.verify ...` from a checkout: `keras_udd.export.verify.main`."""

import sys

from keras_udd.export.verify import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m export.verify"))
