"""Every fold of an accepted evaluation gets its message, once it can: the
fold runs are the outbox, and the reaper sends what is owed or was lost,
quickly, without a second message for a fold that still has one waiting.
Real Redis; no worker consumes the queue meanwhile."""
from datetime import timedelta

import pytest
from django.utils import timezone

from datarun import selectors, services
from datarun.broker import waiting_first_args
from datarun.models import FoldRun
from datarun.services.evaluations import RUN_FOLD_TASK
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

ESTIMATOR = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()


@pytest.fixture
def problem():
    return services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-dispatch")


def create(problem, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.evaluation_create(problem=problem, files={"estimator.py": ESTIMATOR})


def waiting() -> set:
    return waiting_first_args(queue="sandbox", task=RUN_FOLD_TASK)


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def test_an_evaluation_accepted_while_the_broker_is_down_is_sent_by_the_reaper(
        problem, no_worker, broker, django_capture_on_commit_callbacks):
    broker.down()
    evaluation = create(problem, django_capture_on_commit_callbacks)  # no error raised
    folds = set(evaluation.fold_runs.values_list("id", flat=True))
    assert set(evaluation.fold_runs.values_list("state", flat=True)) == {"queued"}
    assert not evaluation.fold_runs.filter(dispatched_at__isnull=False).exists()

    services.fold_runs_reap()  # the broker still down: nothing sent, nothing raised
    assert not evaluation.fold_runs.filter(dispatched_at__isnull=False).exists()

    broker.up()
    assert services.fold_runs_reap()["sent"] == len(folds)  # no waiting for a timeout
    assert waiting() == folds


def test_lost_fold_messages_are_sent_again_within_the_redispatch_delay_and_only_once(
        problem, no_worker, settings, django_capture_on_commit_callbacks):
    settings.DATARUN_REDISPATCH_AFTER = 30
    evaluation = create(problem, django_capture_on_commit_callbacks)
    folds = set(evaluation.fold_runs.values_list("id", flat=True))
    assert waiting() == folds

    # Messages waiting in the queue are not duplicated, however old.
    assert services.fold_runs_reap(now=later(3600))["sent"] == 0
    assert no_worker.llen("sandbox") == len(folds)

    # Redis restarted without saving: every message is gone.
    no_worker.delete("sandbox")
    assert services.fold_runs_reap()["sent"] == 0  # sent only just now: not yet
    assert services.fold_runs_reap(now=later(31))["sent"] == len(folds)
    assert waiting() == folds
    assert no_worker.llen("sandbox") == len(folds)

    # A worker took one message and died before claiming its fold.
    no_worker.rpop("sandbox")
    assert services.fold_runs_reap(now=later(31))["sent"] == 1
    assert no_worker.llen("sandbox") == len(folds)


def test_a_fold_running_or_finished_gets_no_second_message_and_no_second_run(
        problem, no_worker, django_capture_on_commit_callbacks):
    evaluation = create(problem, django_capture_on_commit_callbacks)
    no_worker.delete("sandbox")
    first = evaluation.fold_runs.order_by("fold_index").first()
    ticket = services.fold_run_claim(fold_run_id=first.id, environment={"host": "a"})
    assert ticket is not None and ticket.attempt == 1
    services.fold_runs_reap(now=later(31))
    assert first.id not in waiting()
    # The claim of a duplicate message is refused while the first runs.
    assert services.fold_run_claim(fold_run_id=first.id, environment={"host": "b"}) is None
    # The same claim sent again (its answer lost) gets the same attempt back.
    again = {"host": "a", "claim_id": "c-1"}
    FoldRun.objects.filter(id=first.id).update(environment=again)
    assert services.fold_run_claim(fold_run_id=first.id, environment=again).attempt == 1
    assert FoldRun.objects.get(id=first.id).attempt == 1


def test_queue_positions_follow_the_submission_time_after_a_fold_is_rerun(
        problem, no_worker, settings, django_capture_on_commit_callbacks):
    earlier = create(problem, django_capture_on_commit_callbacks)
    later_one = create(problem, django_capture_on_commit_callbacks)
    n_folds = problem.n_folds
    assert selectors.queue_positions([later_one.id]) == {later_one.id: n_folds}

    # The earlier evaluation's first fold was claimed, then its worker died.
    fold = earlier.fold_runs.order_by("fold_index").first()
    services.fold_run_claim(fold_run_id=fold.id, environment={"host": "lost"})
    assert selectors.queue_positions([later_one.id]) == {later_one.id: n_folds - 1}
    counts = services.fold_runs_reap(now=later(settings.DATARUN_HEARTBEAT_TIMEOUT + 1))
    assert counts["requeued"] == 1
    # Back at its first place, ahead of the later submission.
    assert selectors.queue_positions([later_one.id]) == {later_one.id: n_folds}
    assert selectors.queue_positions([earlier.id]) == {earlier.id: 0}


@pytest.fixture
def embedded_broker(tmp_path, settings):
    """This process's Celery app on the embedded broker (``filesystem://``,
    as `make run` has it), in folders of its own."""
    from config.celery import app

    folders = {name: tmp_path / name for name in ("in", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    saved = (app.conf.broker_read_url, app.conf.broker_write_url,
             app.conf.broker_transport_options)
    app.conf.broker_read_url = app.conf.broker_write_url = "filesystem://"
    app.conf.broker_transport_options = {
        "data_folder_in": str(folders["in"]), "data_folder_out": str(folders["in"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]), "store_processed": False}
    app._pool = None
    app.amqp._producer_pool = None
    yield folders["in"]
    (app.conf.broker_read_url, app.conf.broker_write_url,
     app.conf.broker_transport_options) = saved
    app._pool = None
    app.amqp._producer_pool = None


def test_the_embedded_broker_is_looked_into_and_a_lost_message_sent_again_in_seconds(
        problem, embedded_broker, settings, django_capture_on_commit_callbacks):
    # make run's broker: a fold whose message a worker took before it was
    # killed is sent again after DATARUN_REDISPATCH_AFTER, not after the
    # half hour a broker that cannot be looked into waits.
    settings.DATARUN_REDISPATCH_AFTER = 30
    settings.DATARUN_REDISPATCH_UNSEEN_AFTER = 1800
    evaluation = create(problem, django_capture_on_commit_callbacks)
    folds = set(evaluation.fold_runs.values_list("id", flat=True))
    assert waiting() == folds
    assert services.fold_runs_reap(now=later(3600))["sent"] == 0

    taken = sorted(embedded_broker.iterdir())[0]
    taken.unlink()
    assert len(waiting()) == len(folds) - 1
    assert services.fold_runs_reap(now=later(31))["sent"] == 1
    assert waiting() == folds
    assert len(list(embedded_broker.iterdir())) == len(folds)
