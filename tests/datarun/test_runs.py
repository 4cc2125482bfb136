"""Tracked runs through the services, without a worker: metrics are
append-only, a run's log is capped with a note, and artifacts live in the
configured storage — a real S3 server (moto) included — from which the
scorer reads the predictions back. A submission is scored by whoever records
its last fold when scoring is cheap, with no hop through the broker to the
scorer; a costly one, or one whose scoring fails there, goes to the scorer's
queue (real Redis; no worker consumes the queues meanwhile, so a message
sent is seen waiting)."""
import io
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from django.db import OperationalError
from django.utils import timezone

from datarun import scoring, services, storage
from datarun.broker import waiting_first_args
from datarun.contract import FoldOutcome
from datarun.models import Evaluation, EvaluationScore, RunArtifact, RunLogLine, RunMetric
from datarun.ramp_kits import load_trusted
from datarun.services.evaluations import SCORE_TASK
from datarun.services.runs import metrics_add
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

ESTIMATOR = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()
# What a runner says of itself when it claims a fold.
RUNNER = {"host": "test", "sandbox": "local"}


@pytest.fixture
def problem():
    return services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-runs")


@pytest.fixture
def evaluation(problem):
    return services.evaluation_create(problem=problem, files={"estimator.py": ESTIMATOR},
                                      started_by="alice")


def test_a_metric_row_is_never_changed(evaluation):
    metrics_add(evaluation_id=evaluation.id, values={"valid/acc": 0.9}, step=0)
    row = RunMetric.objects.get(evaluation=evaluation, key="valid/acc")
    row.value = 1.0
    with pytest.raises(TypeError, match="append-only"):
        row.save()
    with pytest.raises(TypeError, match="append-only"):
        RunMetric.objects.filter(evaluation=evaluation).update(value=1.0)
    metrics_add(evaluation_id=evaluation.id, values={"valid/acc": 0.95}, step=0)
    assert list(RunMetric.objects.filter(evaluation=evaluation, key="valid/acc")
                .order_by("id").values_list("value", flat=True)) == [0.9, 0.95]


def test_a_run_records_who_started_it_and_what_it_was_given(evaluation, problem):
    assert evaluation.started_by == "alice"
    meta = evaluation.metadata
    assert meta["data_hash"] == problem.data_hash and meta["folds_hash"] == problem.folds_hash
    assert meta["code_hash"] == evaluation.code_hash
    assert meta["files"] == evaluation.files and meta["limits"] == evaluation.limits
    assert meta["server"]["packages"]["numpy"] == np.__version__
    artifact, data = services.artifact_read(evaluation_id=evaluation.id,
                                            name="submission/estimator.py")
    assert data == ESTIMATOR and artifact.sha256 == evaluation.files["estimator.py"]


def test_the_log_of_a_run_is_capped_with_one_note(evaluation, settings):
    settings.DATARUN_RUN_LOG_LIMIT_BYTES = 100
    fold0, fold1 = evaluation.fold_runs.order_by("fold_index")[:2]
    for fold in (fold0, fold1):
        services.fold_run_claim(fold_run_id=fold.id, environment=RUNNER)
    assert services.run_log_append(fold_run_id=fold0.id, attempt=1,
                                   lines=[("stdout", "x" * 39)] * 2)
    # The third line would pass 100 bytes: it is cut, and a note says so once.
    assert not services.run_log_append(fold_run_id=fold1.id, attempt=1,
                                       lines=[("stdout", "y" * 39), ("stderr", "z")])
    assert not services.run_log_append(fold_run_id=fold1.id, attempt=1,
                                       lines=[("stdout", "more")])
    lines = list(RunLogLine.objects.filter(evaluation=evaluation).order_by("id"))
    assert [(line.stream, line.text[:1]) for line in lines] == [
        ("stdout", "x"), ("stdout", "x"), ("note", "l")]
    assert "more than 100 bytes" in lines[-1].text and "fold 1" in lines[-1].text
    evaluation.refresh_from_db()
    assert evaluation.logs_truncated and evaluation.log_bytes == 80


def test_lines_of_a_fold_no_longer_running_are_not_kept(evaluation):
    fold0 = evaluation.fold_runs.first()
    # Queued (not claimed), then taken by attempt 1: attempt 2's lines are refused too.
    assert not services.run_log_append(fold_run_id=fold0.id, attempt=1,
                                       lines=[("stdout", "early")])
    services.fold_run_claim(fold_run_id=fold0.id, environment=RUNNER)
    assert not services.run_log_append(fold_run_id=fold0.id, attempt=2,
                                       lines=[("stdout", "stale")])
    services.evaluation_cancel(evaluation_id=evaluation.id)
    assert not services.run_log_append(fold_run_id=fold0.id, attempt=1,
                                       lines=[("stdout", "late")])
    assert not RunLogLine.objects.filter(evaluation=evaluation).exists()


def test_a_very_long_line_is_kept_in_pieces(evaluation):
    fold0 = evaluation.fold_runs.first()
    services.fold_run_claim(fold_run_id=fold0.id, environment=RUNNER)
    services.run_log_append(fold_run_id=fold0.id, attempt=1, lines=[("stdout", "a" * 9000)])
    assert [len(line.text) for line in RunLogLine.objects.filter(evaluation=evaluation)] == [
        4000, 4000, 1000]


@pytest.fixture
def s3_artifacts(settings, monkeypatch):
    """Artifacts in a bucket of moto's real S3 server (a thread on a free port)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="datarun-artifacts")
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "datarun-artifacts", "endpoint_url": endpoint,
                    "region_name": "us-east-1", "location": "prod", "default_acl": None}}}
    yield SimpleNamespace(client=client, bucket="datarun-artifacts")
    server.stop()


def perfect_predictions(problem) -> tuple[np.ndarray, np.ndarray]:
    """The problem's own labels as predictions, training and test set."""
    trusted = load_trusted(str(storage.resolve(problem.storage_dir)), problem.data_hash)
    return (trusted.problem.Predictions(y_true=trusted.y_train).y_pred,
            trusted.problem.Predictions(y_true=trusted.y_test).y_pred)


def run_all_folds(problem, commits, *, report_hooks: bool = True) -> Evaluation:
    """Claim and record every fold of a new evaluation with perfect
    predictions, each report's commit hooks run as they would in the web
    process (``report_hooks=False``: as if that process died right after
    each commit)."""
    with commits(execute=True):
        evaluation = services.evaluation_create(problem=problem,
                                                files={"estimator.py": ESTIMATOR})
    y_train, y_test = perfect_predictions(problem)
    for fold_run in evaluation.fold_runs.order_by("fold_index"):
        ticket = services.fold_run_claim(fold_run_id=fold_run.id, environment=RUNNER)
        with commits(execute=report_hooks):
            assert services.fold_run_finish(spec=ticket, outcome=FoldOutcome(
                wall_time=0.1, cpu_time=0.1, peak_memory=1, y_pred_train=y_train,
                y_pred_test=y_test))
    return evaluation


def scoring_waiting() -> set:
    return waiting_first_args(queue="scoring", task=SCORE_TASK)


def test_artifacts_go_to_s3_and_the_scorer_reads_them_back(
        s3_artifacts, problem, no_worker, django_capture_on_commit_callbacks):
    evaluation = run_all_folds(problem, django_capture_on_commit_callbacks)
    truth_train, _ = perfect_predictions(problem)
    # Reading ten predictions back from a bucket is left to the scorer, even
    # for a problem as cheap to score as this one.
    assert Evaluation.objects.get(id=evaluation.id).state == "running"
    assert scoring_waiting() == {evaluation.id}
    services.evaluation_score(evaluation_id=evaluation.id)
    evaluation.refresh_from_db()
    assert evaluation.state == "scored"
    keys = {o["Key"] for o in s3_artifacts.client.list_objects_v2(
        Bucket=s3_artifacts.bucket)["Contents"]}
    assert f"prod/runs/{evaluation.id}/submission/estimator.py" in keys
    assert f"prod/runs/{evaluation.id}/fold_4/y_pred_test.npy" in keys
    assert not (storage.root() / "artifacts" / "runs" / str(evaluation.id)).exists()
    # Perfect predictions: the bagged accuracy read back from S3 is 1.
    score = evaluation.scores.get(score_type__name="acc", step="valid")
    assert score.bagged == 1.0
    _, data = services.artifact_read(evaluation_id=evaluation.id, name="fold_2/y_pred_train.npy")
    assert np.array_equal(np.load(io.BytesIO(data)), truth_train)
    assert RunArtifact.objects.filter(evaluation=evaluation).count() == 11
    assert Evaluation.objects.get(id=evaluation.id).metrics.filter(
        key="bagged/valid/acc").get().value == 1.0


def test_a_cheaply_scored_submission_is_scored_with_its_last_fold(
        problem, no_worker, django_capture_on_commit_callbacks):
    evaluation_id = run_all_folds(problem, django_capture_on_commit_callbacks).id

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
    evaluation_id = run_all_folds(problem, django_capture_on_commit_callbacks).id

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
    evaluation_id = run_all_folds(problem, django_capture_on_commit_callbacks).id

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
                                  report_hooks=False).id
    assert Evaluation.objects.get(id=evaluation_id).state == "running"
    assert scoring_waiting() == set()

    assert services.fold_runs_reap()["rescored"] == 0  # the last fold just ended
    later = timezone.now() + timedelta(seconds=31)
    assert services.fold_runs_reap(now=later)["rescored"] == 1
    assert scoring_waiting() == {evaluation_id}
    assert services.fold_runs_reap(now=later)["rescored"] == 0  # its message waits
