"""What the command lines print: their own lines and progress bars, not
TensorFlow's C++ log.

TensorFlow 2.21 writes C++ log lines to standard error: on import (oneDNN's
notice, twice, behind absl's "All log messages before absl::InitializeLog()
..." line; cpu_feature_guard) and while it runs. `TF_CPP_MIN_LOG_LEVEL` hides
the runtime and cpu_feature_guard lines only if it is in the environment when
TensorFlow's libraries load (measured: setting it later in a command's module
did nothing, since `import keras_udd` had already imported TensorFlow), and
never the oneDNN lines (absl writes them before its log is set up, whatever
the level). So in a process started as one of keras_udd's commands,
`keras_udd/__init__.py` calls `import_tensorflow_quietly()` first: it sets
`TF_CPP_MIN_LOG_LEVEL=3` and imports TensorFlow with the standard error file
descriptor pointed at a temporary file (written out if the import fails).
LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" line, written when
a .tflite model first runs, is hidden the same way (`native_log_hidden`), and
the Python loggers of TensorFlow and absl (deprecation notices of TensorFlow,
Keras and TFDS) show errors only.

Nothing changes with `--verbose`, when the user has set `TF_CPP_MIN_LOG_LEVEL`
(TensorFlow's own setting then applies), or in any other program that imports
keras_udd.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

# The installed commands, the `python -m` modules and the checkout's script.
COMMANDS = (
    "keras-udd-train",
    "keras-udd-deblur",
    "keras-udd-evaluate",
    "keras-udd-export",
)
MODULES = (
    "keras_udd.train",
    "keras_udd.deblur",
    "keras_udd.evaluate",
    "keras_udd.export",
    "keras_udd.export.verify",
    "export",
    "export.verify",
)
CHECKOUT_SCRIPT = Path(__file__).resolve().parent.parent / "train.py"
PYTHON_LOGGERS = ("tensorflow", "absl")
VERBOSE_FLAG = "--verbose"
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
_quiet = False  # Set by `import_tensorflow_quietly` when it hides the log.


def started_as_command(orig_argv=None) -> bool:
    """Whether this process is one of keras_udd's commands, from the
    interpreter's command line (`sys.orig_argv`: `python -m MODULE`, a
    console script, or the checkout's `train.py`)."""
    argv = list(sys.orig_argv if orig_argv is None else orig_argv)
    options = iter(argv[1:])
    for arg in options:
        if arg == "-m":
            return next(options, None) in MODULES
        if arg.startswith("-m"):
            return arg[2:] in MODULES
        if arg in ("-X", "-W"):  # Interpreter options that take a value.
            next(options, None)
            continue
        if arg == "-c" or arg == "-":
            return False
        if arg.startswith("-"):
            continue
        script = Path(arg)
        return script.stem in COMMANDS or (
            script.is_file() and script.resolve() == CHECKOUT_SCRIPT
        )
    return False


def wants_tensorflow_log(argv=None) -> bool:
    """`--verbose` on the command line (or a prefix of it that argparse
    accepts), or `TF_CPP_MIN_LOG_LEVEL` set by the user."""
    argv = sys.argv[1:] if argv is None else argv
    verbose = any(len(a) >= len("--verb") and VERBOSE_FLAG.startswith(a) for a in argv)
    return verbose or LOG_LEVEL_VARIABLE in os.environ


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ log hidden (see the module docstring),
    if this process is a keras_udd command and TensorFlow is not imported
    yet; else does nothing."""
    global _quiet
    if "tensorflow" in sys.modules or not started_as_command():
        return
    if wants_tensorflow_log():
        return
    os.environ[LOG_LEVEL_VARIABLE] = "3"
    _quiet = True
    with native_log_hidden():
        import tensorflow  # noqa: F401
    for name in PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def native_log_hidden():
    """In a quiet command (`import_tensorflow_quietly`), points the standard
    error file descriptor at a temporary file for the block: hides what
    native code writes there (TensorFlow's import, LiteRT's "INFO: Created
    TensorFlow Lite XNNPACK delegate" when a .tflite model first runs), and
    writes it out if the block raises. Elsewhere does nothing."""
    if not _quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def add_verbose_flag(parser) -> None:
    """The `--verbose` flag of every command (read by
    `import_tensorflow_quietly` before argparse runs)."""
    parser.add_argument(
        VERBOSE_FLAG,
        action="store_true",
        help="also show TensorFlow's own log lines (hidden by default, unless "
        f"{LOG_LEVEL_VARIABLE} is set)",
    )
