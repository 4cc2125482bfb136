"""Every page, board and list costs the same few SQL queries however many
submissions and teams the event has: counted as a signed-in participant
(session, user and all, as in production), at most 10 each, and the same
count after the event has grown threefold."""
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from databoard import services
from databoard.models import Submission
from tests.databoard.test_api import EVENT, make_event, make_user, signed_up
from tests.databoard.test_views_boards import STARTING_KIT, score, submit

pytestmark = pytest.mark.django_db

MAX_QUERIES = 10


@pytest.fixture
def event():
    event = make_event(is_competitive=True)
    event.admins.add(make_user("organiser"))
    return event


def grow(event, first_team: int, teams: int, per_team: int = 2) -> None:
    """``teams`` more teams with ``per_team`` scored submissions each."""
    for t in range(first_team, first_team + teams):
        user = signed_up(f"user{t}", event)
        for k in range(per_team):
            sub = submit(event, user, f"t{t}-s{k}", STARTING_KIT + f"\n# {t}.{k}\n".encode())
            score(sub, 0.5 + (t * per_team + k) / 1000, 0.4)


@pytest.fixture
def viewer(event):
    """A participant with a scored submission, one re-run twice (scored each
    time) and one still queued; selected for the competition."""
    user = signed_up("viewer", event)
    admin = event.admins.get()
    scored, rerun, queued = (submit(event, user, name, STARTING_KIT + f"\n# {name}\n".encode())
                             for name in ("scored", "rerun", "queued"))
    score(scored, 0.9, 0.8)
    score(rerun, 0.7, 0.6)
    for value in (0.71, 0.72):
        score(services.submission_rerun(submission_id=rerun.id, user=admin), value, 0.6)
    services.submission_select(submission_id=scored.id, user=user)
    rerun.refresh_from_db()
    assert len(rerun.previous_evaluation_ids) == 2
    return {"user": user, "scored": scored, "rerun": rerun, "queued": queued}


def pages(viewer) -> dict[str, str]:
    board = f"/events/{EVENT}/leaderboard/"
    return {
        "event list": "/events/",
        "event page": f"/events/{EVENT}/",
        "leaderboard page": board,
        "leaderboard page 2": f"{board}?page=2&page_size=10",
        "competition board": f"{board}?board=competition",
        "leaderboard table": f"{board}table/",
        "submission page": f"/submissions/{viewer['scored'].id}/",
        "submission page (re-run twice)": f"/submissions/{viewer['rerun'].id}/",
        "submission page (queued)": f"/submissions/{viewer['queued'].id}/",
        "submission status (queued)": f"/submissions/{viewer['queued'].id}/status/",
        "my submissions": "/my/submissions/",
        "my submissions in the event (rank over time)": f"/my/submissions/?event={EVENT}",
        "team page (rank over time)": f"/events/{EVENT}/team/",
        "sandbox": f"/events/{EVENT}/sandbox/",
        "API team history": f"/api/v1/events/{EVENT}/team/history/",
        "API board": f"/api/v1/events/{EVENT}/leaderboard/",
        "API board, team filter": f"/api/v1/events/{EVENT}/leaderboard/?team=viewer",
        "API submissions": "/api/v1/submissions/",
        "API submission": f"/api/v1/submissions/{viewer['rerun'].id}/",
        "API event": f"/api/v1/events/{EVENT}/",
        "health": "/api/v1/health/",
    }


def query_counts(client: Client, viewer) -> dict[str, int]:
    counts = {}
    for name, url in pages(viewer).items():
        client.get(url)  # the session is cached on a first request, as in production
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        counts[name] = len(queries)
    return counts


def test_every_page_costs_the_same_few_queries_however_big_the_event(event, viewer):
    client = Client()
    client.force_login(viewer["user"])
    grow(event, 0, 6)
    small = query_counts(client, viewer)
    assert max(small.values()) <= MAX_QUERIES, small

    grow(event, 6, 12)
    assert Submission.objects.of_event(event).count() == 3 + 2 * 18
    assert query_counts(client, viewer) == small


def test_an_organiser_reads_the_private_board_and_any_submission_in_few_queries(event, viewer):
    grow(event, 0, 8)
    client = Client()
    client.force_login(event.admins.get())
    other = Submission.objects.of_event(event).exclude(team__name="viewer").first()
    for url in (f"/events/{EVENT}/leaderboard/?board=private", "/organiser/",
                f"/submissions/{other.id}/", f"/submissions/{viewer['rerun'].id}/",
                f"/api/v1/events/{EVENT}/leaderboard/?board=private"):
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert len(queries) <= MAX_QUERIES, (url, [q["sql"][:120] for q in queries])
        if url.startswith("/submissions/"):
            assert "Organise" in page  # the navigation's link, from the user's own query


def test_a_board_counts_its_rows_once_per_version(event, viewer):
    grow(event, 0, 3)
    client = Client()
    client.force_login(viewer["user"])
    url = f"/api/v1/events/{EVENT}/leaderboard/"

    def read() -> tuple[dict, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            data = client.get(url, {"page_size": 2}).json()
        return data, [q["sql"] for q in queries if "COUNT(*)" in q["sql"]]

    first, counted = read()
    assert counted and (first["count"], first["my_team"]["rank"]) == (8, 1)
    again, counted = read()
    assert again == first and counted == []  # the same version: from the cache
    # A better submission of another team: a new version, counted again.
    score(submit(event, signed_up("newcomer", event), "best"), 0.99, 0.5)
    changed, counted = read()
    assert counted and (changed["count"], changed["my_team"]) == (
        9, {"name": "viewer", "rank": 2, "page": 1})
