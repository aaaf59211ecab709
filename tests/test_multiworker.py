"""Multi-worker training on loopback: two `train.py` workers on 127.0.0.1.

Each test starts real worker processes (TF_CONFIG pointing at 127.0.0.1 only,
ports picked free), bounds every wait with a timeout and kills whatever is
left at the end.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from keras_udd.runs import read_csv_log
from tests.test_train import TINY_FLAGS

ROOT = Path(__file__).resolve().parents[1]
FLAGS = TINY_FLAGS + [
    "--val-images", "0", "--batch-size", "2", "--log-freq", "0",
    # Far above the workers' skew (one traced 30 s ahead of the other on 2
    # loaded cores); a killed worker is noticed by gRPC's heartbeats anyway.
    "--collective-timeout-seconds", "300",
    # The same element order in every process: workers shard by position.
    "--deterministic",
]  # fmt: skip
WORKER_TIMEOUT = 420  # Seconds a worker may take (startup and tracing included).
pytestmark = pytest.mark.slow


def free_ports(n):
    """`n` distinct free TCP ports on 127.0.0.1."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]


class Cluster:
    """Two workers of one run; `start()` launches them, leaving the context
    kills every process still running."""

    def __init__(self, tmp_path, out_dir, extra, size=2):
        self.tmp_path, self.out_dir, self.extra = tmp_path, out_dir, extra
        self.ports = free_ports(size)
        self.procs, self.logs, self.launches = [], [], 0

    def tf_config(self, index):
        workers = [f"127.0.0.1:{p}" for p in self.ports]
        return json.dumps({"cluster": {"worker": workers},
                           "task": {"type": "worker", "index": index}})  # fmt: skip

    def start(self):
        self.launches += 1
        self.procs, self.logs = [], []
        for index in range(len(self.ports)):
            scratch = self.tmp_path / f"tmp{index}"
            scratch.mkdir(exist_ok=True)
            log = self.tmp_path / f"worker{index}-{self.launches}.log"
            self.logs.append(log)
            env = dict(os.environ, TF_CONFIG=self.tf_config(index), TMPDIR=str(scratch))
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "train.py",
                        *FLAGS,
                        "--strategy",
                        "multiworker",
                        "--output-dir",
                        str(self.out_dir),
                        *self.extra,
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=open(log, "w"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            )
        return self

    def wait(self, proc, timeout=WORKER_TIMEOUT):
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker still running after {timeout} s:\n{self.output()}")

    def output(self):
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs)

    def kill(self, proc):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)


def run_single(tmp_path, out_dir, extra):
    """The same run in one process (no TF_CONFIG), on the same global batches."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run(
        [sys.executable, "train.py", *FLAGS, "--strategy", "default",
         "--output-dir", str(out_dir), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def h5_arrays(path):
    """{dataset path: array} of every dataset in an HDF5 weights file."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: out.__setitem__(name, obj[()])
            if isinstance(obj, h5py.Dataset) else None
        )  # fmt: skip
    return out


def files_under(path):
    return sorted(
        str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file()
    )


def test_two_workers_train_as_one_process_and_only_the_chief_writes(tmp_path):
    # Validation included: each worker scores the whole pages alone.
    extra = ["--epochs", "2", "--steps-per-epoch", "3", "--val-images", "2"]
    out = tmp_path / "run"
    with Cluster(tmp_path, out, extra).start() as cluster:
        codes = [cluster.wait(p) for p in cluster.procs]
    assert codes == [0, 0], cluster.output()
    # Only the chief (worker 0) wrote the run folder; worker 1 kept nothing
    # (its backup is deleted with the chief's at the end) and deleted its
    # temporary folder.
    written = files_under(out)
    expected = {"config.json", "latest.keras", "best.keras", "log.csv", "result.json"}
    assert expected <= set(written)
    assert any(name.startswith("logs/") for name in written)
    assert not [name for name in written if name.startswith(".workers")], written
    for index in (0, 1):
        assert not list((tmp_path / f"tmp{index}").glob("keras_udd-*"))
    assert json.loads((out / "result.json").read_text())["iterations"] == 6

    single = tmp_path / "single"
    run_single(tmp_path, single, extra)
    a = keras.saving.load_model(out / "latest.keras")
    b = keras.saving.load_model(single / "latest.keras")
    keras.utils.set_random_seed(0)  # train.py's --seed: the initial weights.
    start = type(b)(b.config)

    def kernel_differences(x, y):
        # Kernels only: biases that feed a normalisation get gradients that are
        # zero up to rounding, which Adam's g / sqrt(v) turns into lr-sized
        # steps of either sign (and the normalisation cancels them). So can a
        # kernel weight whose gradient is zero up to rounding: the typical
        # (mean) difference is compared, not the largest.
        pairs = [(v, w) for v, w in zip(x.weights, y.weights) if "kernel" in v.path]
        return np.concatenate(
            [np.abs(np.asarray(v) - np.asarray(w)).ravel() for v, w in pairs]
        )

    moved, apart = kernel_differences(start, b), kernel_differences(a, b)
    print(
        f"kernels moved: mean {moved.mean():.2e}, max {moved.max():.2e}; "
        f"two workers vs one process: mean {apart.mean():.2e}, max {apart.max():.2e}"
    )
    # Training moved the weights (measured: mean 2.3e-4, largest 1.1e-3)...
    assert moved.max() > 1e-4
    # ...as far on two workers as in one process (measured: mean 2.9e-7 apart,
    # one weight 3.7e-4 apart, its gradient zero up to rounding).
    assert apart.mean() < 0.1 * moved.mean()
    image = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    assert np.abs(np.asarray(a(image)) - np.asarray(b(image))).max() < 1e-3
    # The workers' own validation scores as Keras' validation in one process.
    for x, y in zip(read_csv_log(out / "log.csv"), read_csv_log(single / "log.csv")):
        for name in (
            "val_psnr",
            "val_ssim",
            "val_psnr_blurred",
            "val_psnr_sharp_recon",
        ):
            assert abs(x[name] - y[name]) < 1e-2 * max(1.0, abs(y[name])), name


def backup_metadata(path):
    try:
        return json.loads((Path(path) / "training_metadata.json").read_text())
    except (OSError, ValueError):
        return None


def test_lost_worker_stops_the_other_and_a_restart_resumes(tmp_path):
    extra = ["--epochs", "3", "--steps-per-epoch", "4"]
    out = tmp_path / "run"
    chief_backup, worker_backup = (
        out / "backup",
        out / ".workers" / "worker-1" / "backup",
    )
    with Cluster(tmp_path, out, extra).start() as cluster:
        chief, worker = cluster.procs
        deadline = time.monotonic() + WORKER_TIMEOUT
        while not all(backup_metadata(p) == {"epoch": 1, "batch": 0}
                      for p in (chief_backup, worker_backup)):  # fmt: skip
            assert time.monotonic() < deadline, cluster.output()
            assert chief.poll() is None and worker.poll() is None, cluster.output()
            time.sleep(0.02)
        cluster.kill(worker)  # Right after both backed up epoch 1.
        # A bound below the 300 s collective timeout: gRPC notices the loss.
        code = cluster.wait(chief, timeout=120)
        log = cluster.logs[0].read_text()
    assert code != 0, log[-3000:]
    assert f"lost worker-1 (127.0.0.1:{cluster.ports[1]})" in log, log[-3000:]
    # Both backups hold the same step and bit-identical weights and
    # optimizer state.
    assert backup_metadata(chief_backup) == backup_metadata(worker_backup)
    a = h5_arrays(chief_backup / "latest.weights.h5")
    b = h5_arrays(worker_backup / "latest.weights.h5")
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)

    with cluster.start():
        codes = [cluster.wait(p) for p in cluster.procs]
    assert codes == [0, 0], cluster.output()
    for log in cluster.logs:
        assert "epoch 2, step 0 (iteration 4)" in log.read_text(), cluster.output()
    assert json.loads((out / "result.json").read_text())["iterations"] == 12
    assert not worker_backup.exists() and not chief_backup.exists()
