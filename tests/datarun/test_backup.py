"""manage.py backup / restore, a round trip with the real tools: the test
database is dumped with pg_dump and restored with pg_restore into a scratch
database, its storage into a scratch folder, both by the commands run as an
administrator would (subprocesses with their own settings)."""
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from databoard.models import Event
from datarun import services, storage
from tests.conftest import EXAMPLES, ROOT, _database_url

pytestmark = pytest.mark.django_db(transaction=True)


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def psql(database_url: str, query: str) -> str:
    return subprocess.run(["psql", database_url, "-tAc", query], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


@pytest.fixture
def scratch_database():
    url = _database_url()
    server, _, _ = url.rpartition("/")
    name = f"restore_{uuid.uuid4().hex[:8]}"
    psql(f"{server}/postgres", f"CREATE DATABASE {name}")
    yield f"{server}/{name}"
    psql(f"{server}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_backup_restores_the_database_and_the_storage(tmp_path, scratch_database):
    problem = services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-backup")
    Event.objects.create(name="iris-backup", title="Iris, backed up", problem_name="iris-backup")
    blob = storage.blob_put(b"a submitted file\n")
    archive = tmp_path / "datarun.tar"
    env = {"DATABASE_URL": _database_url(),
           "DATARUN_STORAGE_DIR": str(settings.DATARUN_STORAGE_DIR)}
    made = manage("backup", str(archive), env=env)
    assert made.returncode == 0, made.stderr
    assert "backed up the postgresql database and" in made.stdout

    restored_storage = tmp_path / "restored-storage"
    target = {"DATABASE_URL": scratch_database, "DATARUN_STORAGE_DIR": str(restored_storage)}
    refused = manage("restore", str(archive), env=target)
    assert refused.returncode != 0 and "run again with --yes" in refused.stderr
    done = manage("restore", str(archive), "--yes", env=target)
    assert done.returncode == 0, done.stderr
    assert psql(scratch_database, "SELECT title FROM databoard_event WHERE name = "
                                  "'iris-backup'") == "Iris, backed up"
    assert psql(scratch_database, "SELECT folds_hash FROM datarun_problem WHERE name = "
                                  "'iris-backup'") == problem.folds_hash
    relative = storage.blob_path(blob).relative_to(settings.DATARUN_STORAGE_DIR)
    assert (restored_storage / relative).read_bytes() == b"a submitted file\n"
    prepared = restored_storage / problem.storage_dir / "trusted" / "y_test.pkl"
    assert prepared.read_bytes() == \
        (settings.DATARUN_STORAGE_DIR / problem.storage_dir / "trusted" / "y_test.pkl").read_bytes()


def test_restoring_something_else_says_so(tmp_path, scratch_database):
    bogus = tmp_path / "notes.tar"
    bogus.write_text("not a tar")
    result = manage("restore", str(bogus), "--yes", env={"DATABASE_URL": scratch_database})
    assert result.returncode != 0
    assert "is not a backup made by manage.py backup" in result.stderr
