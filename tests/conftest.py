"""Shared fixtures. Integration fixtures start a real Celery worker process
against the test PostgreSQL database and Redis; nothing is mocked."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
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
    settings.DATARUN_ENVIRONMENTS_DIR = home / "environments"
    # Problems' environments download their wheels once per machine, not
    # once per session.
    settings.DATARUN_ENV_WHEELS_DIR = Path(tempfile.gettempdir()) / "datarun-test-wheels"
    return home


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Tests create many users; PBKDF2's deliberate slowness buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    # Rate-limit counts live in the cache (Redis, shared with the broker, so
    # never flushed): each test counts under keys of its own.
    settings.CACHES = {"default": {**settings.CACHES["default"],
                                   "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


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


def superuser():
    """The platform's superuser (made on first use in the test's database)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="root-admin").first()
    return user or get_user_model().objects.create_superuser(
        "root-admin", password="pw-root-admin-1234")


def docker_unavailable() -> str | None:
    """Why the Docker sandbox cannot run on this machine, or None."""
    if not shutil.which("docker"):
        return "no docker client"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker daemon (start dockerd)"
    from workers.sandbox.image import runtime_image

    image = runtime_image()
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
        return f"runtime image {image} missing: python3 deploy/runtime/build.py --offline"
    return None


class Workers:
    """The real Celery workers (plus beat) of the session, on the test
    database and the Redis broker, laid out as `make run` lays them out: a
    fold worker (queue ``sandbox``, node ``test@<host>``, 2 slots) and a
    scorer (queue ``scoring``: scoring, contributivity, e-mail; with beat; node
    ``scorer@<host>``), writing one log. Restarted when a test needs another sandbox backend. Only
    one such pair runs at a time: they would share the queues. Its folds go
    through the runner API of the session's web server (gunicorn), as every
    worker's do."""

    # The session's manager, for the autouse fixture that settles it.
    running: "Workers | None" = None
    NODES = ("test", "scorer")

    def __init__(self, storage: Path):
        self.storage = storage
        self.proc: subprocess.Popen | None = None  # the fold worker
        self.scorer: subprocess.Popen | None = None
        self.sandbox: str | None = None
        self.log = None
        self.starts = 0
        self.web: WebServer | None = None

    def env(self, sandbox: str) -> dict[str, str]:
        web = {"DATARUN_API_URL": self.web.url} if self.web else {}
        return {
            **web,
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DATARUN_HOME": str(self.storage),
            "DATARUN_STORAGE_DIR": str(settings.DATARUN_STORAGE_DIR),
            "DATARUN_WORK_DIR": str(settings.DATARUN_WORK_DIR),
            "DATARUN_ENVIRONMENTS_DIR": str(settings.DATARUN_ENVIRONMENTS_DIR),
            "DATARUN_ENV_WHEELS_DIR": str(settings.DATARUN_ENV_WHEELS_DIR),
            "DATARUN_SANDBOX": sandbox,
            "DATARUN_REAPER_INTERVAL": "1",
            "DATARUN_HEARTBEAT_INTERVAL": "0.5",
            "DATARUN_HEARTBEAT_TIMEOUT": "4",
            "DATARUN_CONTRIBUTIVITY_DEBOUNCE_S": "0.5",
            "DATARUN_REDISPATCH_AFTER": "2",
            "PYTHONUNBUFFERED": "1",
        }

    def use(self, sandbox: str) -> subprocess.Popen:
        if (self.proc is not None and self.proc.poll() is None and self.scorer.poll() is None
                and self.sandbox == sandbox):
            return self.proc
        self.stop()
        return self.start(sandbox)

    def start(self, sandbox: str) -> subprocess.Popen:
        self.web_server()
        broker = settings.CELERY_BROKER_URL
        if not broker.startswith("redis://"):
            pytest.fail("integration tests need Redis: set CELERY_BROKER_URL=redis://...")
        import redis

        redis.Redis.from_url(broker).flushdb()  # no messages left from an earlier worker
        self.starts += 1
        log_path = self.storage / f"worker-{self.starts}-{sandbox}.log"
        self.log = open(log_path, "w")
        env = self.env(sandbox)

        def worker(*options: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "INFO",
                 *options],
                cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        proc = worker("-Q", "sandbox", "-c", "2", "-n", "test@%h")
        self.scorer = worker("-Q", "scoring", "-c", "1", "-n", "scorer@%h", "-B",
                              "-s", str(self.storage / "beat-schedule"))
        host = socket.gethostname()
        deadline = time.monotonic() + 60
        while not all(f"{node}@{host} ready." in log_path.read_text() for node in self.NODES):
            if (proc.poll() is not None or self.scorer.poll() is not None
                    or time.monotonic() > deadline):
                self.proc = proc
                self.stop()
                pytest.fail(f"the Celery workers ({sandbox} sandbox) did not start:\n"
                            + log_path.read_text()[-3000:])
            time.sleep(0.2)
        proc.env = env
        proc.log_path = log_path
        self.proc, self.sandbox = proc, sandbox
        Workers.running = self
        return proc

    def settle(self, timeout: float = 120) -> None:
        """Cancel what a test left unfinished and wait until the worker is idle,
        so that it writes nothing while the test database is flushed (a
        TRUNCATE during a worker's transaction can deadlock). Idle: no fold
        left running (a failed evaluation cancels its other folds), nothing
        finished in the last seconds (scoring, contributivity follow), and no
        task active, reserved or scheduled."""
        if self.proc is None or self.proc.poll() is not None:
            return
        from datetime import timedelta

        from django.utils import timezone

        from config.celery import app
        from datarun import services
        from datarun.errors import ApplicationError
        from datarun.models import Evaluation, FoldRun

        final = ["scored", "error", "cancelled"]
        unfinished = list(Evaluation.objects.exclude(state__in=final)
                          .values_list("id", flat=True))
        recent = Evaluation.objects.filter(
            finished_at__gt=timezone.now() - timedelta(seconds=5)).exists()
        running = FoldRun.objects.exclude(state__in=final).exists()
        if not (unfinished or recent or running):
            return
        for evaluation_id in unfinished:
            try:
                services.evaluation_cancel(evaluation_id=evaluation_id)
            except ApplicationError:
                pass  # finished meanwhile
        nodes = [f"{node}@{socket.gethostname()}" for node in self.NODES]
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            inspect = app.control.inspect(destination=nodes, timeout=1.0)
            busy = [inspect.active(), inspect.reserved(), inspect.scheduled()]
            if all(reply and not any(reply.values()) for reply in busy):
                # Idle twice in a row, half a second apart (a debounced task
                # may be about to be sent).
                if idle_since is not None and time.monotonic() - idle_since >= 0.5:
                    return
                idle_since = idle_since or time.monotonic()
            else:
                idle_since = None
            time.sleep(0.2)

    def web_server(self) -> "WebServer":
        """The session's gunicorn (started once): the runner API the worker
        talks to, and the server of live tests."""
        if self.web is None:
            self.web = start_web_server(self.env("local"), self.storage)
        return self.web

    def restart_web_server(self) -> None:
        """Start the session's gunicorn again at the same address (after a
        test stopped it)."""
        port = int(self.web.url.rsplit(":", 1)[1])
        self.web.log.close()
        self.web = start_web_server(self.env("local"), self.storage, port=port)

    def stop_web_server(self) -> None:
        if self.web is not None:
            stop_process(self.web.proc)
            self.web.log.close()
            self.web = None

    def stop(self) -> None:
        if self.proc is None:
            return
        for proc in (self.proc, self.scorer):
            if proc is not None:
                proc.terminate()
        for proc in (self.proc, self.scorer):
            if proc is None:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.log.close()
        self.proc = self.scorer = None


@pytest.fixture(autouse=True)
def _settled_worker(request, _django_db_helper):
    """After a test on the committed database (transaction=True), the worker is
    left idle before the database is flushed (pytest-django's database fixture
    is requested first so that it is torn down after this one)."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if Workers.running is not None and marker and marker.kwargs.get("transaction"):
        Workers.running.settle()


@pytest.fixture(scope="session")
def _workers(django_db_setup, django_db_blocker, _storage):
    workers = Workers(_storage)
    yield workers
    workers.stop()
    workers.stop_web_server()


@pytest.fixture
def celery_worker_process(_workers):
    """The real fold worker process running folds in the local sandbox (its
    scorer, with beat, beside it)."""
    return _workers.use("local")


@pytest.fixture(scope="session", params=["local", "docker"])
def sandbox_kind(request) -> str:
    # Session scope makes pytest run all tests of one backend together.
    return request.param


@pytest.fixture
def sandbox_worker(sandbox_kind, _workers):
    """A real worker for each sandbox backend (the Docker one needs dockerd and
    the runtime image; in CI a skip fails the run)."""
    if sandbox_kind == "docker" and (reason := docker_unavailable()):
        pytest.skip(reason)
    return _workers.use(sandbox_kind)


@pytest.fixture
def docker_worker(_workers):
    """A real worker running folds in the Docker sandbox."""
    if reason := docker_unavailable():
        pytest.skip(reason)
    return _workers.use("docker")


def free_port() -> int:
    """A TCP port nothing listens on (now) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WebServer:
    url: str
    proc: subprocess.Popen
    log_path: Path
    log: object = None

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_web_server(env: dict, storage: Path, port: int | None = None) -> WebServer:
    """gunicorn serving the app (DEBUG off, static files collected as in
    production) on a free port, with ``env``: the test database, the Redis
    broker and the session's storage dirs."""
    env = {**env, "DEBUG": "0", "DATARUN_STATIC_ROOT": str(storage / "static")}
    collect = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                             cwd=ROOT, env=env, capture_output=True, text=True)
    if collect.returncode:
        pytest.fail(f"collectstatic failed:\n{collect.stdout}{collect.stderr}")
    port = port or free_port()
    log_path = storage / "gunicorn.log"
    log = open(log_path, "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
         "--timeout", "60", "--access-logfile", "-", "--error-logfile", "-"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = WebServer(f"http://127.0.0.1:{port}", proc, log_path, log)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the web server did not start:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/events/", timeout=5) as response:
                if response.status == 200:
                    return server
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.2)


@pytest.fixture(scope="session")
def live_server_process(django_db_setup, _workers, _storage) -> WebServer:
    """The session's gunicorn, which the worker's runners talk to too. Tests
    using it see the server through committed data only
    (``django_db(transaction=True)``)."""
    return _workers.web_server()


@pytest.fixture
def no_worker(_workers):
    """No worker consumes the broker's queues during the test (one started
    by an earlier test is stopped; the next that needs one starts it)."""
    _workers.stop()
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


class BrokerSwitch:
    """This process's Celery app sends to a broker that refuses connections
    (as during a Redis restart) after ``down()``, to the real one after ``up()``."""

    def down(self) -> None:
        self._use(f"redis://127.0.0.1:{free_port()}/0")

    def up(self) -> None:
        self._use(None)

    @staticmethod
    def _use(url) -> None:
        from config.celery import app

        app.conf.broker_write_url = url
        app._pool = None
        app.amqp._producer_pool = None


@pytest.fixture
def broker():
    switch = BrokerSwitch()
    yield switch
    switch.up()


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
