"""Scores through the platform equal what `ramp-test` computes, to 1e-9."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from databoard.models import Event
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RAMP_TEST = str(Path(sys.executable).parent / "ramp-test")
CASES = [(kit, sub) for kit in ("iris", "breast_cancer", "diabetes")
         for sub in ("starting_kit", "random_forest")]


def ramp_test_scores(kit_dir: Path, submission: str):
    """Per-fold and bagged scores as ramp-test writes them with --save-output."""
    subprocess.run([RAMP_TEST, "--submission", submission, "--save-output"], cwd=kit_dir,
                   check=True, capture_output=True)
    out = kit_dir / "submissions" / submission / "training_output"
    folds = []
    k = 0
    while (out / f"fold_{k}" / "scores.csv").exists():
        folds.append(pd.read_csv(out / f"fold_{k}" / "scores.csv", index_col=0))
        k += 1
    bagged = pd.read_csv(out / "bagged_scores.csv", index_col=[0, 1])
    last = bagged.index.get_level_values("n_bag").max()
    return folds, bagged.xs(last, level="n_bag")


@pytest.mark.parametrize(("kit", "submission"), CASES)
def test_scores_equal_ramp_test(sandbox_worker, sandbox_kind, kit_copy, kit, submission):
    """Under either sandbox backend: identical to ramp-test, so to each other."""
    kit_dir = kit_copy(kit)
    client = signed_up(kit_dir, kit)
    code = (kit_dir / "submissions" / submission / "estimator.py").read_text()
    created = submit(client, kit, submission, {"estimator.py": code})
    detail = wait_final(client, created["id"])
    assert detail["state"] == "scored", detail["error"]

    ref_folds, ref_bagged = ramp_test_scores(kit_dir, submission)
    # Participants do not see test scores; the event admin does.
    admin = get_user_model().objects.create_superuser("root", password="pw-root-12345")
    Event.objects.get(name=kit).admins.add(admin)
    admin_client = APIClient()
    admin_client.force_authenticate(admin)
    detail = admin_client.get(f"/api/v1/submissions/{created['id']}/").json()

    assert len(detail["folds"]) == len(ref_folds)
    for fold in detail["folds"]:
        # What each fold's record shows: its resources, its isolation, its image.
        assert fold["wall_time"] > 0 and fold["cpu_time"] > 0
        assert fold["peak_memory"] > 10 * 2**20
        if sandbox_kind == "docker":
            assert fold["isolation"].startswith("docker (no network")
            assert fold["runtime_image"].startswith("datarun-runtime:")
            assert "@sha256:" in fold["runtime_image"]
        else:
            assert fold["isolation"].startswith(("bubblewrap", "process"))
            assert fold["runtime_image"] == ""
    for fold, ref in zip(detail["folds"], ref_folds, strict=True):
        for score_name in ref.columns.drop("time"):
            for step in ("train", "valid", "test"):
                assert fold["scores"][score_name][step] == pytest.approx(
                    ref.loc[step, score_name], abs=1e-9, rel=0
                ), (fold["fold"], score_name, step)
    for score_name in ref_bagged.columns:
        for step in ("valid", "test"):
            assert detail["scores"][score_name][step]["bagged"] == pytest.approx(
                ref_bagged.loc[step, score_name], abs=1e-9, rel=0
            ), (score_name, step)
        means = [f.loc["valid", score_name] for f in ref_folds]
        assert detail["scores"][score_name]["valid"]["mean"] == pytest.approx(
            sum(means) / len(means), abs=1e-9, rel=0
        )


@pytest.mark.parametrize("kit", ["iris", "breast_cancer", "diabetes"])
def test_failing_example_submission_errors(celery_worker_process, kit_copy, kit):
    kit_dir = kit_copy(kit)
    client = signed_up(kit_dir, kit)
    code = (kit_dir / "submissions" / "error_in_fit" / "estimator.py").read_text()
    detail = wait_final(client, submit(client, kit, "error_in_fit",
                                       {"estimator.py": code})["id"])
    assert detail["state"] == "error"
    assert detail["error_kind"] == "participant"
    assert "while training in fold" in detail["error"]
    assert 'File "estimator.py"' in detail["error_traceback"]
