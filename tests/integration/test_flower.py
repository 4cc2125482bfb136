"""Flower, the monitoring UI of the Compose stack, started on the test broker:
its HTTP API sees the running worker and the queues it reads."""
import base64
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.conftest import ROOT
from tests.integration.test_embedded import free_port

pytestmark = pytest.mark.integration

# The workers of the celery_worker_process fixture: folds (`-n test@%h`) and
# scoring (`-n scorer@%h`).
WORKER = f"test@{socket.gethostname()}"
SCORER = f"scorer@{socket.gethostname()}"


@contextlib.contextmanager
def flower(worker_env: dict, tmp_path, **flower_env):
    """`celery -A config flower` on a free port, stopped (and checked) on exit."""
    port = free_port()
    log_path = tmp_path / "flower.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "flower",
             f"--port={port}", "--address=127.0.0.1"],
            cwd=ROOT, env={**worker_env, **flower_env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        proc.log_path = log_path
        try:
            yield f"http://127.0.0.1:{port}", proc
        finally:
            proc.terminate()
            try:
                returncode = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail("Flower did not stop within 15 s of SIGTERM:\n"
                            + log_path.read_text()[-3000:])
    assert returncode == 0, f"Flower exited with {returncode}:\n{log_path.read_text()[-3000:]}"


def get(url: str, credentials: str | None = None) -> urllib.request.addinfourl:
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return urllib.request.urlopen(request, timeout=10)


def wait_for_worker(base: str, proc, credentials: str | None = None,
                    timeout: float = 60) -> dict:
    """Poll ``/api/workers?refresh=1`` until the fixture's worker is listed."""
    deadline = time.monotonic() + timeout
    workers, last_error = {}, "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Flower exited with {proc.returncode}:\n"
                        + proc.log_path.read_text()[-3000:])
        try:
            with get(f"{base}/api/workers?refresh=1", credentials) as response:
                workers = json.load(response)
        except (urllib.error.URLError, ConnectionError) as exc:
            last_error = str(exc)  # not listening yet, or the inspect timed out
        if WORKER in workers and SCORER in workers:
            return workers
        time.sleep(0.5)
    pytest.fail(f"Flower did not list the workers {WORKER} and {SCORER} within "
                f"{timeout:.0f} s; "
                f"it listed {sorted(workers)}, last error: {last_error}\n"
                + proc.log_path.read_text()[-3000:])


def test_flower_api_lists_the_running_worker_and_its_queues(celery_worker_process, tmp_path):
    # The unauthenticated API is for this test only; Compose sets basic auth.
    with flower(celery_worker_process.env, tmp_path, FLOWER_UNAUTHENTICATED_API="true") as (
            base, proc):
        workers = wait_for_worker(base, proc)
    def queues(node: str) -> set[str]:
        return {queue["name"] for queue in workers[node]["active_queues"]}

    # Folds on one worker, scoring and the rest on the other: between them,
    # every queue a task is sent to.
    assert queues(WORKER) == {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert queues(SCORER) == {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert queues(WORKER) | queues(SCORER) == {"sandbox", "scoring"}


def test_flower_with_basic_auth_answers_only_with_the_credentials(celery_worker_process,
                                                                  tmp_path):
    # As in docker-compose.yml: FLOWER_BASIC_AUTH set, no FLOWER_UNAUTHENTICATED_API.
    env = {k: v for k, v in celery_worker_process.env.items()
           if k != "FLOWER_UNAUTHENTICATED_API"}
    with flower(env, tmp_path, FLOWER_BASIC_AUTH="admin:flower-test-password") as (base, proc):
        assert WORKER in wait_for_worker(base, proc, "admin:flower-test-password")
        for credentials in (None, "admin:wrong-password"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                get(f"{base}/api/workers", credentials)
            assert refused.value.code == 401, credentials
        with get(f"{base}/healthcheck") as response:  # Compose's health check
            assert response.read() == b"OK"
