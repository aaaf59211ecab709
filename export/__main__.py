"""`python -m export ...` from a checkout: runs `keras_udd.export.cli.main`."""

import sys

from keras_udd.export.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m export"))
