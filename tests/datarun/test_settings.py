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
