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
from workers.sandbox import Limits, Termination
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


THREADS = """
import os
import threading
import time
from sklearn.dummy import DummyClassifier

print("pid", os.getpid(), "parent", os.getppid())


def get_estimator():
    threads = [threading.Thread(target=time.sleep, args=(1.5,)) for _ in range({n})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return DummyClassifier()
"""


@pytest.mark.parametrize("started, stopped", [(7, False), (8, True)],
                         ids=["at-the-limit", "one-past-it"])
def test_the_child_forked_ahead_counts_in_the_folds_process_limit(
        prepared, tmp_path, started, stopped):
    """The fork server forks each fold's child before its request comes (the
    spare): the fold still gets its limit exactly, itself included, neither
    one task more nor one less."""
    sandbox = LocalSandbox(heartbeat_interval_s=0.1, work_dir=tmp_path)
    limits = Limits(wall_time_s=60, memory_mb=1024, cpus=1.0, log_bytes=65536, pids=8)
    files = {"estimator.py": THREADS.replace("{n}", str(started)).encode()}
    workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
    lay_out(fold_ticket(prepared, files), workdir, prepared, files)
    try:
        result = sandbox.run(workdir, limits, heartbeat=lambda: None)
        said = ((workdir / layout.RESULT).read_text() if (workdir / layout.RESULT).exists()
                else "") if result.exit_code else ""
    finally:
        sandbox.close()
    if stopped:
        # Refused by the kernel (the fold fails on its thread) or stopped at
        # the limit, whichever comes first.
        assert result.terminated is Termination.PROCESSES or (
            result.exit_code != 0 and "can't start new thread" in said), (result, said)
    else:
        assert result.terminated is None and result.exit_code == 0, result.stderr


def test_each_fold_runs_in_a_child_of_its_own_forked_between_folds(prepared, tmp_path):
    """Between two folds the server holds one child, named ``spare``,
    waiting; each fold is a different process, and the one forked after the
    first fold ended sees nothing of it."""
    import psutil

    from workers.harness.forkserver import SPARE_NAME

    sandbox = LocalSandbox(heartbeat_interval_s=0.1, work_dir=tmp_path)
    limits = Limits(wall_time_s=60, memory_mb=1024, cpus=1.0, log_bytes=65536)
    files = {"estimator.py": THREADS.replace("{n}", "0").encode()}

    def run():
        workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
        lay_out(fold_ticket(prepared, files), workdir, prepared, files)
        result = sandbox.run(workdir, limits, heartbeat=lambda: None)
        assert result.exit_code == 0, result.stderr
        return result.stdout.split()[1]

    def waiting() -> list[str]:
        server = psutil.Process(sandbox._fork_server().proc.pid)
        deadline = time.monotonic() + 10
        while True:
            names = [p.name() for p in server.children(recursive=True)
                     if "workers.harness.forkserver" in " ".join(p.cmdline())
                     and p.name() != "bwrap" and p.parent().name() != "bwrap"]
            if names or time.monotonic() > deadline:
                return names
            time.sleep(0.05)

    try:
        first = run()
        between = waiting()
        second = run()
    finally:
        sandbox.close()
    assert between == [SPARE_NAME]
    assert first != second
