"""Contributivity reaches the leaderboard by itself: scoring an evaluation
schedules a debounced background update on the real worker."""
import time

import pytest

from databoard.models import Submission
from datarun import services as datarun_services
from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SUBMISSIONS = EXAMPLES / "iris" / "submissions"


def test_contributivity_is_computed_after_scoring_and_shown_on_the_leaderboard(
        celery_worker_process):
    client = signed_up(EXAMPLES / "iris", "iris-contrib")
    ids = []
    for name in ("starting_kit", "random_forest"):
        body = submit(client, "iris-contrib", name,
                      {"estimator.py": (SUBMISSIONS / name / "estimator.py").read_text()})
        assert wait_final(client, body["id"])["state"] == "scored"
        ids.append(body["id"])

    deadline = time.monotonic() + 60
    while True:
        values = dict(Submission.objects.filter(id__in=ids).values_list("id", "contributivity"))
        if all(v is not None for v in values.values()):
            # Both scored before the update ran, or a later update included both.
            expected = datarun_services.evaluations_contributivity(evaluation_ids=list(
                Submission.objects.filter(id__in=ids).values_list("evaluation_id", flat=True)))
            by_evaluation = dict(Submission.objects.filter(id__in=ids)
                                 .values_list("evaluation_id", "contributivity"))
            if by_evaluation == pytest.approx(expected):
                break
        assert time.monotonic() < deadline, f"contributivity not updated: {values}"
        time.sleep(0.3)

    assert sum(values.values()) == pytest.approx(1.0)
    rows = client.get("/api/v1/events/iris-contrib/leaderboard/").json()["rows"]
    assert {r["submission_id"]: r["contributivity"] for r in rows} == pytest.approx(values)
