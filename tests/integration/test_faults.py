"""Faults lose nothing: a submission accepted while the broker is down, fold
messages lost with Redis, a web server down while a worker claims, and a
contributivity update whose message was lost all end as if nothing had
happened, within seconds (the worker runs with DATARUN_REDISPATCH_AFTER=2
and a reaper every second). Real worker, web server, PostgreSQL and Redis."""
import socket
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from config.celery import app
from databoard.models import Event, Submission
from tests.conftest import EXAMPLES, stop_process
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()


@pytest.fixture
def iris(celery_worker_process):
    return signed_up(EXAMPLES / "iris", "iris")


def assert_scored_once(detail: dict) -> None:
    assert detail["state"] == "scored", detail["error"]
    assert [f["attempt"] for f in detail["folds"]] == [1] * len(detail["folds"])


def test_a_submission_accepted_while_the_broker_is_down_is_scored_when_it_is_back(
        iris, broker):
    broker.down()
    created = submit(iris, "iris", "during-outage", {"estimator.py": STARTING_KIT})  # 201
    broker.up()
    assert_scored_once(wait_final(iris, created["id"], timeout=60))


def test_fold_messages_lost_with_redis_are_sent_again_and_run_once(iris):
    node = [f"test@{socket.gethostname()}"]
    app.control.cancel_consumer("sandbox", destination=node, reply=True)
    try:
        created = submit(iris, "iris", "lost", {"estimator.py": STARTING_KIT})
        # Redis restarted without saving: the queued messages are gone.
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("sandbox")
    finally:
        app.control.add_consumer("sandbox", destination=node, reply=True)
    assert_scored_once(wait_final(iris, created["id"], timeout=60))


def test_folds_claimed_while_the_web_server_is_down_run_when_it_is_back(iris, _workers):
    stop_process(_workers.web.proc)
    try:
        created = submit(iris, "iris", "web-down", {"estimator.py": STARTING_KIT})
        time.sleep(10)  # the worker's claims fail, retried, past its client's retries
        assert iris.get(f"/api/v1/submissions/{created['id']}/").json()["state"] == "queued"
    finally:
        _workers.restart_web_server()
    assert_scored_once(wait_final(iris, created["id"], timeout=60))


def test_a_lost_contributivity_update_is_sent_again(iris):
    created = submit(iris, "iris", "first", {"estimator.py": STARTING_KIT})
    assert wait_final(iris, created["id"])["state"] == "scored"
    submission = Submission.objects.get(id=created["id"])
    deadline = time.monotonic() + 30
    while Submission.objects.get(id=submission.id).contributivity is None:
        assert time.monotonic() < deadline, "contributivity never computed"
        time.sleep(0.2)
    # An update was scheduled after a new score, and its message was lost
    # with Redis: until the fix, nothing ever sent it again.
    Submission.objects.filter(id=submission.id).update(contributivity=None)
    Event.objects.filter(name="iris").update(
        contributivity_due_at=timezone.now() - timedelta(seconds=5))
    deadline = time.monotonic() + 30
    while Submission.objects.get(id=submission.id).contributivity is None:
        assert time.monotonic() < deadline, "the lost contributivity update was not sent again"
        time.sleep(0.2)
    assert Event.objects.get(name="iris").contributivity_due_at is None
