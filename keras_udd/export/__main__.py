"""`python -m keras_udd.export`: the export command line (`keras_udd.export.cli`)."""

import sys

from keras_udd.export.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m keras_udd.export"))
