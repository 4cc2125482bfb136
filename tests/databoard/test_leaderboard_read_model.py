"""The leaderboard read model: after scoring, re-scoring (a re-run scored
again), cancelling, selecting and closing, every board a viewer can open
equals the full recomputation from the evaluations; pages, filters and the
viewer's team; ETags and 304s; bounded queries; contributivity in bulk.
"""
import io
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from databoard import leaderboard_selectors, services
from databoard.models import Event, LeaderboardEntry
from databoard.services.contributivity import contributivity_update
from databoard.services.leaderboards import leaderboard_update
from datarun import ramp_kits, storage
from datarun.api.pagination import PageRequest
from datarun.models import Problem
from tests.databoard.test_api import EVENT, assert_error, client_for, make_user, signed_up
from tests.databoard.test_views_boards import CHANGED_KIT, score, submit
from tests.datarun.test_contributivity_service import noisy_predictions

pytestmark = pytest.mark.django_db

API = f"/api/v1/events/{EVENT}/leaderboard/"
TABLE = f"/events/{EVENT}/leaderboard/table/"


def every_row(event: Event, user, board: str, kind: str, page_size: int = 2) -> list[dict]:
    """A board read page by page (small pages, to cross page boundaries)."""
    rows, number = [], 1
    while True:
        data = leaderboard_selectors.leaderboard_rows(
            event=event, user=user, board=board, kind=kind,
            page=PageRequest(number=number, size=page_size))
        rows += data["rows"]
        if number >= data["pages"]:
            return rows
        number += 1


def assert_read_model_is_recomputation(event: Event, *viewers) -> None:
    event.refresh_from_db()
    boards = ["public", "private"] + (["competition"] if event.is_competitive else [])
    for user in viewers:
        for board in boards:
            if board == "private" and not (event.is_admin(user) or (
                    event.closes_at and event.closes_at <= timezone.now())):
                continue
            for kind in ("bagged", "mean"):
                expected = leaderboard_selectors.leaderboard_recomputed(
                    event=event, user=user, board=board, kind=kind)["rows"]
                assert every_row(event, user, board, kind) == expected, (user, board, kind)
    # And the rows kept equal the rows a rebuild from nothing writes.
    kept = _entries(event)
    leaderboard_update(event_id=event.id)
    assert _entries(event) == kept


def _entries(event: Event) -> list[tuple]:
    return list(LeaderboardEntry.objects.filter(event=event).order_by(
        "submission_id", "kind").values_list(
        "submission_id", "kind", "team_id", "valid_key", "test_key", "in_competition",
        "scores", "train_time", "cpu_time", "peak_memory"))


@pytest.fixture
def event():
    from tests.databoard.test_api import make_event
    return make_event(is_competitive=True)


@pytest.fixture
def people(event):
    admin = make_user("organiser")
    event.admins.add(admin)
    return {"alice": signed_up("alice", event), "bob": signed_up("bob", event),
            "carol": signed_up("carol", event), "admin": admin}


def viewers(people):
    from django.contrib.auth.models import AnonymousUser
    return (AnonymousUser(), people["alice"], people["admin"])


def test_scoring_rescoring_cancelling_selecting_and_closing_keep_the_read_model_exact(
        event, people):
    alice, bob, carol, admin = (people[k] for k in ("alice", "bob", "carol", "admin"))
    a1, a2 = submit(event, alice, "a1"), submit(event, alice, "a2", CHANGED_KIT)
    b1, c1 = submit(event, bob, "b1"), submit(event, carol, "c1")
    # Scoring, with a tie (a1 and b1: the earlier submission first) and a missing score.
    score(a1, 0.9, 0.7)
    score(b1, 0.9, 0.95)
    score(a2, 0.8, 0.99)
    score(c1, None, None)
    assert [r["submission"] for r in every_row(event, None, "public", "bagged")] == [
        "a1", "b1", "a2", "c1"]
    assert_read_model_is_recomputation(event, *viewers(people))

    # Re-scoring: a re-run leaves the board until it is scored again, then moves.
    a1 = services.submission_rerun(submission_id=a1.id, user=admin)
    assert "a1" not in [r["submission"] for r in every_row(event, None, "public", "bagged")]
    assert_read_model_is_recomputation(event, *viewers(people))
    score(a1, 0.5, 0.5)
    assert [r["submission"] for r in every_row(event, None, "public", "bagged")] == [
        "b1", "a2", "a1", "c1"]
    assert_read_model_is_recomputation(event, *viewers(people))

    # Cancelling a re-run takes the submission off the board.
    b1 = services.submission_rerun(submission_id=b1.id, user=admin)
    score(b1, 0.99, 0.1)
    c2 = submit(event, carol, "c2")
    services.submission_cancel(submission_id=c2.id, user=admin)
    a1 = services.submission_rerun(submission_id=a1.id, user=admin)
    services.submission_cancel(submission_id=a1.id, user=admin)
    assert [r["submission"] for r in every_row(event, None, "public", "bagged")] == [
        "b1", "a2", "c1"]
    assert_read_model_is_recomputation(event, *viewers(people))

    # Selecting: alice puts a2 forward, carol a submission that is not scored.
    services.submission_select(submission_id=a2.id, user=alice)
    services.submission_select(submission_id=c2.id, user=carol)
    competition = every_row(event, alice, "competition", "bagged")
    assert [(r["team"], r["submission"]) for r in competition] == [("bob", "b1"),
                                                                   ("alice", "a2")]
    assert_read_model_is_recomputation(event, *viewers(people))

    # Closing: test scores for everyone, the competition ranked by them.
    event = services.event_update(event=event, user=admin,
                                  closes_at=timezone.now() - timedelta(1))
    competition = every_row(event, alice, "competition", "bagged")
    assert [(r["submission"], r["rank"], r["rank_change"]) for r in competition] == [
        ("a2", 1, 1), ("b1", 2, -1)]
    assert_read_model_is_recomputation(event, *viewers(people))


def test_an_event_from_before_the_read_model_gets_its_board_on_first_read(event, people):
    a1 = submit(event, people["alice"], "a1")
    score(a1, 0.9, 0.8)
    LeaderboardEntry.objects.all().delete()
    Event.objects.filter(id=event.id).update(leaderboard_changed_at=None)

    board = APIClient().get(API).json()
    assert [r["submission"] for r in board["rows"]] == ["a1"]
    assert_read_model_is_recomputation(event, *viewers(people))


def many_scored(event, n: int) -> list:
    subs = []
    for i in range(n):
        user = signed_up(f"user{i}", event)
        sub = submit(event, user, f"s{i}")
        score(sub, 0.5 + i / 100, 0.4)
        subs.append(sub)
    return subs


def test_api_pages_filters_and_the_viewers_team(event):
    many_scored(event, 7)  # ranks: s6 first ... s0 last
    user3 = event.teams.get(name="user3").members.get()

    first = client_for(user3).get(API, {"page_size": 3}).json()
    assert [r["submission"] for r in first["rows"]] == ["s6", "s5", "s4"]
    assert (first["count"], first["page"], first["pages"], first["previous"]) == (7, 1, 3, None)
    assert first["my_team"] == {"name": "user3", "rank": 4, "page": 2}

    second = client_for(user3).get(first["next"]).json()
    assert [(r["rank"], r["submission"]) for r in second["rows"]] == [
        (4, "s3"), (5, "s2"), (6, "s1")]
    assert second["previous"].endswith("page=1") and "page_size=3" in second["next"]

    mine = APIClient().get(API, {"team": "user1"}).json()
    assert [(r["rank"], r["submission"]) for r in mine["rows"]] == [(6, "s1")]
    found = APIClient().get(API, {"search": "S5"}).json()
    assert (found["count"], found["rows"][0]["rank"]) == (1, 2)

    assert_error(APIClient().get(API, {"page": 9}), 404, "not_found", "no page 9")
    assert_error(APIClient().get(API, {"page_size": 0}), 400, "invalid")
    assert_error(APIClient().get(API, {"page_size": 501}), 400, "invalid",
                 "page_size is at most 500")


def test_the_leaderboard_page_shows_one_page_and_links_to_the_viewers_team(client, event):
    many_scored(event, 60)
    user3 = event.teams.get(name="user3").members.get()
    client.force_login(user3)
    page = client.get(f"/events/{EVENT}/leaderboard/").content.decode()
    assert ">s59<" in page and ">s3<" not in page  # the default page holds 50 rows
    assert "page 1 of 2" in page
    assert "your team (user3): rank 57, page 2" in page

    second = client.get(f"/events/{EVENT}/leaderboard/", {"page": 2}).content.decode()
    assert '<tr class="mine">' in second and ">s3<" in second
    found = client.get(f"/events/{EVENT}/leaderboard/", {"search": "s42"}).content.decode()
    assert ">s42<" in found and ">s41<" not in found


def test_an_unchanged_board_answers_304_until_a_score_changes_it(client, event, people):
    a1 = submit(event, people["alice"], "a1")
    score(a1, 0.9, 0.8)

    first = APIClient().get(API)
    etag = first["ETag"]
    assert first.status_code == 200 and first["Last-Modified"]
    again = APIClient().get(API, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    # Another viewer's copy is another copy.
    assert client_for(people["admin"]).get(API, HTTP_IF_NONE_MATCH=etag).status_code == 200

    table = client.get(TABLE)
    assert table.status_code == 200
    assert f'"If-None-Match": "\\"{table["ETag"].strip(chr(34))}\\""' in table.content.decode()
    assert client.get(TABLE, HTTP_IF_NONE_MATCH=table["ETag"]).status_code == 304

    b1 = submit(event, people["bob"], "b1")
    score(b1, 0.95, 0.8)
    changed = APIClient().get(API, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert [r["submission"] for r in changed.json()["rows"]] == ["b1", "a1"]
    assert client.get(TABLE, HTTP_IF_NONE_MATCH=table["ETag"]).status_code == 200


def test_a_board_costs_the_same_few_queries_with_many_submissions(event, people,
                                                                    django_assert_max_num_queries):
    many_scored(event, 30)
    admin_client = client_for(people["admin"])
    for board in ("public", "private", "competition"):
        with django_assert_max_num_queries(10):
            assert admin_client.get(API, {"board": board, "page": 2,
                                          "page_size": 10}).status_code == 200
    with django_assert_max_num_queries(10):
        assert APIClient().get(API, {"search": "s2"}).status_code == 200


def test_contributivity_is_written_in_one_statement(event):
    subs = many_scored(event, 5)
    problem = Problem.objects.get(name=event.problem_name)
    trusted = ramp_kits.load_trusted(str(storage.resolve(problem.storage_dir)),
                                     problem.data_hash)
    rng = np.random.default_rng(0)
    for i, sub in enumerate(subs):  # the predictions the scorer leaves in storage
        for k, y_pred in enumerate(noisy_predictions(trusted, rng, 0.5 + i / 4)):
            storage.artifact_put(
                storage.artifact_key(sub.evaluation_id, storage.predictions_name(k, "train")),
                storage.predictions_bytes(y_pred))
    with CaptureQueriesContext(connection) as queries:
        values = contributivity_update(event_id=event.id)
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "databoard_submission"')]
    assert len(updates) == 1
    assert set(values) == {s.id for s in subs} and sum(values.values()) == pytest.approx(1)
    board = APIClient().get(API).json()
    assert {r["submission_id"]: r["contributivity"] for r in board["rows"]} == values


def test_leaderboard_rebuild_restores_a_board_from_the_evaluations(event, people):
    a1 = submit(event, people["alice"], "a1")
    score(a1, 0.9, 0.8)
    LeaderboardEntry.objects.all().delete()  # e.g. an update lost with its worker
    out = io.StringIO()

    call_command("leaderboard_rebuild", EVENT, stdout=out)

    assert out.getvalue() == f"{EVENT}: 2 leaderboard rows\n"  # one per score kind
    assert [r["submission"] for r in APIClient().get(API).json()["rows"]] == ["a1"]
    with pytest.raises(CommandError, match="no event named nope"):
        call_command("leaderboard_rebuild", "nope")
