"""The corpus's kits that declare their own environment (a requirements.txt),
other than ``pinned_environment`` (tests/conformance/test_environments.py
covers it with its controls): each is imported as an organiser would, its
environment is locked and built by a real worker and its data prepared in it,
and ``ramp-test --save-output`` run with the environment's interpreter, the
platform (API + real worker, local sandbox and Docker) and ``datarun test``
give the same per-fold and bagged scores, to 1e-9.

``el_nino``: an xarray Dataset read from netCDF (xarray is not on the
server), a burn-in period without targets, RAMP's ElNino time-series workflow
(a feature extractor checked for looking into the future, then a regressor)
and time-ordered CV blocks.

``images_png``: ramp-workflow's own SimplifiedImageClassifier, which reads
PNG files from the kit's ``data/imgs`` with scikit-image (in the
environment only), the images reaching the folds as the kit's folder.
"""
import json

import pytest
from django.conf import settings

from datarun import environments
from datarun.models import Evaluation, FoldRun, Problem
from tests.conformance.test_corpus import KITS_DIR, _kit, assert_scores_equal
from tests.conformance.test_environments import ramp_test_in, start_datarun_test, wait_prepared
from tests.integration.helpers import signed_up
from tests.integration.test_cli_test_parity import server_scores, starting_kit_files

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ENV_KITS = sorted(p.name for p in KITS_DIR.iterdir()
                  if (p / "requirements.txt").exists() and p.name != "pinned_environment")


def _declared(name: str) -> dict[str, str]:
    pins = {}
    for line in (KITS_DIR / name / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            package, version = line.split("==")
            pins[package.strip().lower()] = version.strip()
    return pins


def _environment(kit_dir, name):
    client = signed_up(kit_dir, name)
    environment = wait_prepared(Problem.objects.get(name=name))
    versions = {p["name"].lower(): p["version"] for p in environment.packages}
    for package, version in _declared(name).items():
        assert versions.get(package) == version, (package, versions.get(package), version)
    python = environments.venv_python(settings.DATARUN_ENVIRONMENTS_DIR, environment.lock_hash)
    assert python is not None
    return client, environment, python


@pytest.mark.parametrize("name", ENV_KITS)
def test_kit_in_its_environment_scores_as_ramp_test_on_the_server_and_in_datarun_test(
        celery_worker_process, tmp_path, name):
    kit_dir = _kit(name, tmp_path)
    client, environment, python = _environment(kit_dir, name)
    reference = ramp_test_in(python, kit_dir)
    local = start_datarun_test(kit_dir, env={
        "DATARUN_ENVIRONMENTS_DIR": str(settings.DATARUN_ENVIRONMENTS_DIR),
        "DATARUN_ENV_WHEELS_DIR": str(settings.DATARUN_ENV_WHEELS_DIR)})
    server = server_scores(client, name, starting_kit_files(kit_dir))
    printed, errors = local.communicate(timeout=600)
    assert local.returncode == 0, printed[-3000:] + errors[-3000:]
    local_report = json.loads(printed)
    assert local_report["state"] == "scored", local_report.get("error")
    assert local_report["environment"]["lock_hash"] == environment.lock_hash
    assert_scores_equal(name, reference.scores(), server, local_report)
    evaluation = Evaluation.objects.get(problem__name=name)
    assert evaluation.metadata["environment"]["lock_hash"] == environment.lock_hash


@pytest.mark.parametrize("name", ENV_KITS)
def test_kit_in_its_environment_scores_as_ramp_test_in_the_docker_sandbox(
        docker_worker, tmp_path, name):
    kit_dir = _kit(name, tmp_path)
    client, environment, python = _environment(kit_dir, name)
    reference = ramp_test_in(python, kit_dir)
    server = server_scores(client, name, starting_kit_files(kit_dir))
    assert_scores_equal(name, reference.scores(), server)
    folds = FoldRun.objects.filter(evaluation__problem__name=name)
    assert all(f.isolation.startswith("docker") for f in folds)
    assert all(f.runtime_image.startswith(f"datarun-env:{environment.lock_hash[:16]}-")
               for f in folds), [f.runtime_image for f in folds]
