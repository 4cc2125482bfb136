"""Event rules at submit time, through the API (the web sandbox calls the
same service): minimum interval, daily quota, closing; what does not count."""
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from databoard.models import Submission
from datarun.models import Evaluation
from datarun.states import ErrorKind, RunState
from tests.databoard.test_api import (
    assert_error,
    client_for,
    make_event,
    post_submission,
    signed_up,
)

pytestmark = pytest.mark.django_db


def _age(submission_id: int, delta: timedelta) -> None:
    """Pretend a submission was made ``delta`` ago."""
    Submission.objects.filter(id=submission_id).update(created_at=timezone.now() - delta)


def _fail(submission_id: int, kind: str) -> None:
    evaluation_id = Submission.objects.get(id=submission_id).evaluation_id
    Evaluation.objects.filter(id=evaluation_id).update(state=RunState.ERROR, error_kind=kind)


def test_too_early_after_the_last_submission_names_the_rule_and_the_time():
    event = make_event(min_submission_interval_s=900)
    client = client_for(signed_up("alice", event))
    first = post_submission(client, name="one")
    assert first.status_code == 201

    response = post_submission(client, name="two")

    assert_error(response, 429, "submission_refused",
                 "the minimum time between two submissions of a team is 15 min")
    details = response.json()["error"]["details"]
    assert details["rule"] == "min_interval"
    next_at = datetime.fromisoformat(details["next_allowed_at"])
    created = Submission.objects.get(id=first.json()["id"]).created_at
    assert next_at == created + timedelta(seconds=900)
    assert 880 <= int(response["Retry-After"]) <= 901
    assert f"{next_at:%Y-%m-%d %H:%M:%S} UTC" in response.json()["error"]["message"]
    assert Submission.objects.count() == 1

    _age(first.json()["id"], timedelta(seconds=901))
    assert post_submission(client, name="two").status_code == 201


def test_daily_quota_counts_the_last_24_hours_of_the_team():
    event = make_event(max_submissions_per_day=2)
    alice = signed_up("alice", event)
    client = client_for(alice)
    old = post_submission(client, name="old").json()["id"]
    _age(old, timedelta(hours=25))  # outside the window
    first = post_submission(client, name="a").json()["id"]
    _age(first, timedelta(hours=3))
    assert post_submission(client, name="b").status_code == 201

    response = post_submission(client, name="c")

    assert_error(response, 429, "submission_refused",
                 "the daily quota is 2 submissions per team in any 24 hours and your team "
                 "has made 2")
    next_at = datetime.fromisoformat(response.json()["error"]["details"]["next_allowed_at"])
    assert next_at == Submission.objects.get(id=first).created_at + timedelta(hours=24)


def test_quota_is_per_team_not_per_member():
    event = make_event(max_submissions_per_day=1, max_team_size=2)
    from databoard import services

    alice = signed_up("alice", event)
    bob = signed_up("bob", event)
    team = services.team_of(event=event, user=alice)
    # Bob leaves his own team for Alice's.
    invitation = services.team_invite(team=team, user=alice, username="bob")
    services.invitation_accept(invitation_id=invitation.id, user=bob)
    assert post_submission(client_for(alice), name="a").status_code == 201
    assert_error(post_submission(client_for(bob), name="b"), 429, "submission_refused",
                 "daily quota")


@pytest.mark.parametrize("outcome", ["platform", "problem", "cancelled"])
def test_platform_and_problem_failures_and_cancelled_submissions_do_not_count(outcome):
    event = make_event(max_submissions_per_day=1, min_submission_interval_s=3600)
    client = client_for(signed_up("alice", event))
    first = post_submission(client, name="one").json()["id"]
    if outcome != "cancelled":
        _fail(first, ErrorKind(outcome))
    else:
        evaluation_id = Submission.objects.get(id=first).evaluation_id
        Evaluation.objects.filter(id=evaluation_id).update(state=RunState.CANCELLED)

    assert post_submission(client, name="two").status_code == 201


def test_a_participant_failure_counts():
    event = make_event(max_submissions_per_day=1)
    client = client_for(signed_up("alice", event))
    _fail(post_submission(client, name="one").json()["id"], ErrorKind.PARTICIPANT)
    assert_error(post_submission(client, name="two"), 429, "submission_refused", "daily quota")


def test_event_admins_are_exempt_from_rate_limits():
    event = make_event(max_submissions_per_day=1, min_submission_interval_s=3600)
    admin = signed_up("organiser", event)
    event.admins.add(admin)
    client = client_for(admin)
    for name in ("a", "b", "c"):
        assert post_submission(client, name=name).status_code == 201


def test_closed_event_refuses_even_a_first_submission_with_403():
    event = make_event(closes_at=timezone.now() - timedelta(minutes=1))
    response = post_submission(client_for(signed_up("alice", event)))
    assert_error(response, 403, "submission_refused", "the event closed for submissions at")
    assert "Retry-After" not in response
