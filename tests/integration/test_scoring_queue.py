"""Scoring never waits for a fold slot: a submission whose last fold is
recorded is scored at once, while every fold slot is busy with another
submission's folds (the scorer has processes of its own)."""
import time
from datetime import timedelta

import pytest

from databoard.models import Submission
from datarun.models import Evaluation, FoldRun
from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()
SLOW = """
import time
from sklearn.linear_model import LogisticRegression


class Slow(LogisticRegression):
    def fit(self, X, y):
        time.sleep(30)
        return super().fit(X, y)


def get_estimator():
    return Slow()
"""
SLOTS = 2  # the session's fold worker


def test_a_finished_submission_is_scored_while_every_fold_slot_is_busy(
        celery_worker_process):
    client = signed_up(EXAMPLES / "iris", "iris", min_submission_interval_s=0)
    fast = submit(client, "iris", "fast", {"estimator.py": STARTING_KIT})
    # Queued behind the fast one's folds: they take each slot it frees.
    slow = submit(client, "iris", "slow", {"estimator.py": SLOW})
    detail = wait_final(client, fast["id"], timeout=120)
    assert detail["state"] == "scored", detail["error"]

    evaluation = Evaluation.objects.get(id=Submission.objects.get(id=fast["id"]).evaluation_id)
    last_fold = max(f.finished_at for f in evaluation.fold_runs.all())
    # Scored a moment after its last fold (a loaded machine's moment)...
    assert (evaluation.finished_at - last_fold).total_seconds() < 5
    # ...while the slow submission's 30 s folds took both slots as the fast
    # one's freed them: none of them had finished, nor could have.
    slow_folds = FoldRun.objects.filter(
        evaluation_id=Submission.objects.get(id=slow["id"]).evaluation_id)
    deadline = time.monotonic() + 10
    while slow_folds.filter(started_at__isnull=False).count() < SLOTS:
        assert time.monotonic() < deadline, "the slow folds did not take the slots"
        time.sleep(0.1)
    assert slow_folds.filter(
        started_at__lte=evaluation.finished_at + timedelta(seconds=5)).count() == SLOTS
    assert not slow_folds.filter(finished_at__isnull=False).exists()
