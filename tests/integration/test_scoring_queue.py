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


SLOW_SCORE = """

import time as _time


class _SlowAccuracy(rw.score_types.Accuracy):
    # Recording a fold scores it: this makes each report take over a second.
    def __call__(self, y_true, y_pred):
        _time.sleep(0.4)
        return super().__call__(y_true, y_pred)


score_types = [_SlowAccuracy(name='acc', precision=3)] + score_types[1:]
"""


def test_a_slot_runs_its_next_fold_while_the_platform_records_the_last_one(
        celery_worker_process, kit_copy):
    """A fold's report (checked, scored and recorded by the platform) goes out
    on the slot's reporter thread: the slot claims and runs its next fold
    meanwhile. With two slots, more than two folds are then claimed and not
    yet recorded at once; a slot waiting for each report would allow two."""
    kit = kit_copy("iris")
    (kit / "problem.py").write_text((kit / "problem.py").read_text() + SLOW_SCORE)
    client = signed_up(kit, "slow-scoring")
    sub = submit(client, "slow-scoring", "starting", {"estimator.py": STARTING_KIT})
    detail = wait_final(client, sub["id"], timeout=180)
    assert detail["state"] == "scored", detail["error"]

    folds = FoldRun.objects.filter(
        evaluation_id=Submission.objects.get(id=sub["id"]).evaluation_id)
    assert folds.count() == 5
    events = sorted([(f.started_at, 1) for f in folds] + [(f.finished_at, -1) for f in folds])
    in_flight, most = 0, 0
    for _, step in events:
        in_flight += step
        most = max(most, in_flight)
    assert most > SLOTS
