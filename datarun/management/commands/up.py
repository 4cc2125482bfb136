"""``python manage.py up``: the whole platform on one machine, one command.

Migrates, creates an admin account (printing how to log in), loads the example
events, then runs two Celery workers, the web server and Flower until
interrupted: the fold worker (queue ``sandbox``, one process per fold slot)
and the scorer (queue ``scoring``: scoring, contributivity, e-mail, with
embedded beat), so that scoring never waits for a fold slot. Submissions go
through Celery exactly as in production. A process that stops by itself is
started again; one that keeps stopping stops everything (exit status 1).
"""
import collections
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

READY_TIMEOUT_S = 180
# The worker writes this file once ready (config/celery.py reads the variable;
# datarun does not import the project's wiring).
WORKER_READY_FILE_ENV = "DATARUN_WORKER_READY_FILE"
FLOWER_INSTALLED = importlib.util.find_spec("flower") is not None
FLOWER_READY_TIMEOUT_S = 60
# A process that stops more often than this is not started again.
RESTARTS = 3
RESTART_WINDOW_S = 60


def _stop(signum, frame):
    raise KeyboardInterrupt


class _GaveUp(Exception):
    """A process kept stopping: up stops the rest and exits 1."""


class _Supervisor:
    """The web server and the two workers. One that stops by itself (a
    crash, the OOM killer) is started again at once, saying which and how it
    stopped; one that stops more than RESTARTS times within RESTART_WINDOW_S
    is failing for good (a port taken, a broken setting): the others are
    stopped and up exits 1 (_GaveUp)."""

    def __init__(self, starters, say):
        self.starters = starters
        self.say = say
        self.running = {name: start() for name, start in starters.items()}
        self.stops = {name: collections.deque() for name in starters}

    def check(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is None:
                continue
            now = time.monotonic()
            stops = self.stops[name]
            stops.append(now)
            while now - stops[0] > RESTART_WINDOW_S:
                stops.popleft()
            how = _how(proc.returncode)
            if len(stops) > RESTARTS:
                self.say(f"{name} stopped ({how}; see its log above), {len(stops)} times "
                         f"within {RESTART_WINDOW_S} s: stopping the rest.")
                raise _GaveUp
            self.say(f"{name} stopped ({how}; see its log above): starting it again.")
            self.running[name] = self.starters[name]()


def _how(returncode: int) -> str:
    """How a child process ended, in words."""
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


class Command(BaseCommand):
    help = "Set up and run web + fold worker + scorer + beat on the embedded defaults."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("DATARUN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("DATARUN_PORT", 8000)))
        parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                            help="fold runs in parallel (default: one per core)")
        parser.add_argument("--scoring-concurrency", type=int, default=2,
                            help="processes of the scorer (scoring, contributivity, e-mail)")
        parser.add_argument("--no-examples", action="store_true")
        parser.add_argument("--flower-port", type=int,
                            default=int(os.environ.get("DATARUN_FLOWER_PORT", 5555)),
                            help="Flower's port, on 127.0.0.1 only (default 5555)")
        parser.add_argument("--no-flower", action="store_true", help="do not start Flower")

    def handle(self, *args, host, port, concurrency, scoring_concurrency, no_examples,
               flower_port, no_flower, **options):
        settings.DATARUN_HOME.mkdir(parents=True, exist_ok=True)
        call_command("migrate", verbosity=0)
        self._admin_account()
        if not no_examples:
            call_command("load_examples", stdout=self.stdout)
        call_command("collectstatic", interactive=False, verbosity=0)
        # The worker runs folds through this web server's runner API.
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "DATARUN_API_URL": f"http://{local}:{port}"}
        flower_url = None
        if not no_flower and FLOWER_INSTALLED:
            flower_url = f"http://127.0.0.1:{flower_port}/"
            # The organiser queue page links to it (unless set otherwise).
            env.setdefault("DATARUN_FLOWER_URL", flower_url)
        ready_files = []

        def celery_worker(name: str, *options: str):
            ready_file = settings.DATARUN_HOME / f"{name}-ready"
            ready_files.append(ready_file)

            def start() -> subprocess.Popen:
                ready_file.unlink(missing_ok=True)
                return subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "config", "worker",
                     "-n", f"{name}@%h", "-l", "INFO", *options,
                     # Task events, so that Flower shows each task as it runs.
                     *(["-E"] if flower_url else [])],
                    env={**env, WORKER_READY_FILE_ENV: str(ready_file)},
                )
            return start

        def web_server() -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn",
                 "config.wsgi:application", "-b", f"{host}:{port}", "--access-logfile", "-"],
                env=env,
            )

        # Folds and trusted work in separate processes: a burst of folds
        # fills every fold slot and the scoring of a finished submission
        # still starts at once.
        supervisor = _Supervisor({
            "The fold worker": celery_worker("folds", "-Q", "sandbox", "-c", str(concurrency)),
            "The scorer": celery_worker(
                "scorer", "-Q", "scoring", "-c", str(scoring_concurrency),
                "-B", "-s", str(settings.DATARUN_HOME / "celerybeat-schedule")),
            "The web server": web_server,
        }, say=self.stderr.write)
        # Flower is a window on the workers: if it cannot start (its port is
        # taken) or stops, the platform runs on without it.
        flower = None
        if flower_url:
            # On this machine's loopback only, whatever --host says: without
            # FLOWER_BASIC_AUTH its pages are open to whoever reaches them.
            flower = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "flower",
                 "--address=127.0.0.1", f"--port={flower_port}", "--logging=warning"],
                env=env,
            )
        signal.signal(signal.SIGTERM, _stop)
        try:
            self.stdout.write("Starting the workers and the web server...\n")
            if self._wait_ready(supervisor, ready_files,
                                f"http://{local}:{port}/api/v1/health/"):
                # Last, under the workers' banners and the first access logs:
                # everything needed to start, in view, in one block.
                flower_text = self._flower_text(flower, flower_url, flower_port)
                self.stdout.write(self.style.SUCCESS(
                    f"\nDatarun is running at http://{host}:{port}/ "
                    f"(API: http://{host}:{port}/api/v1/, admin: http://{host}:{port}/admin/); "
                    "its workers are ready. Ctrl-C stops it."))
                self.stdout.write(flower_text)
                self.stdout.write(self.login_text + "\n")
            flower_said = False
            while True:
                supervisor.check()
                if flower is not None and not flower_said and flower.poll() is not None:
                    flower_said = True
                    self.stderr.write(
                        f"Flower stopped ({_how(flower.returncode)}; see its log above): "
                        "the platform runs on without it.")
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        except _GaveUp:
            raise SystemExit(1) from None  # once the rest is stopped (below)
        finally:
            children = list(supervisor.running.values())
            if flower is not None:
                children.append(flower)
            for c in children:
                if c.poll() is None:
                    c.terminate()
            for c in children:
                try:
                    c.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    c.kill()

    def _flower_text(self, flower, flower_url, flower_port) -> str:
        """Where Flower is, or why it is not there and how to start it."""
        by_hand = ("celery -A config flower --address=127.0.0.1 "
                   f"--port={flower_port}")
        if flower_url is None and not FLOWER_INSTALLED:
            return f"Flower is not installed: pip install flower, then {by_hand}"
        if flower is None:
            return f"Flower (--no-flower): start it with {by_hand}"
        deadline = time.monotonic() + FLOWER_READY_TIMEOUT_S
        while flower.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(flower_url + "healthcheck", timeout=2) as answer:
                    if answer.status == 200:
                        return (f"Flower (workers, queues, every task): {flower_url} "
                                "(linked from /organiser/queue/)")
            except OSError:
                time.sleep(0.5)
        return (f"Flower did not start on port {flower_port} (see its log above; "
                f"--flower-port picks another): {by_hand}")

    def _wait_ready(self, supervisor, ready_files, health_url: str) -> bool:
        """Until every worker has written its ready file and the web server
        answers its health check (a process that stops meanwhile is started
        again); False (said why) after READY_TIMEOUT_S."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        web_up = False
        while time.monotonic() < deadline:
            supervisor.check()
            if not web_up:
                try:
                    with urllib.request.urlopen(health_url, timeout=2) as answer:
                        web_up = answer.status == 200
                except OSError:
                    pass
            if web_up and all(f.exists() for f in ready_files):
                return True
            time.sleep(0.5)
        waiting = [f.name.removesuffix("-ready") for f in ready_files if not f.exists()]
        self.stderr.write(f"Not ready after {READY_TIMEOUT_S} s (web server "
                          f"{'up' if web_up else 'not answering'}, workers not ready: "
                          f"{', '.join(waiting) or 'none'}): see the logs above.")
        return False

    def _admin_account(self):
        User = get_user_model()
        password_file = settings.DATARUN_HOME / "admin-password.txt"
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            password = os.environ.get("DATARUN_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser("admin", "admin@localhost", password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        token, _ = Token.objects.get_or_create(user=admin)
        where = (f"the password is in {password_file}" if password_file.exists()
                 else "use the password you set")
        self.login_text = (f"Admin account: user 'admin', {where}.\n"
                           f"Admin API token: {token.key}")
        self.stdout.write(self.login_text + "\n")
