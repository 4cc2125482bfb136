"""What a worker leaves on the machine when it stops: a real Celery worker
process on the local backend, started and stopped as an operator would."""
import time
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def fork_server_roots() -> set[Path]:
    return set(Path(settings.DATARUN_WORK_DIR).glob("local-*"))


def test_a_stopped_worker_leaves_no_fork_server_root(_workers):
    _workers.stop()
    before = fork_server_roots()
    _workers.use("local")
    deadline = time.monotonic() + 60
    while len(fork_server_roots() - before) < 2:  # one per worker process (-c 2)
        assert time.monotonic() < deadline, "the worker started no fork server"
        time.sleep(0.2)

    _workers.stop()

    assert fork_server_roots() - before == set()
