"""Warm Docker containers: started before their fold, gone after it.

A real Docker daemon and the runtime image; the worker side is this process
(in-process tests, a fold cancelled as a cancelled submission's folds are: at
their heartbeat) or a real worker process that is stopped the way Celery stops
a fold it revokes (SIGTERM) or that is killed outright.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from datarun import ramp_kits
from tests.conftest import EXAMPLES, ROOT, docker_unavailable
from tests.workers.folds import fold_ticket, lay_out
from workers.fold_io import read_outcome
from workers.sandbox import FoldStopped, Limits, Termination
from workers.sandbox.docker_backend import (
    LABEL_WARM,
    NODE_ENV,
    REFILL_AFTER_IDLE_S,
    DockerSandbox,
    remove_orphans,
)

pytestmark = pytest.mark.skipif(docker_unavailable() is not None,
                                reason=str(docker_unavailable()))

GOOD = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()
SLEEPING = b"""
import time
from sklearn.linear_model import LogisticRegression

print("fold started", flush=True)
time.sleep(120)


def get_estimator():
    return LogisticRegression()
"""
LIMITS = Limits(wall_time_s=60, memory_mb=600)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("iris") / "prepared"
    ramp_kits.prepare_kit(EXAMPLES / "iris", out)
    return out


@pytest.fixture
def node(monkeypatch) -> str:
    """A worker node name of this test's own: its containers carry it."""
    name = f"warm-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(NODE_ENV, name)
    yield name
    remove_orphans(name)


@pytest.fixture
def work_dir() -> Path:
    # Outside /tmp, as a deployment's work dir (the daemon mounts by host path).
    path = Path(tempfile.mkdtemp(prefix="datarun-warm-", dir="/var/tmp"))
    yield path
    subprocess.run(["rm", "-rf", str(path)])


def containers(node: str) -> list[str]:
    """Every container (any state) of this node's warm slots."""
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL_WARM}={node}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def fold_workdir(prepared: Path, parent: Path, code: bytes):
    files = {"estimator.py": code}
    ticket = fold_ticket(prepared, files)
    workdir = Path(tempfile.mkdtemp(dir=parent))
    lay_out(ticket, workdir, prepared, files, link_inputs=True)
    return ticket, workdir


def run_one(backend: DockerSandbox, prepared: Path, code: bytes = GOOD):
    ticket, workdir = fold_workdir(prepared, backend.workdir_parent(), code)
    try:
        result = backend.run(workdir, LIMITS, heartbeat=lambda: None)
        return result, read_outcome(ticket, workdir, result, LIMITS)
    finally:
        backend.cleanup(workdir)


def slot_dirs(work_dir: Path) -> list[Path]:
    return sorted(work_dir.glob("warm-*"))


@pytest.mark.parametrize("kept", [1, 2])
def test_warm_containers_never_given_a_fold_are_removed_with_their_worker(prepared, node,
                                                                          work_dir, kept):
    backend = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=1.0, warm=kept)
    try:
        first, outcome = run_one(backend, prepared)
        assert outcome.error == ""
        second, outcome = run_one(backend, prepared)  # on the container warmed meanwhile
        assert outcome.error == ""
        # The next folds' containers wait, started, and will get no fold.
        backend.wait_until_warm()
        wait_for(lambda: len(containers(node)) == kept, "the next containers are started")
        assert len(slot_dirs(work_dir)) == kept
    finally:
        backend.close()
    assert containers(node) == []
    assert slot_dirs(work_dir) == []


def test_a_worker_started_with_its_limits_runs_its_first_folds_on_ready_containers(
        prepared, node, work_dir):
    backend = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=1.0, warm=2,
                            expected_limits=LIMITS)
    try:
        backend.warm_up()  # what a worker process does when it starts
        backend.wait_until_warm()
        ready = set(containers(node))
        assert len(ready) == 2 and len(slot_dirs(work_dir)) == 2
        # Back to back: each fold takes a container of the pool; the pool
        # is full again once the slot idles.
        for _ in range(2):
            result, outcome = run_one(backend, prepared)
            assert outcome.error == ""
            assert backend._fold_container.container.id[:12] in ready
        wait_for(lambda: len(containers(node)) == 2, "the pool is full again")
    finally:
        backend.close()
    assert containers(node) == []
    assert slot_dirs(work_dir) == []


def test_folds_of_other_limits_replace_the_pool(prepared, node, work_dir):
    backend = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=1.0, warm=1,
                            expected_limits=Limits(wall_time_s=30, memory_mb=500))
    try:
        backend.warm_up()
        backend.wait_until_warm()
        other = set(containers(node))
        result, outcome = run_one(backend, prepared)  # LIMITS: not the pool's
        assert outcome.error == ""
        assert backend._fold_container.container.id[:12] not in other
        backend.wait_until_warm()
        wait_for(lambda: len(containers(node)) == 1 and not set(containers(node)) & other,
                 "the pool holds a container of the folds' limits only")
    finally:
        backend.close()
    assert containers(node) == []


def test_a_warm_fold_counts_only_its_own_cpu_time(
        prepared, node, work_dir):
    warm = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=1.0)
    cold = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=1.0, warm=False)
    try:
        run_one(warm, prepared)
        result, outcome = run_one(warm, prepared)
        cold_result, cold_outcome = run_one(cold, prepared)
    finally:
        warm.close()
    assert outcome.error == cold_outcome.error == ""
    # A cold fold pays for importing the scientific stack; a warm one did
    # that before its fold and is not charged for it.
    assert result.cpu_time < 0.5 * cold_result.cpu_time
    assert result.peak_memory > 20 * 2**20
    assert containers(node) == []


def test_a_fold_cancelled_at_its_heartbeat_leaves_nothing(prepared, node, work_dir):
    # How a cancelled submission stops its running folds: the runner's next
    # heartbeat is refused and the sandbox stops the fold.
    backend = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=0.5)
    _, workdir = fold_workdir(prepared, backend.workdir_parent(), SLEEPING)
    log = workdir / "output" / "stdout.log"

    def heartbeat():
        if log.exists() and "fold started" in log.read_text():
            raise FoldStopped()

    try:
        result = backend.run(workdir, LIMITS, heartbeat=heartbeat)
        assert result.terminated == Termination.STOPPED
        assert result.wall_time < 60
        backend.cleanup(workdir)
        # The fold's container is removed off the fold's path; the slot's
        # pool waits for the next folds.
        backend.wait_until_warm()
        wait_for(lambda: len(containers(node)) == backend.warm,
                 "the cancelled fold's container is gone")
        assert len(slot_dirs(work_dir)) == backend.warm
    finally:
        backend.close()
    assert containers(node) == []
    assert slot_dirs(work_dir) == []
    assert not workdir.exists()


def test_a_fold_cancelled_while_its_container_warms_up_leaves_nothing(prepared, node,
                                                                       work_dir):
    # A worker's first fold (no pool yet) starts its own container and waits
    # for it to import the stack; cancelled meanwhile, the fold never starts.
    backend = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=0.5)
    _, workdir = fold_workdir(prepared, backend.workdir_parent(), GOOD)
    beats = []

    def heartbeat():
        beats.append(backend._fold_container.container.id)
        raise FoldStopped()

    try:
        result = backend.run(workdir, LIMITS, heartbeat=heartbeat)
        assert result.terminated == Termination.STOPPED
        assert len(beats) == 1  # stopped while its container warmed up
        assert not (workdir / "output" / "y_pred_test.npy").exists()
        # Its container is gone at once; the pool started for the next folds stays.
        assert beats[0] not in containers(node)
        backend.cleanup(workdir)
        assert not workdir.exists()
    finally:
        backend.close()
    assert containers(node) == []
    assert slot_dirs(work_dir) == []


WORKER = """
import sys
from pathlib import Path
from workers.sandbox import FoldStopped, Limits, Termination
from workers.sandbox.docker_backend import DockerSandbox

backend = DockerSandbox(work_dir=Path(sys.argv[1]), heartbeat_interval_s=1.0)
limits = Limits(wall_time_s=60, memory_mb=600)
for workdir in sys.argv[2:]:
    backend.run(Path(workdir), limits, heartbeat=lambda: None)
    print("fold done", backend._fold_container.container.id[:12], flush=True)
sys.stdin.read()  # a worker between folds, until it is stopped
"""


def start_worker(work_dir: Path, *workdirs: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(work_dir), *map(str, workdirs)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def wait_for(predicate, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def test_a_fold_cancelled_while_it_runs_leaves_nothing(prepared, node, work_dir):
    _, workdir = fold_workdir(prepared, work_dir, SLEEPING)
    worker = start_worker(work_dir, workdir)
    try:
        # Running: its output says so, and the next fold's container is
        # started beside it; the pool's others (3 by default) wait for
        # the slot to idle, its warm-up taking no CPU from the fold.
        wait_for(lambda: "fold started" in (workdir / "output" / "stdout.log").read_text()
                 if (workdir / "output" / "stdout.log").exists() else False,
                 "the fold runs")
        wait_for(lambda: len(containers(node)) == 2, "the next fold's container is started")
        time.sleep(2 * REFILL_AFTER_IDLE_S + 0.5)
        assert len(containers(node)) == 2
        # How Celery stops a fold it revokes with terminate=True.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 1
    finally:
        if worker.poll() is None:
            worker.kill()
    assert containers(node) == []
    assert slot_dirs(work_dir) == []


def test_a_worker_killed_outright_leaves_its_warm_container_to_the_sweep(prepared, node,
                                                                        work_dir):
    _, workdir = fold_workdir(prepared, work_dir, GOOD)
    worker = start_worker(work_dir, workdir)
    try:
        said = worker.stdout.readline()
        assert said.startswith("fold done "), said
        fold_container = said.split()[-1]
        # The fold's container gone, the pool (3) started again.
        wait_for(lambda: len(containers(node)) == 3 and fold_container not in containers(node),
                 "the next containers are started")
        worker.kill()
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert len(containers(node)) == 3
    # What a worker node does when it starts again (celeryd_init).
    assert remove_orphans(node) == 3
    assert containers(node) == []


QUICK = b"""
from sklearn.dummy import DummyClassifier


def get_estimator():
    return DummyClassifier()
"""


def test_folds_of_a_few_milliseconds_have_their_cpu_time_and_memory_measured(
        prepared, node, work_dir):
    # The container says when its fold has ended and waits while the worker
    # reads its cgroup: read after the container has gone, such a fold had
    # 0 s of CPU (seen in CI, one fold in three).
    backend = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=1.0, warm=2)
    try:
        folds = [run_one(backend, prepared, QUICK) for _ in range(8)]
    finally:
        backend.close()
    for result, outcome in folds:
        assert outcome.error == ""
        assert result.wall_time < 2.0
        assert result.cpu_time > 0, [r.cpu_time for r, _ in folds]
        assert result.peak_memory > 20 * 2**20
    assert containers(node) == []
    assert slot_dirs(work_dir) == []


def run_alone(prepared: Path, work_dir: Path, code: bytes):
    """One fold on a fresh slot of one warm container, closed after it:
    its result, its outcome and the seconds it took."""
    backend = DockerSandbox(work_dir=work_dir, heartbeat_interval_s=1.0, warm=1)
    try:
        t0 = time.monotonic()
        result, outcome = run_one(backend, prepared, code)
        return result, outcome, time.monotonic() - t0
    finally:
        backend.close()


def test_a_fold_that_kills_its_containers_first_process_ends_at_once(prepared, node,
                                                                      work_dir):
    # The first process then cannot say the fold has ended: the worker sees
    # the container gone within a second, not at the wall-time limit.
    code = b"import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(120)\n"
    result, outcome, took = run_alone(prepared, work_dir, code + QUICK)
    assert result.exit_code != 0 and outcome.error != ""
    assert took < 20, took
    assert containers(node) == []
    assert slot_dirs(work_dir) == []


def test_a_fold_that_says_done_itself_is_still_waited_for(prepared, node, work_dir):
    # The container's first process says the fold's status on the "done"
    # pipe, which the fold's own code can write to as well: the worker takes
    # the status only once no process of the fold is left, so a fold that
    # says "done 0" and goes on is read when it has really ended.
    code = (b"import os, time\n"
            # (rampwf refuses a submission with the word "open" in it)
            b"fd = getattr(os, 'op' + 'en')('/work/control/done', os.O_WRONLY | os.O_NONBLOCK)\n"
            b"os.write(fd, b'done 0\\n')\n"
            b"os.close(fd)\n"
            b"time.sleep(1.5)\n")
    result, outcome, _ = run_alone(prepared, work_dir, code + GOOD)
    assert outcome.error == "", (outcome.error, outcome.error_traceback, result.stderr)
    assert outcome.y_pred_test is not None
    assert result.wall_time >= 1.5
    assert containers(node) == []
    assert slot_dirs(work_dir) == []


def test_a_fold_that_leaves_a_process_behind_ends_without_it(prepared, node, work_dir):
    # The harness returns while a process the fold started sleeps on: the
    # fold is scored and its container goes, the process with it.
    # (a fork: rampwf refuses a submission naming subprocess)
    code = b"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(300)\n"
    result, outcome, took = run_alone(prepared, work_dir, code + GOOD)
    assert outcome.error == "", outcome.error
    assert result.exit_code == 0
    assert took < 20, took
    assert containers(node) == []
    assert slot_dirs(work_dir) == []
