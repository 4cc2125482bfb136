"""Problems with their own runtime environment, end to end: a kit pinning
pandas 2.2 and scikit-learn 1.5 (the server has pandas 3 and scikit-learn
1.9), whose starting kit calls ``DataFrame.applymap`` (gone in pandas 3).

Imported like any kit, its requirements are resolved to a lock, a real
worker builds the venv in the background and prepares the kit's data with
the kit's own code in it; the folds run in that venv, and the scores equal
``ramp-test --save-output`` run with the same venv, to 1e-9.
"""
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from datarun import environments, ramp_kits, services
from datarun.models import Evaluation, FoldRun, Problem, RuntimeEnvironment
from datarun.services.declarative import problem_create_declarative
from tests.conformance.test_corpus import KITS_DIR, RampTest, _kit, assert_scores_equal
from tests.conftest import ROOT, superuser
from tests.datarun.test_declarative_service import PINNED, iris_dataset, iris_spec
from tests.integration.helpers import signed_up, submit, wait_final
from tests.integration.test_cli_test_parity import server_scores, starting_kit_files
from workers.sandbox.docker_backend import LABEL_WARM

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NAME = "pinned_environment"
SERVER_PACKAGES = {"django", "celery", "duckdb", "pyarrow", "psycopg", "gunicorn"}


def wait_prepared(problem: Problem, timeout: float = 900) -> RuntimeEnvironment:
    """The problem's environment once built and the kit's data prepared in it."""
    deadline = time.monotonic() + timeout
    while True:
        problem.refresh_from_db()
        environment = RuntimeEnvironment.objects.get(id=problem.environment_id)
        if problem.environment_prepared == environment.lock_hash:
            return environment
        assert environment.state != "failed", environment.error + "\n" + environment.log[-3000:]
        assert not environment.error, environment.error + "\n" + environment.log[-3000:]
        assert time.monotonic() < deadline, f"environment still {environment.state}"
        time.sleep(0.5)


def wait_refused(problem: Problem, timeout: float = 900) -> RuntimeEnvironment:
    """The problem's environment once its build or preparation has failed."""
    deadline = time.monotonic() + timeout
    while True:
        environment = RuntimeEnvironment.objects.get(id=problem.environment_id)
        if environment.error or environment.state == "failed":
            return environment
        assert time.monotonic() < deadline, f"environment still {environment.state}"
        time.sleep(0.5)


def submit_starting_kit(client, kit_dir: Path):
    """The API's answer to the starting kit submitted as is."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(f"/api/v1/events/{NAME}/submissions/", {
        "name": "starting_kit", "files": [SimpleUploadedFile(n, c) for n, c in
                                          starting_kit_files(kit_dir).items()]},
        format="multipart")


def start_datarun_test(kit_dir: Path, env: dict, *options: str) -> subprocess.Popen:
    """``datarun test`` of this checkout (the installed ``datarun`` may be another's)."""
    return subprocess.Popen([sys.executable, "-m", "datarun", "test", str(kit_dir),
                             "--submission", "starting_kit", "--json", *options],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env,
                                            "DJANGO_SETTINGS_MODULE": "no_such_settings_module"},
                            stdin=subprocess.DEVNULL)


def ramp_test_in(venv_python: Path, kit_dir: Path) -> RampTest:
    """``ramp-test --save-output`` with the environment's own interpreter."""
    copy = kit_dir.with_name(kit_dir.name + "-ramp-test")
    shutil.copytree(kit_dir, copy)
    env = {"PATH": f"{venv_python.parent}:/usr/bin:/bin", "HOME": str(copy),
           "LANG": "C.UTF-8"}
    process = subprocess.Popen([str(venv_python.parent / "ramp-test"), "--submission",
                                "starting_kit", "--save-output"], cwd=copy, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    return RampTest(process, copy / "submissions" / "starting_kit" / "training_output")


def test_a_kit_pinning_older_libraries_runs_in_its_own_environment_and_scores_as_ramp_test(
        celery_worker_process, tmp_path):
    kit_dir = _kit(NAME, tmp_path)
    client = signed_up(kit_dir, NAME)
    problem = Problem.objects.get(name=NAME)
    assert problem.environment is not None

    environment = wait_prepared(problem)
    versions = {p["name"]: p["version"] for p in environment.packages}
    assert versions["pandas"] == "2.2.3" and versions["scikit-learn"] == "1.5.2"
    assert versions["ramp-workflow"] == "0.7.0"
    assert not SERVER_PACKAGES & set(versions), "the server's own packages leaked in"
    python = environments.venv_python(settings.DATARUN_ENVIRONMENTS_DIR, environment.lock_hash)
    assert python is not None and environment.size_bytes > 0

    reference = ramp_test_in(python, kit_dir)
    # datarun test on the participant's side: the same lock, hence the same
    # venv (reused here: this machine built it already).
    local = start_datarun_test(kit_dir, env={
        "DATARUN_ENVIRONMENTS_DIR": str(settings.DATARUN_ENVIRONMENTS_DIR),
        "DATARUN_ENV_WHEELS_DIR": str(settings.DATARUN_ENV_WHEELS_DIR)})
    server = server_scores(client, NAME, starting_kit_files(kit_dir))
    printed, errors = local.communicate(timeout=600)
    assert local.returncode == 0, printed[-3000:] + errors[-3000:]
    local_report = json.loads(printed)
    assert local_report["environment"]["lock_hash"] == environment.lock_hash
    assert_scores_equal(NAME, reference.scores(), server, local_report)

    evaluation = Evaluation.objects.get(problem=problem)
    assert evaluation.metadata["environment"]["lock_hash"] == environment.lock_hash
    assert evaluation.metadata["environment"]["packages"]["pandas"] == "2.2.3"
    for fold in FoldRun.objects.filter(evaluation=evaluation):
        assert "pandas 2.2.3, scikit-learn 1.5.2" in fold.stdout

    # A reproduction runs in the environment its original recorded.
    again = services.evaluation_reproduce(evaluation_id=evaluation.id)
    deadline = time.monotonic() + 300
    while again.state not in ("scored", "error") and time.monotonic() < deadline:
        time.sleep(0.5)
        again.refresh_from_db()
    assert again.state == "scored", again.error_message
    assert again.metadata["environment"]["lock_hash"] == environment.lock_hash
    assert all("pandas 2.2.3" in f.stdout for f in again.fold_runs.all())

    # The event page lists the packages at their versions.
    page = client.get(f"/events/{NAME}/")
    assert page.status_code == 200
    assert "<td>pandas</td><td><code>2.2.3</code></td>" in page.content.decode()


def test_in_the_docker_sandbox_the_folds_run_in_the_environments_image(docker_worker, tmp_path):
    """The Docker backend runs such a fold in the environment's image: the
    runtime image with the lock installed in /opt/env, built once by the
    worker from the wheels the host downloaded (no network in the build),
    in warm containers of that image: the next one waits once the folds are
    done."""
    kit_dir = _kit(NAME, tmp_path)
    client = signed_up(kit_dir, NAME)
    environment = wait_prepared(Problem.objects.get(name=NAME))
    python = environments.venv_python(settings.DATARUN_ENVIRONMENTS_DIR, environment.lock_hash)
    reference = ramp_test_in(python, kit_dir)

    server = server_scores(client, NAME, starting_kit_files(kit_dir))
    assert_scores_equal(NAME, reference.scores(), server)
    folds = FoldRun.objects.filter(evaluation__problem__name=NAME)
    assert all(f.isolation.startswith("docker") for f in folds)
    assert all(f.runtime_image.startswith(f"datarun-env:{environment.lock_hash[:16]}-")
               for f in folds), [f.runtime_image for f in folds]
    assert all("pandas 2.2.3, scikit-learn 1.5.2" in f.stdout for f in folds)
    waiting = subprocess.run(["docker", "ps", "--filter", f"label={LABEL_WARM}", "--format",
                              "{{.Image}}"], capture_output=True, text=True, check=True)
    assert any(image.startswith(f"datarun-env:{environment.lock_hash[:16]}-")
               for image in waiting.stdout.split()), waiting.stdout


def test_the_same_submission_fails_on_the_shared_runtime(celery_worker_process, tmp_path):
    """The control: without its environment (the kit's requirements left
    out), the starting kit's pandas 2 call fails on the server's pandas 3."""
    kit_dir = _kit(NAME, tmp_path)
    (kit_dir / "requirements.txt").unlink()
    client = signed_up(kit_dir, NAME)
    assert Problem.objects.get(name=NAME).environment is None
    created = submit(client, NAME, "starting_kit", starting_kit_files(kit_dir))
    final = wait_final(client, created["id"])
    assert final["state"] == "error"
    assert "applymap" in final["error"], final["error"]


def test_datarun_test_builds_the_environment_of_a_downloaded_starting_kit(
        celery_worker_process, tmp_path):
    """A participant's machine: the downloaded starting kit holds the lock;
    ``datarun test`` builds its venv (none there yet, the wheels cached) and
    runs in it; ``--shared-runtime`` runs with this machine's packages."""
    kit_dir = _kit(NAME, tmp_path)
    client = signed_up(kit_dir, NAME)
    environment = wait_prepared(Problem.objects.get(name=NAME))
    download = tmp_path / "download"
    archive = client.get(f"/api/v1/events/{NAME}/starting-kit.zip").content
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        z.extractall(download)
    downloaded = download / NAME
    lock = (downloaded / "requirements-lock.txt").read_text()
    assert environments.read_lock(lock).hash == environment.lock_hash

    participant_envs = tmp_path / "participant-environments"
    env = {"DATARUN_ENVIRONMENTS_DIR": str(participant_envs),
           "DATARUN_ENV_WHEELS_DIR": str(settings.DATARUN_ENV_WHEELS_DIR)}
    printed, errors = start_datarun_test(downloaded, env=env).communicate(timeout=900)
    report = json.loads(printed)
    assert report["state"] == "scored", (report.get("error"), errors[-3000:])
    assert report["environment"]["packages"]["pandas"] == "2.2.3"
    assert (participant_envs / environment.lock_hash / environments.READY_MARKER).is_file()

    shared, _ = start_datarun_test(downloaded, env, "--shared-runtime").communicate(timeout=600)
    assert json.loads(shared)["state"] == "error"
    assert "applymap" in json.loads(shared)["error"]["message"]


def test_the_kit_in_the_corpus_declares_versions_other_than_the_servers():
    import pandas
    import sklearn

    declared = (KITS_DIR / NAME / "requirements.txt").read_text()
    assert f"pandas=={pandas.__version__}" not in declared
    assert f"scikit-learn=={sklearn.__version__}" not in declared
    assert os.path.isfile(KITS_DIR / NAME / "prepare_data.py")


def test_a_kit_whose_data_loads_only_on_pandas_2_is_imported_in_its_environment(
        celery_worker_process, tmp_path):
    """The import's checks run in the problem's environment: this kit's
    ``get_train_data`` calls ``DataFrame.applymap`` (gone in pandas 3, the
    server's), so the server could not load its data; imported, its data
    is loaded and checked in its environment (pandas 2.2), the participants'
    public data carved there, and its folds score as ``ramp-test`` there."""
    kit_dir = _kit(NAME, tmp_path)
    problem_py = kit_dir / "problem.py"
    problem_py.write_text(problem_py.read_text().replace(
        "    data = pd.read_csv(os.path.join(path, 'data', f_name))\n",
        "    data = pd.read_csv(os.path.join(path, 'data', f_name))\n"
        "    data[['city']] = data[['city']].applymap(str.strip)  # pandas < 3\n"))
    with pytest.raises(AttributeError, match="applymap"):
        ramp_kits.import_problem(kit_dir).get_train_data(str(kit_dir))

    client = signed_up(kit_dir, NAME)
    problem = Problem.objects.get(name=NAME)
    environment = wait_prepared(problem)
    problem.refresh_from_db()
    assert (problem.n_train, problem.n_test, problem.n_folds) == (200, 80, 3)
    assert problem.prediction_shape == [2]
    assert "data prepared in the environment" in environment.log

    archive = client.get(f"/api/v1/events/{NAME}/starting-kit.zip")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        split = json.loads(z.read(f"{NAME}/public_split.json"))
        names = set(z.namelist())
    assert split["source"] == "carved" and split["n_folds"] == 3, split
    assert {f"{NAME}/data/train.csv", f"{NAME}/data/test.csv"} <= names

    python = environments.venv_python(settings.DATARUN_ENVIRONMENTS_DIR, environment.lock_hash)
    reference = ramp_test_in(python, kit_dir)
    server = server_scores(client, NAME, starting_kit_files(kit_dir))
    assert_scores_equal(NAME, reference.scores(), server)


def phone_home_wheel(folder: Path) -> Path:
    """A package whose import opens a connection (built here, as pip
    builds a pure-Python wheel)."""
    name, version = "datarun_phone_home", "1.0"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "import socket\n\n"
                               "socket.create_connection(('192.0.2.1', 80), timeout=2)\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: datarun-phone-home\n"
                            f"Version: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: datarun-tests\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256="
        f"{base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()}"
        f",{len(text.encode())}\n" for path, text in files.items()) + f"{dist}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in {**files, f"{dist}/RECORD": record}.items():
            z.writestr(path, text)
    return wheel


def test_a_package_that_needs_the_network_at_import_is_named_and_the_problem_not_opened(
        celery_worker_process, tmp_path, settings):
    """A kit whose starting kit imports a package that connects at import:
    the environment builds, but importing the starting kit there (network
    cut) fails, and the organiser reads which module tried the network; the
    problem takes no submission."""
    wheels = tmp_path / "local-wheels"
    wheel = phone_home_wheel(wheels)
    settings.DATARUN_ENV_FIND_LINKS = [str(wheels)]
    # The worker's build finds the locked file in the wheel folder.
    settings.DATARUN_ENV_WHEELS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(wheel, settings.DATARUN_ENV_WHEELS_DIR / wheel.name)

    kit_dir = _kit(NAME, tmp_path)
    with open(kit_dir / "requirements.txt", "a") as f:
        f.write("datarun-phone-home==1.0\n")
    estimator = kit_dir / "submissions" / "starting_kit" / "estimator.py"
    estimator.write_text("import datarun_phone_home  # noqa: F401\n" + estimator.read_text())
    client = signed_up(kit_dir, NAME)
    problem = Problem.objects.get(name=NAME)

    environment = wait_refused(problem)
    assert environment.state == "ready", environment.error  # the packages installed
    assert "importing submissions/starting_kit/estimator.py tried to use the network" \
        in environment.error, environment.error
    assert "module datarun_phone_home called socket." in environment.error

    admin = APIClient()
    admin.force_authenticate(superuser())
    shown = admin.get(f"/api/v1/problems/{NAME}/environment/").json()
    assert shown["prepared"] is False
    assert "datarun_phone_home" in shown["error"]
    problem.refresh_from_db()
    assert problem.environment_prepared == "" and problem.n_train == 0

    refused = submit_starting_kit(client, kit_dir)
    assert refused.status_code >= 400
    assert "datarun_phone_home" in json.dumps(refused.json())


def test_a_declarative_problem_s_packages_are_its_environment(celery_worker_process):
    """``environment: {packages: [...]}`` in a declarative spec: locked and
    built as a kit's requirements (here the same lock as the pinned kit's,
    so the same venv), the kit's data prepared in it and the starting kit
    run there."""
    problem = problem_create_declarative(spec=iris_spec(iris_dataset(), environment={
        "packages": PINNED}))
    environment = wait_prepared(problem)
    assert {p["name"]: p["version"] for p in environment.packages}["pandas"] == "2.2.3"
    problem.refresh_from_db()
    assert (problem.n_train, problem.n_test, problem.n_folds) == (120, 30, 3)
    evaluation = services.starting_kit_evaluate(problem=problem)
    deadline = time.monotonic() + 300
    while evaluation.state not in ("scored", "error") and time.monotonic() < deadline:
        time.sleep(0.5)
        evaluation.refresh_from_db()
    assert evaluation.state == "scored", evaluation.error_message
    assert evaluation.metadata["environment"]["packages"]["pandas"] == "2.2.3"


def test_an_environment_whose_ramp_workflow_cannot_run_is_refused_naming_the_versions(
        celery_worker_process, tmp_path):
    """A kit pinning ramp-workflow 0.2.1 (which imports a function that
    scikit-learn 1.5 no longer has) beside its other pins: the environment
    builds, but the fold harness could not run a fold in it. The organiser
    reads that, with the versions, before any submission, and the problem
    takes none."""
    kit_dir = _kit(NAME, tmp_path)
    requirements = kit_dir / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("ramp-workflow==0.7.0",
                                                              "ramp-workflow==0.2.1"))
    client = signed_up(kit_dir, NAME)
    problem = Problem.objects.get(name=NAME)
    environment = wait_refused(problem)
    assert environment.state == "ready", environment.error  # pip installed it
    assert "importing ramp-workflow failed: ImportError" in environment.error, environment.error
    assert "ramp-workflow 0.2.1" in environment.error
    assert "scikit-learn 1.5.2" in environment.error
    problem.refresh_from_db()
    assert problem.environment_prepared == "" and problem.n_train == 0

    refused = submit_starting_kit(client, kit_dir)
    assert refused.status_code == 409, refused.content
    assert "ramp-workflow" in json.dumps(refused.json())
