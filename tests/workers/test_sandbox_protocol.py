"""The local sandbox's fork server answers each fold once: a heartbeat that
fails (the platform's database restarting) neither stops the fold nor
leaves its answer for the next fold on the same worker to read."""
import tempfile
import time
from pathlib import Path

import pytest

from datarun import ramp_kits
from tests.conftest import EXAMPLES
from tests.workers.folds import fold_ticket, lay_out
from workers.harness import layout
from workers.sandbox import Limits
from workers.sandbox.local import LocalSandbox

SLOW = """
import time
from sklearn.linear_model import LogisticRegression

print("fold {name}")


def get_estimator():
    time.sleep(1.0)
    return LogisticRegression(max_iter=1000)
"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("iris") / "prepared"
    ramp_kits.prepare_kit(EXAMPLES / "iris", out)
    return out


def test_a_failing_heartbeat_keeps_the_fork_server_in_step(prepared, tmp_path):
    sandbox = LocalSandbox(heartbeat_interval_s=0.1, work_dir=tmp_path)
    limits = Limits(wall_time_s=60, memory_mb=1024, cpus=1.0, log_bytes=65536)

    def run(name: str, heartbeat):
        files = {"estimator.py": SLOW.format(name=name).encode()}
        workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
        lay_out(fold_ticket(prepared, files), workdir, prepared, files)
        return sandbox.run(workdir, limits, heartbeat=heartbeat)

    beats = []

    def failing_heartbeat():
        beats.append(1)
        raise ConnectionError("the platform is restarting")

    try:
        first = run("one", failing_heartbeat)
        second = run("two", lambda: None)
    finally:
        sandbox.close()
    assert len(beats) > 1  # it kept calling back while the fold ran
    assert first.exit_code == 0 and "fold one" in first.stdout
    assert second.exit_code == 0 and "fold two" in second.stdout
    assert "fold one" not in second.stdout
    assert second.wall_time >= 1.0  # its own run, not the first fold's answer


QUICK = """
from sklearn.dummy import DummyClassifier


def get_estimator():
    return DummyClassifier()
"""


def test_a_fold_that_ends_before_it_is_looked_up_is_read_from_its_reply(
        prepared, tmp_path, monkeypatch):
    """On a loaded host the worker can be descheduled between the fork
    server's "forked" and its look-up of the fold's host pid, long enough for
    a fold of a few milliseconds to end and be reaped: the fold's result is
    then read from the server's reply (its CPU time and peak memory from the
    rusage), not waited for 30 s and failed as a platform error."""
    from workers.sandbox import local

    sandbox = LocalSandbox(heartbeat_interval_s=0.1, work_dir=tmp_path)
    if not sandbox._fork_server().bwrap:
        pytest.skip("without bubblewrap the fold's pid is the host's: nothing is looked up")
    looked_up = local._ForkServer.host_pid

    def descheduled(server, pid):
        # The fold has ended and been reaped by the time the worker looks.
        deadline = time.monotonic() + 30
        while not server.has_reply():
            assert time.monotonic() < deadline, "the fold did not end"
            time.sleep(0.01)
        return looked_up(server, pid)

    monkeypatch.setattr(local._ForkServer, "host_pid", descheduled)
    limits = Limits(wall_time_s=60, memory_mb=1024, cpus=1.0, log_bytes=65536)
    files = {"estimator.py": QUICK.encode()}
    workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
    lay_out(fold_ticket(prepared, files), workdir, prepared, files)
    try:
        t0 = time.monotonic()
        result = sandbox.run(workdir, limits, heartbeat=lambda: None)
        took = time.monotonic() - t0
        predicted = (workdir / layout.Y_PRED_TEST).exists()
    finally:
        sandbox.close()
    assert result.exit_code == 0 and result.terminated is None and predicted
    assert result.cpu_time > 0 and result.peak_memory > 0
    assert took < 10
