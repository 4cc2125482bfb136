"""A worker process that dies mid-fold is detected by the reaper: the fold is
re-run, and after repeated losses it fails as a platform error."""
import os
import signal
import time

import psutil
import pytest

from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLOW = """
import time
from sklearn.linear_model import LogisticRegression


def get_estimator():
    time.sleep(2)
    return LogisticRegression(max_iter=1000)
"""


def busy_pool_processes(worker: psutil.Process) -> list[psutil.Process]:
    """Celery pool processes of ``worker`` whose sandbox is running a fold."""
    busy = []
    for p in worker.children(recursive=True):
        try:
            # The fork server itself, not the bubblewrap processes around it
            # (their command lines name it too, and they always have a child).
            if (p.name() != "bwrap" and "workers.harness.forkserver" in " ".join(p.cmdline())
                    and p.children()):
                # Up past bubblewrap's processes, if any, to the pool process.
                pool = p.parent()
                while "celery" not in " ".join(pool.cmdline()):
                    pool = pool.parent()
                busy.append(pool)
        except psutil.NoSuchProcess:
            continue
    return busy


def kill_busy(worker: psutil.Process) -> int:
    killed = 0
    for p in busy_pool_processes(worker):
        try:
            os.kill(p.pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


@pytest.fixture
def iris(celery_worker_process):
    return signed_up(EXAMPLES / "iris", "iris")


def test_lost_fold_is_rerun(iris, celery_worker_process):
    worker = psutil.Process(celery_worker_process.pid)
    created = submit(iris, "iris", "slow", {"estimator.py": SLOW})
    deadline = time.monotonic() + 30
    while not kill_busy(worker):
        assert time.monotonic() < deadline, "no fold started"
        time.sleep(0.05)
    detail = wait_final(iris, created["id"], timeout=90)
    assert detail["state"] == "scored", detail["error"]
    assert max(f["attempt"] for f in detail["folds"]) == 2


def test_fold_lost_too_often_is_a_platform_failure(iris, celery_worker_process):
    worker = psutil.Process(celery_worker_process.pid)
    created = submit(iris, "iris", "slow", {"estimator.py": SLOW})
    deadline = time.monotonic() + 90
    while (detail := iris.get(f"/api/v1/submissions/{created['id']}/").json())["state"] not in (
        "scored", "error"
    ):
        assert time.monotonic() < deadline, detail
        kill_busy(worker)
        time.sleep(0.05)
    assert detail["state"] == "error"
    assert detail["error_kind"] == "platform"
    assert "stopped responding 2 times" in detail["error"]
    assert "not an error in your code" in detail["error"]
