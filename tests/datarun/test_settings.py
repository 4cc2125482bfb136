"""Production settings refuse to start without a real secret and database."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CHECK = "import django; django.setup(); print('started')"


def start(**env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DATABASE_URL", "DATARUN_ENV")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **env_overrides)
    return subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, env=env,
                          capture_output=True, text=True)


@pytest.mark.parametrize(("overrides", "message"), [
    ({}, "needs SECRET_KEY"),
    ({"SECRET_KEY": "short"}, "needs SECRET_KEY"),
    ({"SECRET_KEY": "x" * 50}, "needs DATABASE_URL"),
])
def test_production_refuses_to_start_without_secret_and_database(overrides, message):
    result = start(DATARUN_ENV="production", **overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_both_set():
    result = start(DATARUN_ENV="production", SECRET_KEY="x" * 50,
                   DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_development_starts_on_embedded_defaults(tmp_path):
    result = start(DATARUN_HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr


PRODUCTION = {"DATARUN_ENV": "production", "SECRET_KEY": "k3y-" + "x" * 50,
              "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
              "ALLOWED_HOSTS": "testserver"}
BEHIND_THE_PROXY = """
import django; django.setup()
from django.test import Client
plain = Client().get("/events/?page=2")
print("plain", plain.status_code, plain["Location"])
login = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
print("https", login.status_code, login["Strict-Transport-Security"],
      login.cookies["csrftoken"]["secure"], login["Content-Security-Policy"])
"""


def test_production_passes_the_deploy_check():
    env = {**os.environ, **PRODUCTION}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy",
                             "--fail-level", "WARNING"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_production_redirects_to_https_and_sends_cookies_over_https_only():
    result = subprocess.run([sys.executable, "-c", BEHIND_THE_PROXY], cwd=ROOT,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
                                 **PRODUCTION}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    plain, https = result.stdout.splitlines()
    assert plain == "plain 301 https://testserver/events/?page=2"
    assert https.startswith("https 200 max-age=31536000; includeSubDomains; preload True ")
    assert "default-src 'self'" in https
