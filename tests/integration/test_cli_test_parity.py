"""``datarun test`` prints the same per-fold and bagged scores as the server
for every example problem the platform ships, and for the RAMP kit a
declarative problem exports.

The installed command runs in a subprocess with no server and Django settings
that cannot be imported; the server side is a real worker scoring the same
files submitted through the API. Scores must be equal, not merely close: both
sides run the same harness on the same prepared data and score with the same
functions in the same order.
"""
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from databoard.models import Event
from datarun.services.declarative import problem_export_kit
from tests.conftest import EXAMPLES
from tests.integration.helpers import participant, signed_up, submit, wait_final
from tests.integration.test_declarative_parity import declarative_twin

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DATARUN = str(Path(sys.executable).parent / "datarun")
# What `manage.py load_examples` imports: every kit under datarun/examples.
SHIPPED_KITS = sorted(p.name for p in EXAMPLES.iterdir() if (p / "problem.py").exists())


def datarun_test(kit_dir: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "no_such_settings_module"}
    result = subprocess.run([DATARUN, "test", str(kit_dir), "--submission", "starting_kit",
                             *options], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def server_scores(client: APIClient, event: str, files: dict[str, bytes]) -> dict:
    """The submission's scores as the event's admin sees them (test scores included)."""
    created = submit(client, event, "starting_kit", files)
    assert wait_final(client, created["id"])["state"] == "scored"
    admin = get_user_model().objects.create_superuser("root", password="pw-root-12345")
    Event.objects.get(name=event).admins.add(admin)
    admin_client = APIClient()
    admin_client.force_authenticate(admin)
    return admin_client.get(f"/api/v1/submissions/{created['id']}/").json()


def starting_kit_files(kit_dir: Path) -> dict[str, bytes]:
    folder = kit_dir / "submissions" / "starting_kit"
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def assert_same_scores(local: dict, server: dict) -> None:
    assert local["state"] == "scored", local["error"]
    names = [st["name"] for st in local["score_types"]]
    assert set(names) == set(server["scores"])
    assert len(local["folds"]) == len(server["folds"]) == server["n_folds"]
    for ours, theirs in zip(local["folds"], server["folds"], strict=True):
        assert ours["fold"] == theirs["fold"]
        for name in names:
            for step in ("train", "valid", "test"):
                assert ours["scores"][step][name] == theirs["scores"][name][step], (
                    ours["fold"], name, step)
    for name in names:
        for step in ("train", "valid", "test"):
            for stat in ("mean", "std", "bagged"):
                assert local["scores"][name][step][stat] == server["scores"][name][step][stat], (
                    name, step, stat)
        assert local["scores"][name]["train"]["bagged"] is None


def assert_table_shows_bagged_valid(stdout: str, local: dict) -> None:
    """The human output's bagged valid row, at each score's precision."""
    bagged_table = stdout.split("Bagged scores", 1)[1]
    valid_row = next(line for line in bagged_table.splitlines() if " valid " in line)
    cells = [cell.strip() for cell in valid_row.strip("│ ").split("│")]
    expected = [f"{local['scores'][st['name']]['valid']['bagged']:.{st['precision']}f}"
                for st in local["score_types"]]
    assert cells == ["valid", *expected]


@pytest.mark.parametrize("kit", SHIPPED_KITS)
def test_datarun_test_prints_the_servers_scores(celery_worker_process, kit_copy, kit):
    kit_dir = kit_copy(kit)
    server = server_scores(signed_up(kit_dir, kit), kit, starting_kit_files(kit_dir))

    local = json.loads(datarun_test(kit_dir, "--json").stdout)
    assert_same_scores(local, server)
    assert_table_shows_bagged_valid(datarun_test(kit_dir).stdout, local)


def test_datarun_test_on_a_declarative_problems_kit_prints_the_servers_scores(
        celery_worker_process, tmp_path):
    problem = declarative_twin("iris")
    with zipfile.ZipFile(io.BytesIO(problem_export_kit(problem=problem))) as archive:
        archive.extractall(tmp_path)
    kit_dir = tmp_path / problem.name
    Event.objects.create(name=problem.name, title=problem.title, problem_name=problem.name)
    client = participant()
    client.post(f"/api/v1/events/{problem.name}/signup/")
    server = server_scores(client, problem.name, starting_kit_files(kit_dir))

    local = json.loads(datarun_test(kit_dir, "--json").stdout)
    assert local["problem"] == problem.title
    assert_same_scores(local, server)
    assert_table_shows_bagged_valid(datarun_test(kit_dir).stdout, local)
