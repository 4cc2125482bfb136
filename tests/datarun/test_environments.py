"""Problems' runtime environments: what an organiser sees when declaring
packages (resolved at once, refused with pip's reason), what participants
see while one builds, failed builds and pruning. The build and the folds in
a built environment: tests/conformance/test_environments.py."""
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from datarun import environments, services, storage
from datarun.errors import EnvironmentNotReady, InvalidEnvironment, InvalidKit
from datarun.models import Problem, RuntimeEnvironment
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

PINNED = Path(__file__).resolve().parents[1] / "conformance" / "kits" / "pinned_environment"
# Every version of python-dateutil that pandas 2.2.3 accepts is 2.8.2 or later.
CONFLICTING = "pandas==2.2.3\npython-dateutil==2.7.0\n"
UNKNOWN = "numpy\ndatarun-no-such-package-4f2a==1.0\n"


@pytest.fixture
def pinned_kit(tmp_path) -> Path:
    import subprocess
    import sys

    kit = tmp_path / "pinned"
    shutil.copytree(PINNED, kit)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit, check=True,
                   capture_output=True)
    return kit


@pytest.fixture
def staff() -> APIClient:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root", password="pw-root-12345")
    client = APIClient()
    client.force_authenticate(user)
    return client


def nothing_created(name: str) -> None:
    assert not Problem.objects.filter(name=name).exists()
    assert not RuntimeEnvironment.objects.exists()
    assert not (storage.root() / "problems" / name).exists()


@pytest.mark.parametrize("line, says", [
    ("--index-url https://example.org/simple", "is a pip option"),
    ("-r /etc/passwd", "is a pip option"),
    ("pandas @ https://example.org/pandas.whl", "URLs, paths and VCS links"),
    ("git+https://example.org/x.git", "URLs, paths and VCS links"),
    ("./local_package", "URLs, paths and VCS links"),
])
def test_requirement_lines_that_are_not_packages_are_refused(line, says):
    with pytest.raises(environments.EnvironmentError_, match=says):
        environments.parse_requirements(f"numpy\n{line}\n")


def test_a_kit_declares_its_packages_in_requirements_txt_and_environment_yml(tmp_path):
    (tmp_path / "requirements.txt").write_text("# the kit's packages\nnumpy==1.26.4\n")
    (tmp_path / "environment.yml").write_text(
        "name: kit\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - pandas==2.2.3\n")
    declared = environments.kit_requirements(tmp_path)
    assert environments.parse_requirements(declared) == ["numpy==1.26.4", "pandas==2.2.3"]
    assert environments.kit_requirements(tmp_path / "nothing") == ""


def test_an_unknown_package_is_refused_at_import_naming_it_and_nothing_is_created(pinned_kit):
    (pinned_kit / "requirements.txt").write_text(UNKNOWN)
    with pytest.raises(InvalidEnvironment) as refused:
        services.problem_import_ramp_kit(path=pinned_kit, name="unknown-pkg")
    assert "datarun-no-such-package-4f2a==1.0" in refused.value.message
    assert "No matching distribution" in refused.value.message
    nothing_created("unknown-pkg")


def test_conflicting_requirements_are_refused_with_pips_reason(pinned_kit):
    (pinned_kit / "requirements.txt").write_text(CONFLICTING)
    with pytest.raises(InvalidEnvironment) as refused:
        services.problem_import_ramp_kit(path=pinned_kit, name="conflict")
    message = refused.value.message
    assert "conflict" in message and "python-dateutil" in message and "pandas" in message
    nothing_created("conflict")


def test_a_declared_environment_is_locked_and_its_problem_waits_for_the_build(pinned_kit):
    problem = services.problem_import_ramp_kit(path=pinned_kit, name="pinned")
    environment = problem.environment
    assert environment.state == "queued"
    versions = {p["name"]: p["version"] for p in environment.packages}
    assert versions["pandas"] == "2.2.3" and "ramp-workflow" in versions
    assert all(len(p["sha256"]) == 64 for p in environment.packages)
    assert "pyarrow" not in versions and "django" not in versions
    # The same packages declared again: the same lock, the same environment.
    again = services.problem_import_ramp_kit(path=pinned_kit, name="pinned-again")
    assert again.environment_id == environment.id

    with pytest.raises(EnvironmentNotReady, match="environment is queued"):
        services.evaluation_create(problem=problem,
                                   files=services.problems.starting_kit_files(problem))


def test_an_organiser_declares_packages_over_the_api(staff, pinned_kit):
    (pinned_kit / "requirements.txt").unlink()
    services.problem_import_ramp_kit(path=pinned_kit, name="edited")
    shown = staff.get("/api/v1/problems/edited/environment/").json()
    assert shown["shared_runtime"] is True

    refused = staff.put("/api/v1/problems/edited/environment/",
                        {"requirements": CONFLICTING}, format="json")
    assert refused.status_code == 400
    assert "python-dateutil" in refused.json()["error"]["message"]
    assert Problem.objects.get(name="edited").environment is None

    declared = staff.put("/api/v1/problems/edited/environment/",
                         {"requirements": "pandas==2.2.3\nscikit-learn==1.5.2\n"}, format="json")
    assert declared.status_code == 202, declared.json()
    body = declared.json()
    assert body["state"] == "queued" and body["prepared"] is False
    assert {"name": "pandas", "version": "2.2.3"}.items() <= next(
        p for p in body["packages"] if p["name"] == "pandas").items()
    summary = staff.get("/api/v1/problems/edited/").json()
    assert summary["environment"]["lock_hash"] == body["lock_hash"]


def test_a_build_that_cannot_get_a_package_fails_naming_it_and_leaves_no_venv(settings_env):
    environment = RuntimeEnvironment.objects.create(
        lock_hash="f" * 64, requirements="six==1.17.0\n", python=environments.python_tag(),
        packages=[{"name": "six", "version": "1.17.0", "sha256": "0" * 64,
                   "filename": "six-1.17.0-py2.py3-none-any.whl"}])
    services.environment_build(environment_id=environment.id)
    environment.refresh_from_db()
    assert environment.state == "failed"
    assert "six==1.17.0" in environment.error
    assert not (settings.DATARUN_ENVIRONMENTS_DIR / environment.lock_hash).exists()


@pytest.fixture
def settings_env(settings, tmp_path):
    """No index, an empty wheel folder: nothing can be downloaded."""
    settings.DATARUN_ENV_INDEX_URL = "none"
    settings.DATARUN_ENV_FIND_LINKS = []
    settings.DATARUN_ENV_WHEELS_DIR = tmp_path / "wheels"
    settings.DATARUN_ENVIRONMENTS_DIR = tmp_path / "environments"
    return settings


def test_prune_removes_only_the_environments_no_problem_uses(settings_env, capsys):
    used = services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris")
    kept = RuntimeEnvironment.objects.create(lock_hash="a" * 64, requirements="x\n",
                                             packages=[], python="3.11.7")
    used.environment = kept
    used.save()
    unused = RuntimeEnvironment.objects.create(lock_hash="b" * 64, requirements="y\n",
                                               packages=[], python="3.11.7")
    folder = settings.DATARUN_ENVIRONMENTS_DIR / unused.lock_hash
    (folder / "bin").mkdir(parents=True)

    call_command("environment_prune", "--dry-run")
    assert RuntimeEnvironment.objects.count() == 2 and folder.exists()
    call_command("environment_prune")
    assert list(RuntimeEnvironment.objects.values_list("lock_hash", flat=True)) == ["a" * 64]
    assert not folder.exists()
    assert "removed " + "b" * 64 in capsys.readouterr().out


def test_going_back_to_the_shared_runtime_is_refused_once_prepared(staff, pinned_kit):
    services.problem_import_ramp_kit(path=pinned_kit, name="pinned")
    with pytest.raises(InvalidKit, match="shared runtime"):
        services.problem_environment_set(problem=Problem.objects.get(name="pinned"),
                                         requirements="")
