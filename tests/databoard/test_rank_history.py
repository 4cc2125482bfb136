"""A team's rank over time: replayed from the leaderboard in submission order,
shown as server-drawn pictures on the team and my-submissions pages, and in
the API."""
import re

import pytest
from django.contrib.auth import get_user_model

from databoard.rank_history import team_rank_history
from tests.databoard.test_api import EVENT, client_for, make_event, submit_scored

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return make_event()


def _team(event, username):
    user = get_user_model().objects.get(username=username)
    return user, user.team_memberships.get(team__event=event).team


def _race(event):
    """alice 0.80; bob 0.90 (alice second); alice 0.70 (no change); alice 0.95
    (alice first again); carol 0.99 (alice second of three)."""
    submit_scored(event, "alice", valid=0.80, name="a1")
    alice, _ = _team(event, "alice")
    submit_scored(event, "bob", valid=0.90, name="b1")
    submit_scored(event, "", valid=0.70, name="a2", user=alice)
    submit_scored(event, "", valid=0.95, name="a3", user=alice)
    submit_scored(event, "carol", valid=0.99, name="c1")
    return alice


def test_the_rank_follows_each_teams_best_score_in_submission_order(event):
    _race(event)
    _, team = _team(event, "alice")

    history = team_rank_history(event=event, team=team)

    assert [(p["rank"], p["teams"], p["best"], p["best_submission"])
            for p in history["points"]] == [
        (1, 1, 0.80, "a1"), (2, 2, 0.80, "a1"), (1, 2, 0.95, "a3"), (2, 3, 0.95, "a3")]
    assert [(s["submission"], s["value"]) for s in history["submissions"]] == [
        ("a1", 0.80), ("a2", 0.70), ("a3", 0.95)]
    assert history["score"]["name"] == "acc"


def test_a_team_without_a_score_has_no_rank_yet(event):
    _race(event)
    submit_scored(event, "dave", valid=None, name="d1")
    _, team = _team(event, "dave")
    assert team_rank_history(event=event, team=team)["points"] == []


def test_ties_go_to_the_team_that_got_there_first(event):
    submit_scored(event, "erin", valid=0.9, name="e1")
    submit_scored(event, "fred", valid=0.9, name="f1")
    assert team_rank_history(event=event, team=_team(event, "fred")[1])["points"][-1][
        "rank"] == 2


def test_the_team_page_draws_the_rank_and_best_score_over_time(client, event):
    alice = _race(event)
    client.force_login(alice)

    page = client.get(f"/events/{EVENT}/team/").content.decode()

    section = page[page.index('id="rank-over-time"'):]
    assert "is <strong>2</strong> of 3 teams" in section
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", section, flags=re.S)
    assert len(svgs) == 2
    rank_svg, best_svg = svgs
    assert rank_svg.count("<circle") == 4  # one dot per change
    assert "rank 2 of 3 teams, best acc 0.95" in rank_svg
    assert best_svg.count("<circle") == 3  # the team's scored submissions
    assert "<script" not in section and "https://" not in section

    mine = client.get(f"/my/submissions/?event={EVENT}").content.decode()
    assert 'id="rank-over-time"' in mine and "is <strong>2</strong> of 3 teams" in mine


def test_before_any_score_the_page_says_so(client, event):
    submit_scored(event, "gina", valid=None, name="g1")
    user, _ = _team(event, "gina")
    client.force_login(user)
    page = client.get(f"/events/{EVENT}/team/").content.decode()
    assert "its rank shows here once one is scored" in page


def test_the_api_gives_the_same_history(event):
    alice = _race(event)
    body = client_for(alice).get(f"/api/v1/events/{EVENT}/team/history/").json()
    assert body["team"] == "alice"
    assert [p["rank"] for p in body["points"]] == [1, 2, 1, 2]
    assert [p["teams"] for p in body["points"]] == [1, 2, 2, 3]
    response = client_for(get_user_model().objects.create_user("nobody")).get(
        f"/api/v1/events/{EVENT}/team/history/")
    assert response.status_code == 404
    assert "no team" in response.json()["error"]["message"]
