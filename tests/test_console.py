"""What the command lines print: their own lines, not TensorFlow's C++ log."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keras_udd import console

ROOT = Path(__file__).resolve().parent.parent
# absl's / TensorFlow's C++ log line: "I0000 00:00:1796.25 5832 port.cc:153] ...".
NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] ", re.M)


@pytest.mark.parametrize(
    "orig_argv, expected",
    [
        (["python", "-m", "keras_udd.deblur", "x.png"], True),
        (["python", "-X", "utf8", "-mkeras_udd.evaluate"], True),
        (["python", "-m", "export", "--model", "text"], True),
        (["python", "/venv/bin/keras-udd-train", "--domain", "text"], True),
        (["python", str(ROOT / "train.py"), "--help"], True),
        (["python", "-m", "pytest", "-m", "keras_udd.deblur"], False),
        (["python", "my_script.py", "-m", "keras_udd.deblur"], False),
        (["python", "-c", "import keras_udd"], False),
        (["python"], False),
    ],
)
def test_started_as_command(orig_argv, expected):
    assert console.started_as_command(orig_argv) is expected


@pytest.mark.parametrize(
    "argv, environ, expected",
    [
        (["x.png", "--model", "text"], {}, False),
        (["x.png", "--verbose"], {}, True),
        (["x.png", "--verb"], {}, True),
        (["x.png", "--ver"], {}, False),
        (["x.png"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, True),
    ],
)
def test_wants_tensorflow_log(argv, environ, expected, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert console.wants_tensorflow_log(argv) is expected


def test_native_log_hidden_only_in_a_quiet_command(capfd, monkeypatch):
    with console.native_log_hidden():  # Not a quiet command: nothing hidden.
        os.write(2, b"shown\n")
    monkeypatch.setattr(console, "_quiet", True)
    with console.native_log_hidden():
        os.write(2, b"hidden\n")
    with pytest.raises(ValueError), console.native_log_hidden():
        os.write(2, b"written out when the block fails\n")
        raise ValueError
    err = capfd.readouterr().err
    assert "shown" in err and "hidden" not in err
    assert "written out when the block fails" in err


def test_deblur_command_prints_no_tensorflow_log(tmp_path):
    """`python -m keras_udd.deblur` on a page with the shipped model: its
    standard error holds its progress bar only; with --verbose TensorFlow's
    lines are back (so the check does see them)."""
    env = {k: v for k, v in os.environ.items() if k != console.LOG_LEVEL_VARIABLE}
    command = [
        sys.executable, "-m", "keras_udd.deblur",
        str(ROOT / "docs" / "images" / "sample_page.png"),
        "--model", "text", "-o", str(tmp_path),
    ]  # fmt: skip

    def run(*flags):
        done = subprocess.run(
            [*command, *flags], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "1 image(s) written" in done.stdout
        return done.stderr

    quiet = run()
    assert not NATIVE_LOG_LINE.search(quiet), quiet
    assert "absl" not in quiet and "oneDNN" not in quiet, quiet
    assert "deblur: 100%" in quiet  # The progress bar stays.
    assert NATIVE_LOG_LINE.search(run("--verbose"))
