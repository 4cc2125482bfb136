"""Re-scoring on a newer problem version, on a real worker: the same files run
again on the other problem, and the drift is the difference of the scores
both evaluations show."""
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery import app as celery_app
from databoard.models import AuditEntry, Event, Submission
from databoard.services.submissions import submissions_rescore
from datarun import selectors, services
from datarun.errors import InvalidSubmission, PermissionDenied
from datarun.models import Dataset, DatasetVersion, Evaluation, Problem
from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()


def iris_copies(tmp_path: Path) -> tuple[Path, Path]:
    """The iris kit, and a copy whose data changed a little (as a newer
    dataset version would): a fifth of the test labels rotated to another class."""
    v1 = shutil.copytree(EXAMPLES / "iris", tmp_path / "iris-v1")
    v2 = shutil.copytree(EXAMPLES / "iris", tmp_path / "iris-v2")
    test = pd.read_csv(v2 / "data" / "test.csv")
    labels = ["setosa", "versicolor", "virginica"]
    rows = test.index[::5]
    test.loc[rows, "species"] = [labels[(labels.index(s) + 1) % 3]
                                 for s in test.loc[rows, "species"]]
    test.to_csv(v2 / "data" / "test.csv", index=False)
    return v1, v2


def wait_evaluation(evaluation_id: int, timeout: float = 120) -> Evaluation:
    deadline = time.monotonic() + timeout
    while True:
        evaluation = Evaluation.objects.get(id=evaluation_id)
        if evaluation.state in ("scored", "error", "cancelled"):
            return evaluation
        assert time.monotonic() < deadline, f"evaluation still {evaluation.state}"
        time.sleep(0.1)


def staff_client() -> APIClient:
    user = get_user_model().objects.create_user("staff", password="pw-staff-1234",
                                                is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_rescore_on_a_newer_problem_shows_each_scores_drift(celery_worker_process, tmp_path):
    v1_kit, v2_kit = iris_copies(tmp_path)
    v1 = services.problem_import_ramp_kit(path=v1_kit, name="iris-v1")
    v2 = services.problem_import_ramp_kit(path=v2_kit, name="iris-v2")
    assert v2.data_hash != v1.data_hash
    original = services.evaluation_create(problem=v1, files={"estimator.py": STARTING_KIT})
    assert wait_evaluation(original.id).state == "scored"

    client = staff_client()
    response = client.post(f"/api/v1/evaluations/{original.id}/rescore/",
                           {"problem": "iris-v2"}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["rescore_of"] == original.id
    assert response.json()["problem"] == "iris-v2"
    rescore = wait_evaluation(response.json()["id"])
    assert rescore.state == "scored", rescore.error_message
    assert rescore.files == original.files  # the same code, byte for byte
    # The original stays as it was, on its own problem.
    assert Evaluation.objects.get(id=original.id).problem == v1

    drift = client.get(f"/api/v1/evaluations/{original.id}/drift/").json()["drift"]
    old = selectors.evaluation_detail(original.id)["scores"]
    new = selectors.evaluation_detail(rescore.id)["scores"]
    assert {(r["score_type"], r["step"]) for r in drift} == {
        (name, step) for name, steps in old.items() for step in steps}
    for row in drift:
        assert row["rescore_id"] == rescore.id and row["problem"] == "iris-v2"
        before, after = old[row["score_type"]][row["step"]], new[row["score_type"]][row["step"]]
        assert row["old"]["mean"] == before["mean"] and row["new"]["mean"] == after["mean"]
        assert row["drift"]["mean"] == pytest.approx(after["mean"] - before["mean"])
        if row["step"] != "train":
            assert row["drift"]["bagged"] == pytest.approx(after["bagged"] - before["bagged"])
    # Training data did not change, so neither did the training scores; the
    # rotated test labels cost accuracy.
    by_key = {(r["score_type"], r["step"]): r for r in drift}
    assert by_key[("acc", "train")]["drift"]["mean"] == pytest.approx(0, abs=1e-12)
    assert by_key[("acc", "test")]["drift"]["bagged"] < -0.1
    assert by_key[("error", "test")]["drift"]["bagged"] > 0.1
    assert drift[0]["score_type"] == "acc"  # official score first


def test_rescore_refusals_and_permissions(celery_worker_process, tmp_path):
    v1_kit, _ = iris_copies(tmp_path)
    v1 = services.problem_import_ramp_kit(path=v1_kit, name="iris-v1")
    original = services.evaluation_create(problem=v1, files={"estimator.py": STARTING_KIT})

    with pytest.raises(InvalidSubmission, match="already ran on iris-v1"):
        services.evaluation_rescore(evaluation_id=original.id, problem=v1)

    participant = APIClient()
    participant.force_authenticate(get_user_model().objects.create_user("bob", password="x"))
    assert participant.post(f"/api/v1/evaluations/{original.id}/rescore/",
                            {"problem": "iris-v1"}, format="json").status_code == 403
    assert participant.get(f"/api/v1/evaluations/{original.id}/drift/").status_code == 403

    client = staff_client()
    response = client.post(f"/api/v1/evaluations/{original.id}/rescore/",
                           {"problem": "nope"}, format="json")
    assert response.status_code == 404
    assert "no problem named 'nope'" in response.json()["error"]["message"]
    assert client.get("/api/v1/evaluations/999999/drift/").status_code == 404
    assert not Evaluation.objects.filter(rescore_of=original).exists()
    wait_evaluation(original.id)


def test_event_admin_rescores_chosen_submissions(celery_worker_process, tmp_path):
    v1_kit, v2_kit = iris_copies(tmp_path)
    client = signed_up(v1_kit, "iris-v1")
    services.problem_import_ramp_kit(path=v2_kit, name="iris-v2")
    first = submit(client, "iris-v1", "first", {"estimator.py": STARTING_KIT})
    assert wait_final(client, first["id"])["state"] == "scored"

    event = Event.objects.get(name="iris-v1")
    stranger = get_user_model().objects.create_user("mallory", password="x")
    with pytest.raises(PermissionDenied):
        submissions_rescore(event=event, user=stranger, submission_ids=[first["id"]],
                            problem_name="iris-v2")

    admin = get_user_model().objects.create_user("organiser", password="x")
    event.admins.add(admin)
    rescored = submissions_rescore(event=event, user=admin, submission_ids=[first["id"]],
                                   problem_name="iris-v2")
    rescore = wait_evaluation(rescored[first["id"]])
    assert rescore.state == "scored"
    submission = Submission.objects.get(id=first["id"])
    assert rescore.rescore_of_id == submission.evaluation_id
    assert rescore.problem.name == "iris-v2"
    # The submission keeps its own evaluation on the event's problem.
    assert Evaluation.objects.get(id=submission.evaluation_id).problem.name == "iris-v1"
    assert [r["rescore_id"] for r in services.score_drift(
        evaluation_id=submission.evaluation_id)][:1] == [rescore.id]
    assert AuditEntry.objects.filter(event=event, action="submissions_rescore").exists()


def test_refreshed_dataset_rebuilt_problem_rescore_and_drift(celery_worker_process, tmp_path):
    """The whole story: a spec'd dataset, a problem on v1, the source changes,
    the refresh makes v2, the organiser rebuilds the problem on v2 and
    re-scores the submission there; the drift is what the two scores say."""
    from datarun.services.declarative import problem_create_declarative
    from tests.datarun.test_dataset_apply import iris_rows

    rows = iris_rows()
    data = tmp_path / "iris.csv"
    data.write_text("\n".join(rows) + "\n")
    spec = tmp_path / "iris.yaml"
    spec.write_text("name: iris-live\nsources:\n  - {name: iris, path: iris.csv}\n"
                    "refresh: {every: 1d}\n")
    services.dataset_apply(spec=spec)

    def problem(name: str, dataset: str):
        return problem_create_declarative(spec={
            "name": name, "dataset": dataset, "target": "species", "ignore": ["part"],
            "task": "multiclass", "workflow": "estimator",
            "score_types": [{"type": "accuracy", "name": "acc"}, "nll"],
            "split": {"test": {"method": "given", "column": "part"},
                      "cv": {"method": "stratified_shuffle", "n_splits": 3, "seed": 57}},
        })

    v1 = problem("iris-live-1", "iris-live@1")
    original = services.evaluation_create(problem=v1, files={"estimator.py": STARTING_KIT})
    assert wait_evaluation(original.id).state == "scored"

    # A fifth of the test rows get another label at the source.
    labels = ["setosa", "versicolor", "virginica"]
    changed = [r.rsplit(",", 2) for r in rows]
    for i, (_features, label, part) in enumerate(changed):
        if part == "test" and i % 5 == 0:
            changed[i][1] = labels[(labels.index(label) + 1) % 3]
    data.write_text("\n".join(",".join(r) for r in changed) + "\n")
    # A day later (moved back in the database), beat's task runs on the worker.
    Dataset.objects.filter(name="iris-live").update(
        last_checked_at=timezone.now() - timedelta(days=1))
    celery_app.send_task("datarun.tasks.refresh_datasets")
    deadline = time.monotonic() + 60
    while not DatasetVersion.objects.filter(dataset__name="iris-live", number=2).exists():
        assert time.monotonic() < deadline, "the refresh task made no new version"
        time.sleep(0.2)
    assert Problem.objects.get(name="iris-live-1").dataset_version.number == 1  # pinned

    v2 = problem("iris-live-2", "iris-live@2")
    rescore = services.evaluation_rescore(evaluation_id=original.id, problem=v2)
    assert wait_evaluation(rescore.id).state == "scored"
    drift = {(r["score_type"], r["step"]): r for r in services.score_drift(
        evaluation_id=original.id)}
    old = selectors.evaluation_detail(original.id)["scores"]
    new = selectors.evaluation_detail(rescore.id)["scores"]
    for (score_type, step), row in drift.items():
        assert row["drift"]["mean"] == pytest.approx(
            new[score_type][step]["mean"] - old[score_type][step]["mean"])
    # Same training rows and folds: same training and validation scores.
    assert drift[("acc", "valid")]["drift"]["bagged"] == pytest.approx(0, abs=1e-12)
    assert drift[("acc", "test")]["drift"]["bagged"] < -0.1
    assert drift[("nll", "test")]["drift"]["bagged"] > 0
