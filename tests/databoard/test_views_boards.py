"""Leaderboards, code/diff/import in the collaborative phase, and pictures.

Most tests write scores as the scorer would (so that ranks and precisions
are chosen); one module-level fixture has three iris submissions evaluated
for real by a Celery worker, and the tests that read it share it.
"""
import csv
import io
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from databoard import leaderboard_selectors, services
from databoard.models import Event, SandboxFile, SandboxImport, Submission, SubmissionCredit
from datarun import selectors as datarun_selectors
from datarun import services as datarun_services
from datarun.models import Evaluation, EvaluationScore, FoldRun, FoldScore, Problem, ScoreType
from datarun.signals import evaluation_scored
from datarun.states import RunState
from tests.conftest import EXAMPLES
from tests.databoard.test_api import EVENT, STARTING_KIT, make_event, make_user, signed_up

pytestmark = pytest.mark.django_db

PAST = timedelta(days=-1)
FUTURE = timedelta(days=1)
BOARD = f"/events/{EVENT}/leaderboard/"
CHANGED_KIT = STARTING_KIT.replace(b"max_iter", b"max_iter_changed", 1) + (
    b"\n# tuned by alice <script>alert(1)</script>\n")


def submit(event: Event, user, name: str, content: bytes = STARTING_KIT) -> Submission:
    return services.submission_create(event=event, user=user, name=name,
                                      files={"estimator.py": content})


def score(submission: Submission, valid: float | None, test: float | None, *,
          std: float = 0.0123) -> None:
    """Every fold and the evaluation scored; ``valid``/``test`` are the official
    (acc) bagged scores, the means are 0.01 lower; error = 1 - acc."""
    evaluation = Evaluation.objects.get(id=submission.evaluation_id)
    score_types = list(ScoreType.objects.filter(problem=evaluation.problem).order_by("index"))

    def value(st, v):
        if v is None:
            return None
        return {"acc": v, "error": 1 - v}.get(st.name, 0.5)

    for fold in evaluation.fold_runs.all():
        FoldRun.objects.filter(id=fold.id).update(
            state=RunState.SCORED, train_time=0.25, valid_time=0.01, test_time=0.02,
            wall_time=1.5 + fold.fold_index, cpu_time=1.2, peak_memory=150 * 2**20)
        FoldScore.objects.bulk_create(
            FoldScore(fold_run=fold, score_type=st, step=step,
                      value=value(st, {"train": 0.99, "valid": valid, "test": test}[step]))
            for st in score_types for step in ("train", "valid", "test"))
    EvaluationScore.objects.bulk_create(
        EvaluationScore(evaluation=evaluation, score_type=st, step=step,
                        mean=None if v is None else value(st, v) - 0.01, std=std,
                        bagged=value(st, v))
        for st in score_types for step, v in (("train", 0.99), ("valid", valid), ("test", test)))
    evaluation.state = RunState.SCORED
    evaluation.finished_at = timezone.now()
    evaluation.save(update_fields=["state", "finished_at"])
    # What the scorer sends once the evaluation is scored (the leaderboard listens).
    evaluation_scored.send(sender=Evaluation, evaluation_id=evaluation.id)


def text(response) -> str:
    return response.content.decode()


def table(page: str) -> str:
    return page[page.index('<table class="leaderboard">'):page.index("</table>")]


def row_order(page: str, names) -> list[str]:
    body = table(page)
    return sorted(names, key=lambda n: body.index(f">{n}<"))


@pytest.fixture
def event():
    return make_event()


@pytest.fixture
def world(event):
    """Alice (public 0.91234, private 0.81111) and Bob (0.95, 0.70); an event admin."""
    alice, bob = signed_up("alice", event), signed_up("bob", event)
    admin = make_user("organiser")
    event.admins.add(admin)
    alices = submit(event, alice, "alices")
    bobs = submit(event, bob, "bobs", CHANGED_KIT)
    score(alices, 0.91234, 0.81111)
    score(bobs, 0.95, 0.70)
    return {"event": event, "alice": alice, "bob": bob, "admin": admin,
            "alices": alices, "bobs": bobs}


# --- leaderboards -------------------------------------------------------------------

def test_public_board_shows_scores_at_their_precision_and_no_test_before_closing(client, world):
    page = text(client.get(BOARD))

    assert row_order(page, ["alices", "bobs"]) == ["bobs", "alices"]  # higher acc first
    body = table(page)
    assert "0.912" in body and "0.9123" not in body  # acc has precision 3
    assert "0.088" in body  # error = 1 - acc, the second score type
    assert body.index("acc") < body.index("error") and "★" in body  # official first, marked
    assert "0.811" not in body and "0.700" not in body  # test scores are private
    assert "Test time" not in body
    assert "?board=private" not in page  # no private tab
    assert "?board=competition" not in page  # not a competitive event
    assert "Test (private) scores are shown when the event closes" in page
    assert "150 MiB" in body and "6.00 s" in body  # peak memory, CPU time of 5 folds
    assert 'hx-trigger="every 10s"' in page


def test_the_whole_board_as_csv_for_grading(client, world):
    """Page link, web download and API answer the same CSV; test scores only
    where the viewer may see them."""
    assert f'href="/events/{EVENT}/leaderboard.csv?board=public&amp;kind=bagged"' in text(
        client.get(BOARD))
    response = client.get(f"/events/{EVENT}/leaderboard.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="{EVENT}-public-leaderboard.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text(response))))
    assert [(r["rank"], r["team"], r["members"], r["submission"]) for r in rows] == [
        ("1", "bob", "bob", "bobs"), ("2", "alice", "alice", "alices")]
    assert float(rows[1]["acc_valid_bagged"]) == pytest.approx(0.91234)  # full precision
    assert "acc_test_bagged" not in rows[0]  # private until the event closes
    assert client.get(f"/api/v1/events/{EVENT}/leaderboard.csv").content == response.content
    mean = list(csv.DictReader(io.StringIO(text(client.get(
        f"/api/v1/events/{EVENT}/leaderboard.csv?kind=mean")))))
    assert float(mean[1]["acc_valid_mean"]) == pytest.approx(0.90234)

    refused = client.get(f"/api/v1/events/{EVENT}/leaderboard.csv?board=private")
    assert refused.status_code == 403
    assert "the private leaderboard opens" in refused.json()["error"]["message"]
    client.force_login(world["admin"])
    private = list(csv.DictReader(io.StringIO(text(client.get(
        f"/events/{EVENT}/leaderboard.csv?board=private")))))
    assert [r["submission"] for r in private] == ["alices", "bobs"]  # ranked by test
    assert float(private[0]["acc_test_bagged"]) == pytest.approx(0.81111)


def test_private_board_is_refused_before_closing(client, world):
    client.force_login(world["alice"])
    response = client.get(BOARD + "?board=private")
    assert response.status_code == 403
    assert "the private leaderboard opens when the event closes" in text(response)


def test_event_admin_sees_the_private_board_before_closing(client, world):
    client.force_login(world["admin"])
    assert "?board=private" in text(client.get(BOARD))
    page = text(client.get(BOARD + "?board=private"))
    assert row_order(page, ["alices", "bobs"]) == ["alices", "bobs"]  # ranked by test
    assert "0.811" in table(page) and "0.700" in table(page)
    assert "Test time" in table(page)


def test_everyone_sees_private_scores_once_the_event_has_closed(client, world):
    Event.objects.filter(id=world["event"].id).update(closes_at=timezone.now() + PAST)
    public = text(client.get(BOARD))
    assert "?board=private" in public
    page = text(client.get(BOARD + "?board=private"))
    assert row_order(page, ["alices", "bobs"]) == ["alices", "bobs"]
    assert "0.811" in table(page)


def test_mean_scores_with_their_spread(client, world):
    page = text(client.get(BOARD + "?kind=mean"))
    assert "0.902" in table(page) and "± 0.012" in table(page)
    assert "0.912" not in table(page)
    response = client.get(BOARD + "?kind=best")
    assert response.status_code == 400 and "the leaderboard kind is" in text(response)


def test_a_missing_score_ranks_last(client, world):
    carol = signed_up("carol", world["event"])
    carols = submit(world["event"], carol, "carols")
    score(carols, None, None)
    page = text(client.get(BOARD))
    assert row_order(page, ["alices", "bobs", "carols"]) == ["bobs", "alices", "carols"]
    row = table(page).split(">carols<")[1].split("</tr>")[0]
    assert "—" in row


def test_rows_link_to_what_the_viewer_may_open(client, world):
    alices, bobs = world["alices"], world["bobs"]
    anonymous = table(text(client.get(BOARD)))
    assert "/submissions/" not in anonymous

    client.force_login(world["alice"])
    mine = table(text(client.get(BOARD)))
    assert f'href="/submissions/{alices.id}/"' in mine
    assert f'href="/submissions/{alices.id}/code/"' in mine
    assert f"/submissions/{bobs.id}/" not in mine  # before the collaborative phase

    Event.objects.filter(id=world["event"].id).update(public_opens_at=timezone.now() + PAST)
    collaborative = table(text(client.get(BOARD)))
    assert f'href="/submissions/{bobs.id}/code/"' in collaborative
    assert f'href="/submissions/{bobs.id}/"' not in collaborative  # details stay the team's


def test_contributivity_as_a_percentage(client, world):
    Submission.objects.filter(id=world["bobs"].id).update(contributivity=0.625)
    body = table(text(client.get(BOARD)))
    assert "62.5 %" in body
    assert body.split(">alices<")[1].split("</tr>")[0].count("—") == 1  # not computed


def test_the_live_table_alone(client, world):
    response = client.get(f"/events/{EVENT}/leaderboard/table/?board=public")
    assert response.status_code == 200
    assert text(response).startswith('<div id="leaderboard"')
    assert "<html" not in text(response) and "bobs" in text(response)


def test_unknown_boards_and_events_are_404(client, world):
    assert client.get(BOARD + "?board=competition").status_code == 404  # not competitive
    assert client.get(BOARD + "?board=nope").status_code == 404
    assert client.get("/events/nope/leaderboard/").status_code == 404
    hidden = Event.objects.create(name="hidden", title="hidden", problem_name="iris",
                                  is_public=False)
    assert client.get(f"/events/{hidden.name}/leaderboard/").status_code == 404


def test_competition_board_selection_and_rank_change(client, event):
    Event.objects.filter(id=event.id).update(is_competitive=True)
    alice, bob = signed_up("alice", event), signed_up("bob", event)
    a1, a2 = submit(event, alice, "a-public"), submit(event, alice, "a-private")
    b1 = submit(event, bob, "b-only")
    score(a1, 0.90, 0.60)
    score(a2, 0.80, 0.95)
    score(b1, 0.85, 0.70)
    competition = BOARD + "?board=competition"

    client.force_login(alice)
    page = text(client.get(competition))
    assert "?board=competition" in page
    assert row_order(page, ["a-public", "b-only"]) == ["a-public", "b-only"]
    assert "a-private" not in table(page)  # a team's best public score by default
    assert "Select for the competition" in text(client.get(BOARD))

    response = client.post(f"/submissions/{a2.id}/select/", follow=True)
    assert response.redirect_chain[-1][0] == competition
    page = text(response)
    assert "Submission a-private is your team&#x27;s selection" in page
    assert row_order(page, ["a-private", "b-only"]) == ["b-only", "a-private"]
    assert "a-public" not in table(page) and "selected" in table(page)
    assert "▲" not in table(page) and "▼" not in table(page)  # no change before closing

    client.force_login(bob)
    assert client.post(f"/submissions/{a1.id}/select/").status_code == 404  # not his team's

    Event.objects.filter(id=event.id).update(closes_at=timezone.now() + PAST)
    client.force_login(alice)
    page = text(client.get(competition))
    assert row_order(page, ["a-private", "b-only"]) == ["a-private", "b-only"]
    assert re.search(r"▲ 1</span>.*?a-private", table(page), re.S)
    assert re.search(r"▼ 1</span>.*?b-only", table(page), re.S)

    response = client.post(f"/submissions/{a1.id}/select/")
    assert response.status_code == 400
    assert "the selection is final" in text(response)
    assert "Select for the competition" not in text(response)


def test_leaderboard_rows_rank_the_selected_submissions(event, client):
    """The selector alone: the competition board keeps one row per team."""
    Event.objects.filter(id=event.id).update(is_competitive=True)
    event.refresh_from_db()
    alice, bob = signed_up("alice", event), signed_up("bob", event)
    a1, a2, b1 = (submit(event, alice, "a1"), submit(event, alice, "a2"),
                  submit(event, bob, "b1"))
    score(a1, 0.9, 0.5)
    score(a2, 0.7, 0.9)
    score(b1, None, None)
    rows = leaderboard_selectors.leaderboard_rows(
        event=event, user=alice, board="competition")["rows"]
    assert [(r["submission"], r["rank"]) for r in rows] == [("a1", 1), ("b1", 2)]


# --- code, diff, import ------------------------------------------------------------------

def test_code_of_another_team_is_404_before_the_public_opening(client, world):
    Event.objects.filter(id=world["event"].id).update(public_opens_at=timezone.now() + FUTURE)
    url = f"/submissions/{world['bobs'].id}/code/"
    assert client.get(url).status_code == 404  # anonymous
    client.force_login(world["alice"])
    assert client.get(url).status_code == 404
    assert client.get(f"/submissions/{world['bobs'].id}/diff/").status_code == 404
    client.force_login(world["bob"])
    assert client.get(url).status_code == 200
    client.force_login(world["admin"])
    assert client.get(url).status_code == 200


def test_code_of_another_team_is_shown_after_the_public_opening(client, world):
    Event.objects.filter(id=world["event"].id).update(public_opens_at=timezone.now() + PAST)
    url = f"/submissions/{world['bobs'].id}/code/"
    assert client.get(url).status_code == 404  # anonymous: never
    client.force_login(world["alice"])
    response = client.get(url)
    assert response.status_code == 200
    page = text(response)
    assert "estimator.py" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    n_lines = CHANGED_KIT.decode().count("\n")
    assert f'<td class="lineno">{n_lines}</td>' in page
    assert "Import into my sandbox" in page
    assert client.get("/submissions/999999/code/").status_code == 404


def test_code_page_shows_credits_both_ways(client, world):
    SubmissionCredit.objects.create(submission=world["bobs"], source=world["alices"])
    client.force_login(world["admin"])
    bobs_page = text(client.get(f"/submissions/{world['bobs'].id}/code/"))
    assert "took code from" in bobs_page and "team alice's submission" in bobs_page
    alices_page = text(client.get(f"/submissions/{world['alices'].id}/code/"))
    assert "reused by" in alices_page and "team bob's submission" in alices_page


def test_import_fills_the_sandbox_and_is_credited(client, world):
    event = world["event"]
    url = f"/submissions/{world['bobs'].id}/import/"
    client.force_login(world["alice"])
    assert client.post(url).status_code == 404  # before the public opening
    assert not SandboxFile.objects.exists()

    Event.objects.filter(id=event.id).update(public_opens_at=timezone.now() + PAST)
    response = client.post(url, follow=True)
    assert response.redirect_chain[0][0] == f"/events/{EVENT}/sandbox/"
    assert "your next submission will credit it" in text(response)
    team = services.team_of(event=event, user=world["alice"])
    sandbox = SandboxFile.objects.get(team=team, file_name="estimator.py")
    assert sandbox.content == CHANGED_KIT.decode()
    assert SandboxImport.objects.filter(team=team, source=world["bobs"]).exists()


def test_import_needs_a_login_and_a_post(client, world):
    url = f"/submissions/{world['alices'].id}/import/"
    assert client.post(url)["Location"].startswith("/accounts/login/")
    client.force_login(world["alice"])
    assert client.get(url).status_code == 405


def test_diff_marks_changed_lines_against_the_viewers_latest_submission(client, world):
    Event.objects.filter(id=world["event"].id).update(public_opens_at=timezone.now() + PAST)
    client.force_login(world["alice"])
    page = text(client.get(f"/submissions/{world['bobs'].id}/diff/"))
    assert "From <strong>alice/alices</strong>" in page
    assert re.search(r'class="line half diff-del">[^<]*max_iter=', page)
    assert re.search(r'class="line half diff-add">[^<]*max_iter_changed', page)
    assert re.search(r'class="line half diff-add"># tuned by alice &lt;script&gt;', page)

    unified = text(client.get(f"/submissions/{world['bobs'].id}/diff/?view=unified"))
    assert re.search(r'class="line diff-add">\+[^<]*max_iter_changed', unified)
    assert re.search(r'class="line diff-del">-[^<]*max_iter=', unified)


def test_diff_against_the_sandbox_and_unreadable_submissions(client, world):
    event = world["event"]
    carol = signed_up("carol", event)
    carols = submit(event, carol, "carols")
    client.force_login(world["alice"])
    services.sandbox_file_save(event=event, user=world["alice"], file_name="estimator.py",
                               content="print('mine')\n")
    page = text(client.get(f"/submissions/{world['alices'].id}/diff/?against=sandbox"))
    assert "From <strong>your sandbox</strong>" in page
    assert re.search(r"diff-del\">print\(&#x27;mine&#x27;\)", page)
    # Carol's code is not readable before the public opening.
    response = client.get(f"/submissions/{world['alices'].id}/diff/?against={carols.id}")
    assert response.status_code == 404


# --- pictures ---------------------------------------------------------------------------

def test_event_pictures_plot_every_scored_submission(client, world):
    services.team_rename(team=services.team_of(event=world["event"], user=world["bob"]),
                         user=world["bob"], name="<script>x</script>")
    response = client.get(f"/events/{EVENT}/pictures/")
    assert response.status_code == 200
    page = text(response)
    score_chart, resource_chart = re.findall(r"<svg .*?</svg>", page, re.S)
    assert score_chart.count("<circle") == 2
    assert 'class="step"' in score_chart
    assert "&lt;script&gt;x&lt;/script&gt; / bobs: 0.950" in score_chart
    assert "<script>x" not in page
    assert "0.811" not in page  # validation only
    assert resource_chart.count("<circle") == 2 and "CPU 6.00 s" in resource_chart


def test_submission_pictures_per_fold(client, world):
    url = f"/submissions/{world['alices'].id}/pictures/"
    assert client.get(url)["Location"].startswith("/accounts/login/")
    client.force_login(world["bob"])
    assert client.get(url).status_code == 404

    client.force_login(world["alice"])
    page = text(client.get(url))
    charts = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(charts) == 3 + 2  # acc, error, nll; time and memory per fold
    assert charts[0].count("<circle") == 5 * 2  # train and valid, five folds
    assert charts[0].count('class="mean"') == 2
    assert "fold 0, valid: 0.912" in charts[0] and ">test<" not in charts[0]
    assert charts[3].count('class="bar"') == 5 * 2  # wall and CPU time
    assert "fold 4, wall time: 5.5 s" in charts[3]
    assert charts[4].count('class="bar"') == 5 and "150 MiB" in charts[4]

    client.force_login(world["admin"])
    charts = re.findall(r"<svg .*?</svg>", text(client.get(url)), re.S)
    assert charts[0].count("<circle") == 5 * 3 and "fold 2, test: 0.811" in charts[0]


def test_submission_pictures_when_every_fold_scored_the_same(client, world):
    # Equal scores, one of them off by float noise (as an average can be):
    # the axis still has a range, the page draws.
    acc = FoldScore.objects.filter(fold_run__evaluation_id=world["alices"].evaluation_id,
                                   score_type__name="acc")
    for i, fold_score in enumerate(acc.order_by("fold_run__fold_index", "step")):
        fold_score.value = 0.1 + 0.2 if i % 2 else 0.3
        fold_score.save(update_fields=["value"])
    client.force_login(world["alice"])
    response = client.get(f"/submissions/{world['alices'].id}/pictures/")
    assert response.status_code == 200
    assert "fold 1, valid: 0.300" in text(response)


def test_a_nul_character_in_a_page_url_is_a_bad_request(client, world):
    response = client.get(BOARD + "?board=public%00")
    assert response.status_code == 400
    assert "NUL character" in text(response)


# --- evaluated for real ----------------------------------------------------------------

LIVE = "boards-live"


@pytest.fixture(scope="module")
def live(django_db_setup, django_db_blocker, _workers):
    """Three iris submissions (starting kit, random forest, one failing in fit)
    evaluated by a real worker; committed, shared by the tests below, removed after."""
    kit = EXAMPLES / "iris" / "submissions"
    with django_db_blocker.unblock():
        _workers.use("local")
        datarun_services.problem_import_ramp_kit(path=EXAMPLES / "iris", name=LIVE)
        event = Event.objects.create(name=LIVE, title="Live iris", problem_name=LIVE)
        users = [get_user_model().objects.create_user(f"boards-{n}", password="pw-boards-1234")
                 for n in ("ann", "ben", "cid")]
        submissions = []
        for user, folder in zip(users, ("starting_kit", "random_forest", "error_in_fit"),
                                strict=True):
            services.event_signup(event=event, user=user)
            submissions.append(submit(event, user, folder,
                                      (kit / folder / "estimator.py").read_bytes()))
        ids = [s.evaluation_id for s in submissions]
        deadline = time.monotonic() + 180
        while any(s["state"] not in ("scored", "error", "cancelled")
                  for s in datarun_selectors.evaluation_states(ids).values()):
            assert time.monotonic() < deadline, datarun_selectors.evaluation_states(ids)
            time.sleep(0.3)
    yield {"event": event, "users": users, "submissions": submissions}
    _workers.stop()  # later tests may want no worker answering (they start one if they need it)
    with django_db_blocker.unblock():
        event.delete()
        Evaluation.objects.filter(problem__name=LIVE).delete()
        Problem.objects.filter(name=LIVE).delete()
        get_user_model().objects.filter(id__in=[u.id for u in users]).delete()


def test_really_scored_submissions_on_the_leaderboard_and_pictures(client, live):
    page = text(client.get(f"/events/{LIVE}/leaderboard/"))
    body = table(page)
    assert "starting_kit" in body and "random_forest" in body
    assert "error_in_fit" not in body  # failed: not on the board
    assert re.search(r'<td class="num">0\.\d{3}</td>', body)
    assert re.findall(r'<td class="num">(\d+)</td>', body)[:2] == ["1", "2"]

    pictures = text(client.get(f"/events/{LIVE}/pictures/"))
    assert re.findall(r"<svg .*?</svg>", pictures, re.S)[0].count("<circle") == 2

    client.force_login(live["users"][1])
    forest = live["submissions"][1]
    charts = re.findall(r"<svg .*?</svg>",
                        text(client.get(f"/submissions/{forest.id}/pictures/")), re.S)
    assert charts[0].count("<circle") == 5 * 2
    assert charts[3].count('class="bar"') == 5 * 2


def test_side_by_side_keeps_a_few_unchanged_lines_around_changes():
    from databoard.views.boards import side_by_side

    old = [f"line {i}" for i in range(20)]
    new = old[:10] + ["changed"] + old[11:]
    rows = side_by_side(old, new, context=3)
    assert [r.get("gap", False) for r in rows].count(True) == 2
    changed = [r for r in rows if r.get("new_class") == "diff-add"]
    assert changed == [{"old_no": 11, "old": "line 10", "old_class": "diff-del",
                        "new_no": 11, "new": "changed", "new_class": "diff-add"}]
    assert len(rows) == 2 + 3 + 1 + 3
