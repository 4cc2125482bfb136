"""Hostile submissions through a real worker on the Docker sandbox: each fails
with its own message, the worker keeps scoring, nothing is left running, and a
worker killed mid-fold leaves no container once it is back."""
import os
import re
import signal
import subprocess
import time

import psutil
import pytest

from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final
from tests.security.conftest import disguise, stray_containers, stray_processes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()

HOSTILE = {
    "sleeper": ("import time\ntime.sleep(10**6)\n",
                r"exceeded the time limit of 5 s in fold \d"),
    "fork-bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n"
                  "    except OSError:\n        pass\n",
                  # 256 processes (the pids limit) may fill the memory first.
                  r"exceeded the (time limit of 5 s|memory limit of 300 MiB) in fold \d"),
    "parent-killer": ("import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\n"
                      "time.sleep(10)\n",
                      r"the submission's process was killed by SIGKILL in fold \d"),
    "hoarder": ("hoard = []\nwhile True:\n    hoard.append(b'x' * 2**24)\n",
                r"exceeded the memory limit of 300 MiB in fold \d"),
}


@pytest.fixture
def iris_event(docker_worker):
    return signed_up(EXAMPLES / "iris", "iris", fold_time_limit_s=5, fold_memory_limit_mb=300)


def test_hostile_submissions_leave_the_worker_healthy(iris_event, docker_worker):
    created = {name: submit(iris_event, "iris", name, {"estimator.py": disguise(code)})
               for name, (code, _) in HOSTILE.items()}
    for name, (_, message) in HOSTILE.items():
        detail = wait_final(iris_event, created[name]["id"], timeout=180)
        assert (detail["state"], detail["error_kind"]) == ("error", "participant"), name
        assert re.fullmatch(message, detail["error"]), (name, detail["error"])

    after = wait_final(iris_event, submit(iris_event, "iris", "after",
                                          {"estimator.py": STARTING_KIT})["id"])
    assert after["state"] == "scored", after["error"]
    assert docker_worker.poll() is None
    wait_no_containers()
    assert stray_processes("time.sleep(10**6)") == []


def wait_no_containers(timeout: float = 30) -> None:
    """Every fold container gone within its time limit (5 s) and some slack."""
    deadline = time.monotonic() + timeout
    while stray_containers():
        assert time.monotonic() < deadline, "a fold container outlived its time limit"
        time.sleep(0.2)


def node_containers(*, running_only: bool = False) -> list[str]:
    """Fold containers and warm containers (labelled apart while they wait,
    and so while the fold they were warmed for runs)."""
    warm = subprocess.run(["docker", "ps", "-q" if running_only else "-aq",
                           "--filter", "label=org.datarun.warm"], capture_output=True, text=True)
    return stray_containers(running_only=running_only) + warm.stdout.split()


def test_a_worker_killed_mid_fold_leaves_no_container_once_restarted(
        iris_event, docker_worker, _workers):
    created = submit(iris_event, "iris", "sleeper", {"estimator.py": disguise(
        "import time\ntime.sleep(10**6)\n")})
    deadline = time.monotonic() + 60
    while not node_containers(running_only=True):
        assert time.monotonic() < deadline, "no fold container started"
        time.sleep(0.1)
    # The whole worker dies at once: no finally clause runs anywhere.
    worker = psutil.Process(docker_worker.pid)
    for proc in [worker, *worker.children(recursive=True)]:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    docker_worker.wait()
    orphans = node_containers(running_only=True)
    assert orphans != []  # orphaned, still running

    _workers.use("docker")  # the same node name starts again
    # Its sweep removed the orphans. (Its beat may already have re-run a lost
    # fold in a new container: the folds' heartbeats are stale by then.)
    assert set(orphans) & set(node_containers()) == set()
    # The reaper re-runs the lost folds; they end at the time limit as before.
    detail = wait_final(iris_event, created["id"], timeout=180)
    assert re.fullmatch(r"exceeded the time limit of 5 s in fold \d", detail["error"])
    # A fold that started beside the failing one runs to its own limit, then
    # its container goes too.
    wait_no_containers()
