"""The code layout's rules hold: dependencies run one way
(databoard -> datarun <- workers -> harness, pyproject.toml's import
contracts), and importing datarun's modules has no side effects."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_datarun_modules_import_without_celery_django_settings_or_a_database():
    # Celery and the settings made unimportable: the pure modules and the
    # runner's side of the fold contract load all the same, and load neither.
    code = """
import sys
sys.modules["celery"] = None
sys.modules["config"] = None
import datarun, datarun.contract, datarun.scoring, datarun.ramp_kits, datarun.software
import workers.runner_client, workers.fold_io
assert "django.conf" not in sys.modules or not __import__("django.conf").conf.settings.configured
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "ok", result.stderr[-3000:]
