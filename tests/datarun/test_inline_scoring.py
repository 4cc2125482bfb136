"""A submission is scored by whoever records its last fold when scoring is
cheap, with no hop through the broker to the scorer; a costly one, or one
whose scoring fails there, goes to the scorer's queue. Real Redis; no worker
consumes the queues meanwhile, so a message sent is seen waiting."""
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from datarun import scoring, services, storage
from datarun.broker import waiting_first_args
from datarun.contract import FoldOutcome
from datarun.models import Evaluation, EvaluationScore
from datarun.ramp_kits import load_trusted
from datarun.services.evaluations import SCORE_TASK
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

ESTIMATOR = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()
RUNNER = {"host": "test", "sandbox": "local"}


@pytest.fixture
def problem():
    return services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-inline")


def run_all_folds(problem, commits, *, report_hooks: bool = True) -> int:
    """Claim and record every fold of a new evaluation, each report's commit
    hooks run as they would in the web process (``report_hooks=False``: as
    if that process died right after each commit); the evaluation's id."""
    with commits(execute=True):
        evaluation = services.evaluation_create(problem=problem,
                                                files={"estimator.py": ESTIMATOR})
    trusted = load_trusted(str(storage.resolve(problem.storage_dir)), problem.data_hash)
    y_train = trusted.problem.Predictions(y_true=trusted.y_train).y_pred
    y_test = trusted.problem.Predictions(y_true=trusted.y_test).y_pred
    for fold_run in evaluation.fold_runs.order_by("fold_index"):
        ticket = services.fold_run_claim(fold_run_id=fold_run.id, environment=RUNNER)
        with commits(execute=report_hooks):
            assert services.fold_run_finish(spec=ticket, outcome=FoldOutcome(
                wall_time=0.1, cpu_time=0.1, peak_memory=1, y_pred_train=y_train,
                y_pred_test=y_test))
    return evaluation.id


def scoring_waiting() -> set:
    return waiting_first_args(queue="scoring", task=SCORE_TASK)


def test_a_cheaply_scored_submission_is_scored_with_its_last_fold(
        problem, no_worker, django_capture_on_commit_callbacks):
    evaluation_id = run_all_folds(problem, django_capture_on_commit_callbacks)

    detail = Evaluation.objects.get(id=evaluation_id)
    assert detail.state == "scored"
    scores = EvaluationScore.objects.filter(evaluation_id=evaluation_id)
    # Every score type and step, with bagged scores (perfect predictions).
    assert scores.count() == 3 * len(scoring.STEPS)
    assert all(s.bagged is not None for s in scores.exclude(step="train"))
    assert scores.get(score_type__name="acc", step="test").bagged == 1.0
    # No message for the scorer: nothing waits in its queue.
    assert scoring_waiting() == set()
    assert no_worker.llen("scoring") == 0


def test_a_costly_scoring_goes_to_the_scorer(
        problem, no_worker, settings, django_capture_on_commit_callbacks):
    settings.DATARUN_INLINE_SCORING_MAX_S = 0  # every fold's scoring "too slow"
    evaluation_id = run_all_folds(problem, django_capture_on_commit_callbacks)

    assert Evaluation.objects.get(id=evaluation_id).state == "running"
    assert scoring_waiting() == {evaluation_id}
    services.evaluation_score(evaluation_id=evaluation_id)  # what the scorer's task does
    assert Evaluation.objects.get(id=evaluation_id).state == "scored"


def test_scoring_that_fails_with_the_last_fold_goes_to_the_scorer(
        problem, no_worker, monkeypatch, django_capture_on_commit_callbacks):
    real_mean_std = scoring.mean_std

    def database_restarting(values):
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(scoring, "mean_std", database_restarting)
    evaluation_id = run_all_folds(problem, django_capture_on_commit_callbacks)

    # The last fold's record stands; the scores are the scorer's to compute.
    detail = Evaluation.objects.get(id=evaluation_id)
    assert detail.state == "running"
    assert {f.state for f in detail.fold_runs.all()} == {"scored"}
    assert not EvaluationScore.objects.filter(evaluation_id=evaluation_id).exists()
    assert scoring_waiting() == {evaluation_id}
    monkeypatch.setattr(scoring, "mean_std", real_mean_std)
    services.evaluation_score(evaluation_id=evaluation_id)
    assert Evaluation.objects.get(id=evaluation_id).state == "scored"


def test_a_submission_whose_scoring_died_with_its_web_process_is_sent_to_the_scorer(
        problem, no_worker, settings, django_capture_on_commit_callbacks):
    """The last fold recorded and committed, and the process recording it
    killed before it scored the submission (its commit hooks never ran):
    beat's reaper sends the scoring task once the redispatch delay has
    passed, and only once while it waits in the queue."""
    settings.DATARUN_REDISPATCH_AFTER = 30

    evaluation_id = run_all_folds(problem, django_capture_on_commit_callbacks,
                                  report_hooks=False)
    assert Evaluation.objects.get(id=evaluation_id).state == "running"
    assert scoring_waiting() == set()

    assert services.fold_runs_reap()["rescored"] == 0  # the last fold just ended
    later = timezone.now() + timedelta(seconds=31)
    assert services.fold_runs_reap(now=later)["rescored"] == 1
    assert scoring_waiting() == {evaluation_id}
    assert services.fold_runs_reap(now=later)["rescored"] == 0  # its message waits
