"""Shared fixtures. Integration fixtures start a real Celery worker process
against the test PostgreSQL database and Redis; nothing is mocked."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "datarun" / "examples"


@pytest.fixture(scope="session", autouse=True)
def _storage(tmp_path_factory):
    """One storage and work dir per test session, shared with the worker."""
    home = tmp_path_factory.mktemp("datarun-home")
    settings.DATARUN_HOME = home
    settings.DATARUN_STORAGE_DIR = home / "storage"
    settings.DATARUN_WORK_DIR = home / "work"
    return home


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("integration tests need PostgreSQL: set DATABASE_URL=postgres://...")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, _storage):
    """A real `celery worker` process (plus beat, for the reaper) on the test database."""
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        pytest.fail("integration tests need Redis: set CELERY_BROKER_URL=redis://...")
    import redis

    redis.Redis.from_url(broker).flushdb()  # no messages left from an earlier run
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "DATARUN_HOME": str(_storage),
        "DATARUN_STORAGE_DIR": str(settings.DATARUN_STORAGE_DIR),
        "DATARUN_WORK_DIR": str(settings.DATARUN_WORK_DIR),
        "DATARUN_REAPER_INTERVAL": "1",
        "DATARUN_HEARTBEAT_INTERVAL": "0.5",
        "DATARUN_HEARTBEAT_TIMEOUT": "4",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(_storage / "worker.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "datarun", "worker", "-B", "-Q",
         "sandbox,scoring", "-c", "2", "-l", "INFO", "-n", "test@%h",
         "-s", str(_storage / "beat-schedule")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while "ready." not in (_storage / "worker.log").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the Celery worker did not start:\n"
                        + (_storage / "worker.log").read_text()[-3000:])
        time.sleep(0.2)
    proc.env = env
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def kit_copy(tmp_path):
    """A fresh copy of an example kit, to break or to run ramp-test in."""
    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(EXAMPLES / name, dst)
        return dst
    return copy


def pytest_sessionfinish(session, exitstatus):
    """In CI nothing may skip: a test that needs a service must find it running."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") == "true" and skipped and session.exitstatus == 0:
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; failing the run",
                            red=True)
        session.exitstatus = 1
