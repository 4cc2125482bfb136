"""Submission pages: my submissions, one submission's page and its live status.

Scores and failures are written as the worker and the scorer would write them;
one test runs a real Celery worker end to end.
"""
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from databoard import services
from databoard.models import Event, Submission
from datarun.models import Evaluation, EvaluationScore, FoldRun, FoldScore, ScoreType
from datarun.signals import evaluation_scored
from datarun.states import ErrorKind, RunState
from tests.databoard.test_api import EVENT, STARTING_KIT, make_event, make_user, signed_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return make_event()


@pytest.fixture
def alice(event, client):
    user = signed_up("alice", event)
    client.force_login(user)
    return user


def submit(event: Event, user, name: str = "first") -> Submission:
    return services.submission_create(event=event, user=user, name=name,
                                      files={"estimator.py": STARTING_KIT})


def score(submission: Submission, *, acc: float = 0.9, test_acc: float = 0.8) -> None:
    """Every fold and the evaluation scored, as the worker and scorer would leave them."""
    evaluation = Evaluation.objects.get(id=submission.evaluation_id)
    score_types = list(ScoreType.objects.filter(problem=evaluation.problem).order_by("index"))
    for fold in evaluation.fold_runs.all():
        FoldRun.objects.filter(id=fold.id).update(
            state=RunState.SCORED, worker_host="worker-7", isolation="bubblewrap",
            train_time=0.25, valid_time=0.01, test_time=0.02, wall_time=1.5, cpu_time=1.2,
            peak_memory=150 * 2**20)
        FoldScore.objects.bulk_create(
            FoldScore(fold_run=fold, score_type=st, step=step,
                      value={"train": 0.99, "valid": acc, "test": test_acc}[step] + st.index)
            for st in score_types for step in ("train", "valid", "test"))
    EvaluationScore.objects.bulk_create(
        EvaluationScore(evaluation=evaluation, score_type=st, step=step,
                        mean={"train": 0.99, "valid": acc, "test": test_acc}[step] + st.index,
                        std=0.0125, bagged=None if step == "train" else 0.95 + st.index)
        for st in score_types for step in ("train", "valid", "test"))
    evaluation.state = RunState.SCORED
    evaluation.finished_at = timezone.now()
    evaluation.save(update_fields=["state", "finished_at"])
    # What the scorer sends once the evaluation is scored (the leaderboard listens).
    evaluation_scored.send(sender=Evaluation, evaluation_id=evaluation.id)


def fail(submission: Submission, *, message: str, traceback: str,
         kind: str = ErrorKind.PARTICIPANT) -> None:
    Evaluation.objects.filter(id=submission.evaluation_id).update(
        state=RunState.ERROR, error_kind=kind, error_message=message, error_traceback=traceback,
        finished_at=timezone.now())
    FoldRun.objects.filter(evaluation_id=submission.evaluation_id, fold_index=0).update(
        state=RunState.ERROR, error_kind=kind, error_message=message, error_traceback=traceback)


# The submission's state, in its status line.
STATUS = 'id="submission-state" class="state state-{0}">{0}</span>'


def _text(response) -> str:
    return response.content.decode()


# --- my submissions ------------------------------------------------------------------

def test_my_submissions_lists_mine_across_events_with_state_and_public_score(client, event,
                                                                            alice):
    other = Event.objects.create(name="iris-bis", title="Iris again", problem_name="iris")
    services.event_signup(event=other, user=alice)
    scored = submit(event, alice, "scored-one")
    score(scored, acc=0.9333)
    submit(other, alice, "waiting-one")
    submit(event, signed_up("bob", event), "bobs-one")

    page = _text(client.get("/my/submissions/"))

    assert f'href="/submissions/{scored.id}/"' in page
    assert "scored-one" in page and "waiting-one" in page
    assert "bobs-one" not in page
    assert "state-scored" in page and "state-queued" in page
    assert "Iris again" in page and EVENT in page
    assert "0.950" in page  # the official score, bagged on the validation folds
    assert "0.800" not in page  # never the test score
    assert f"{scored.created_at:%Y-%m-%d %H:%M}" in page

    only_bis = _text(client.get("/my/submissions/?event=iris-bis"))
    assert "waiting-one" in only_bis and "scored-one" not in only_bis


def test_my_submissions_needs_a_login(client):
    response = client.get("/my/submissions/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- one submission ---------------------------------------------------------------------

def test_another_teams_submission_is_404(client, event, alice):
    bobs = submit(event, signed_up("bob", event))

    assert client.get(f"/submissions/{bobs.id}/").status_code == 404
    assert client.get(f"/submissions/{bobs.id}/status/").status_code == 404
    assert client.get("/submissions/999999/").status_code == 404


def test_event_admins_see_any_submission(client, event):
    bobs = submit(event, signed_up("bob", event))
    admin = make_user("organiser")
    event.admins.add(admin)
    client.force_login(admin)

    assert client.get(f"/submissions/{bobs.id}/").status_code == 200


def test_status_fragment_shows_queued_and_the_queue_position(client, event, alice):
    bobs = submit(event, signed_up("bob", event))
    time.sleep(0.01)  # queued strictly after bob's folds
    mine = submit(event, alice)

    response = client.get(f"/submissions/{mine.id}/status/")

    assert response.status_code == 200
    fragment = _text(response)
    assert "<html" not in fragment
    assert STATUS.format("queued") in fragment
    assert "5 fold runs of other submissions ahead in the queue" in fragment
    assert f'hx-get="/submissions/{mine.id}/status/"' in fragment
    assert 'hx-trigger="every 2s"' in fragment
    client.force_login(bobs.submitted_by)
    assert "next in the queue" in _text(client.get(f"/submissions/{bobs.id}/status/"))


def test_status_fragment_counts_folds_done_while_running(client, event, alice):
    mine = submit(event, alice)
    Evaluation.objects.filter(id=mine.evaluation_id).update(state=RunState.RUNNING)
    folds = FoldRun.objects.filter(evaluation_id=mine.evaluation_id).order_by("fold_index")
    FoldRun.objects.filter(id__in=[f.id for f in folds[:2]]).update(state=RunState.SCORED)
    FoldRun.objects.filter(id=folds[2].id).update(state=RunState.RUNNING)

    fragment = _text(client.get(f"/submissions/{mine.id}/status/"))

    assert STATUS.format("running") in fragment
    assert "fold 2 of 5 done" in fragment
    assert "hx-trigger" in fragment


def test_page_of_a_queued_submission_polls_its_status(client, event, alice):
    mine = submit(event, alice)

    page = _text(client.get(f"/submissions/{mine.id}/"))

    assert f'hx-get="/submissions/{mine.id}/status/"' in page
    assert "next in the queue" in page


def test_final_status_stops_polling_and_reloads_the_page(client, event, alice):
    mine = submit(event, alice)
    score(mine)

    plain = client.get(f"/submissions/{mine.id}/status/")
    polled = client.get(f"/submissions/{mine.id}/status/", HTTP_HX_REQUEST="true")

    assert "hx-trigger" not in _text(plain) and "hx-get" not in _text(plain)
    assert "HX-Refresh" not in plain
    assert polled["HX-Refresh"] == "true"
    assert "hx-trigger" not in _text(client.get(f"/submissions/{mine.id}/"))


def test_scored_submission_shows_folds_and_scores_without_test_before_closing(client, event,
                                                                              alice):
    mine = submit(event, alice)
    score(mine, acc=0.91234, test_acc=0.8)

    page = _text(client.get(f"/submissions/{mine.id}/"))

    assert STATUS.format("scored") in page
    table = page[page.index('class="folds"'):page.index("</table>")]
    assert table.count("<tr>") == 2 + 5  # two header rows, one row per fold
    assert "0.912" in table and "0.91234" not in table  # at the score type's precision
    assert "250 ms" in table and "1.50 s" in table and "150 MiB" in table
    assert "worker-7" in table
    # One isolation for every fold: said once above the table, not on each row.
    assert "bubblewrap" not in table and "Isolation" not in table
    assert page.count("bubblewrap") == 1
    assert '<p class="muted" id="isolation">Every fold ran with: bubblewrap</p>' in page
    assert "Test time" not in table
    assert "0.800" not in page  # test scores stay private until the event closes
    assert "0.912 ± 0.013" in page  # mean ± std
    assert "0.950" in page  # bagged
    assert "Test scores are shown when the event closes" in page
    assert f'href="/submissions/{mine.id}/code/"' in page
    assert "estimator.py" in page


def test_folds_isolated_differently_show_it_per_row(client, event, alice):
    mine = submit(event, alice)
    score(mine)
    FoldRun.objects.filter(evaluation_id=mine.evaluation_id, fold_index=0).update(
        isolation="docker", runtime_image="sha256:" + "ab" * 32)

    page = _text(client.get(f"/submissions/{mine.id}/"))

    table = page[page.index('class="folds"'):page.index("</table>")]
    assert "Isolation" in table and table.count("bubblewrap") == 4
    assert "sha256:abab" in table and 'id="isolation"' not in page


def test_test_scores_show_once_the_event_has_closed(client, event, alice):
    mine = submit(event, alice)
    score(mine, test_acc=0.8)
    event.closes_at = timezone.now() - timedelta(minutes=1)
    event.save()

    page = _text(client.get(f"/submissions/{mine.id}/"))

    assert "0.800" in page
    assert "Test time" in page
    assert "Test scores are shown when the event closes" not in page


def test_failed_submission_shows_its_error_and_escaped_traceback(client, event, alice):
    mine = submit(event, alice)
    traceback = ('Traceback (most recent call last):\n  File "estimator.py", line 3, in fit\n'
                 'ValueError: bad <script>alert(1)</script>')
    fail(mine, message="ValueError while training in fold 0: bad input", traceback=traceback)

    page = _text(client.get(f"/submissions/{mine.id}/"))

    assert STATUS.format("error") in page
    assert "Your submission failed" in page
    assert "ValueError while training in fold 0: bad input" in page
    assert re.search(r'<pre class="traceback">Traceback \(most recent call last\):\n'
                     r'  File &quot;estimator.py&quot;, line 3', page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_platform_failure_says_it_is_not_the_participants_fault(client, event, alice):
    mine = submit(event, alice)
    fail(mine, message="the sandbox failed while running fold 0", traceback="",
         kind=ErrorKind.PLATFORM)

    page = _text(client.get(f"/submissions/{mine.id}/"))

    assert "The platform failed" in page
    assert "does not count against your team's quota" in page


def test_problem_failure_shows_the_participant_no_traceback_and_the_admin_all_of_it(
        client, event, alice):
    mine = submit(event, alice)
    tb = ('Traceback (most recent call last):\n  File "problem.py", line 24, in '
          'train_submission\nKeyError: "None of [\'petal_colour\'] are in the columns"\n')
    fail(mine, message="the problem's own code raised KeyError while training in fold 0",
         traceback=tb, kind=ErrorKind.PROBLEM)

    page = _text(client.get(f"/submissions/{mine.id}/"))

    assert "The problem's own code failed" in page
    assert "does not count against your team's quota" in page
    assert "petal_colour" not in page and "problem.py" not in page
    admin = make_user("organiser")
    event.admins.add(admin)
    client.force_login(admin)
    assert "petal_colour" in _text(client.get(f"/submissions/{mine.id}/"))


def test_reruns_list_the_previous_evaluations(client, event, alice):
    mine = submit(event, alice)
    fail(mine, message="the sandbox failed while running fold 0", traceback="",
         kind=ErrorKind.PLATFORM)
    first_evaluation = mine.evaluation_id
    admin = make_user("organiser")
    event.admins.add(admin)
    services.submission_rerun(submission_id=mine.id, user=admin)

    page = _text(client.get(f"/submissions/{mine.id}/"))

    assert "Previous evaluations" in page
    assert f"#{first_evaluation}" in page
    assert "the sandbox failed while running fold 0" in page
    assert STATUS.format("queued") in page  # the new evaluation


# --- end to end, with a real worker -------------------------------------------------------

@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_submission_from_the_sandbox_is_scored_by_the_worker(celery_worker_process, client):
    event = make_event()
    user = signed_up("alice", event)
    client.force_login(user)

    response = client.post(f"/events/{EVENT}/sandbox/", {"name": "live", "action": "submit"})
    assert response.status_code == 302
    page_url = response["Location"]

    deadline = time.monotonic() + 120
    while True:
        page = _text(client.get(page_url))
        if "hx-trigger" not in page:  # final: the page stopped polling
            break
        assert time.monotonic() < deadline, page
        time.sleep(0.5)

    assert STATUS.format("scored") in page, page
    assert "acc (official)" in page
    table = page[page.index('class="folds"'):page.index("</table>")]
    assert table.count("state-scored") == 5
    assert re.search(r'<td class="num">0\.\d{3}</td>', table)  # accuracies, 3 decimals
    assert "Test scores are shown when the event closes" in page
