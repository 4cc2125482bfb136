"""``python manage.py up``: the whole platform on one machine, one command.

Migrates, creates an admin account (printing how to log in), loads the example
events, then runs two Celery workers and the web server until interrupted: the
fold worker (queue ``sandbox``, one process per fold slot) and the scorer
(queue ``scoring``: scoring, contributivity, e-mail, with embedded beat),
so that scoring never waits for a fold slot. Submissions go through Celery
exactly as in production.
"""
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


def _stop(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Set up and run web + worker + beat on the embedded defaults."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("DATARUN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("DATARUN_PORT", 8000)))
        parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                            help="fold runs in parallel (default: one per core)")
        parser.add_argument("--scoring-concurrency", type=int, default=2,
                            help="processes of the scorer (scoring, contributivity, e-mail)")
        parser.add_argument("--no-examples", action="store_true")

    def handle(self, *args, host, port, concurrency, scoring_concurrency, no_examples,
               **options):
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
        ready_files = []

        def celery_worker(name: str, *options: str) -> subprocess.Popen:
            ready_file = settings.DATARUN_HOME / f"{name}-ready"
            ready_file.unlink(missing_ok=True)
            ready_files.append(ready_file)
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-n", f"{name}@%h",
                 "-l", "INFO", *options],
                env={**env, WORKER_READY_FILE_ENV: str(ready_file)},
            )

        # Folds and trusted work in separate processes: a burst of folds
        # fills every fold slot and the scoring of a finished submission
        # still starts at once.
        folds = celery_worker("folds", "-Q", "sandbox", "-c", str(concurrency))
        scorer = celery_worker("scorer", "-Q", "scoring", "-c", str(scoring_concurrency),
                               "-B", "-s", str(settings.DATARUN_HOME / "celerybeat-schedule"))
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn",
             "config.wsgi:application", "-b", f"{host}:{port}", "--access-logfile", "-"],
            env=env,
        )
        children = [folds, scorer, web]
        signal.signal(signal.SIGTERM, _stop)
        try:
            self.stdout.write("Starting the workers and the web server...\n")
            if self._wait_ready(children, ready_files, f"http://{local}:{port}/api/v1/health/"):
                # Last, under the workers' banners and the first access logs:
                # everything needed to start, in view.
                self.stdout.write(self.style.SUCCESS(
                    f"\nDatarun is running at http://{host}:{port}/ "
                    f"(API: http://{host}:{port}/api/v1/, admin: http://{host}:{port}/admin/); "
                    "its workers are ready. Ctrl-C stops it."))
                self.stdout.write(self.login_text + "\n")
            while all(c.poll() is None for c in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for c in children:
                if c.poll() is None:
                    c.terminate()
            for c in children:
                try:
                    c.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    c.kill()

    def _wait_ready(self, children, ready_files, health_url: str) -> bool:
        """Until every worker has written its ready file and the web server
        answers its health check; False (said why) if one stops or takes
        longer than READY_TIMEOUT_S."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        web_up = False
        while time.monotonic() < deadline:
            if any(c.poll() is not None for c in children):
                self.stderr.write("A worker or the web server stopped: see its log above.")
                return False
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
