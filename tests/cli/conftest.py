"""CLI tests: the installed ``datarun`` command and :mod:`datarun.client`
against a live gunicorn server (tests/conftest.py's ``live_server_process``)
and the real Celery worker, both on the test database.

Tests here see the server through committed data only: mark them
``@pytest.mark.django_db(transaction=True)``.
"""
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from databoard import services
from databoard.models import Event

# The command the project installs into its virtual environment.
DATARUN = Path(sys.executable).parent / "datarun"
PASSWORD = "a-Long-cli-passw0rd"


def participant(event: Event, username: str = "alice"):
    """A user signed up to ``event``, whose password the live server checks."""
    hasher = PBKDF2PasswordHasher()  # the server's hasher, not the tests' fast one
    user = get_user_model().objects.create(
        username=username, password=hasher.encode(PASSWORD, hasher.salt()))
    services.event_signup(event=event, user=user)
    return user


@dataclass
class Cli:
    """Runs ``datarun`` in a subprocess with its own config dir."""
    url: str
    config_home: Path
    cwd: Path

    def __call__(self, *args: str, input: str | None = None,
                 timeout: float = 180) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATARUN_URL", "DATARUN_TOKEN", "COLUMNS")}
        env["XDG_CONFIG_HOME"] = str(self.config_home)
        return subprocess.run([str(DATARUN), *args], input=input, capture_output=True,
                              text=True, env=env, cwd=self.cwd, timeout=timeout)

    def login(self, username: str = "alice") -> None:
        result = self("login", self.url, "--username", username, "--password-stdin",
                      input=PASSWORD + "\n")
        assert result.returncode == 0, result.stderr


@pytest.fixture
def cli(live_server_process, celery_worker_process, tmp_path) -> Cli:
    (tmp_path / "work").mkdir()
    return Cli(live_server_process.url, tmp_path / "config", tmp_path / "work")
