"""Organiser pages, through the real URLconf and PostgreSQL.

Submissions are created for real; their fold tasks are queued on commit,
which never happens inside these (rolled back) tests, so they stay queued. A
failed run is written directly, as a worker would.
"""
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from databoard import services
from databoard.models import Event, Profile, Submission, Team
from databoard.services.events import EDITABLE_FIELDS
from datarun import services as datarun_services
from datarun.models import Evaluation, FoldRun
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.django_db

ESTIMATOR = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()


def make_user(username: str, **fields):
    return get_user_model().objects.create_user(username, password=f"pw-{username}-1234",
                                                **fields)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def iris():
    return datarun_services.problem_import_ramp_kit(path=EXAMPLES / "iris")


@pytest.fixture
def event_a(iris):
    return Event.objects.create(name="iris-a", title="Iris A", problem_name="iris")


@pytest.fixture
def event_b(iris):
    return Event.objects.create(name="iris-b", title="Iris B", problem_name="iris")


@pytest.fixture
def organiser(event_a):
    """An admin of event A only."""
    user = make_user("olga")
    event_a.admins.add(user)
    return user


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("root", password="pw-root-1234")


@pytest.fixture
def alice(event_a):
    user = make_user("alice")
    services.event_signup(event=event_a, user=user)
    return user


def submit(event: Event, user, name: str = "first") -> Submission:
    return services.submission_create(event=event, user=user, name=name,
                                      files={"estimator.py": ESTIMATOR})


def rules_data(event: Event, **changes) -> dict:
    """The rules form as the browser posts it, with ``changes``."""
    values = {name: getattr(event, name) for name in EDITABLE_FIELDS} | changes
    data = {}
    for name, value in values.items():
        if value is None or value is False:
            continue  # empty input, unchecked box
        if isinstance(value, datetime):
            value = timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")
        data[name] = "on" if value is True else str(value)
    return data


def organiser_urls(event: Event) -> list[str]:
    return [f"/events/{event.name}/organise/", f"/events/{event.name}/organise/signups/",
            f"/events/{event.name}/organise/submissions/"]


# --- creating an event ---------------------------------------------------------

def test_a_superuser_creates_an_event_from_a_problem(superuser, iris):
    client = client_for(superuser)
    Profile.objects.create(user=superuser, time_zone="Europe/Paris")
    page = client.get("/organiser/events/new/")
    assert page.status_code == 200
    assert '<option value="iris"' in page.content.decode()
    assert "Europe/Paris" in page.content.decode()

    response = client.post("/organiser/events/new/", {
        "name": "iris-2030", "problem_name": "iris", "title": "Iris 2030",
        "description": "Classify **irises**.", "is_public": "on",
        "opens_at": "2030-01-01T10:00", "closes_at": "2030-02-01T10:00",
        "min_submission_interval_s": "60", "max_submissions_per_day": "5",
        "leaderboard_kind": "bagged", "max_team_size": "3",
    })
    assert response.status_code == 302
    assert response["Location"] == "/events/iris-2030/organise/"
    event = Event.objects.get(name="iris-2030")
    # Read in the viewer's zone (Paris is UTC+1 in January), stored in UTC.
    assert event.opens_at == datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    assert (event.problem_name, event.max_submissions_per_day, event.max_team_size) == \
        ("iris", 5, 3)
    overview = client.get(response["Location"])
    assert overview.status_code == 200
    assert "Iris 2030" in overview.content.decode()


def test_creating_an_event_that_closes_before_it_opens_is_refused(superuser, iris):
    response = client_for(superuser).post("/organiser/events/new/", {
        "name": "backwards", "problem_name": "iris", "leaderboard_kind": "bagged",
        "max_team_size": "5", "min_submission_interval_s": "0",
        "opens_at": "2030-02-01T10:00", "closes_at": "2030-01-01T10:00",
    })
    assert response.status_code == 400
    assert "the closing time must come after the opening time" in response.content.decode()
    assert not Event.objects.filter(name="backwards").exists()


def test_only_superusers_create_events(organiser):
    response = client_for(organiser).get("/organiser/events/new/")
    assert response.status_code == 403
    assert "only a superuser creates events" in response.content.decode()


# --- rules -----------------------------------------------------------------------

def test_an_event_admin_edits_the_rules_of_their_event(organiser, event_a):
    client = client_for(organiser)
    page = client.get(f"/events/{event_a.name}/organise/")
    assert page.status_code == 200
    assert 'type="datetime-local"' in page.content.decode()

    response = client.post(f"/events/{event_a.name}/organise/", rules_data(
        event_a, title="Iris A, second edition", max_submissions_per_day=3,
        opens_at=datetime(2030, 1, 1, 10, tzinfo=UTC),
        closes_at=datetime(2030, 3, 1, 10, tzinfo=UTC)))
    assert response.status_code == 302
    event_a.refresh_from_db()
    assert event_a.title == "Iris A, second edition"
    assert event_a.max_submissions_per_day == 3
    assert event_a.closes_at == datetime(2030, 3, 1, 10, tzinfo=UTC)
    assert "Rules saved." in client.get(response["Location"]).content.decode()


def test_closing_before_opening_is_shown_with_400_and_nothing_changes(organiser, event_a):
    response = client_for(organiser).post(f"/events/{event_a.name}/organise/", rules_data(
        event_a, title="Changed", opens_at=datetime(2030, 3, 1, tzinfo=UTC),
        closes_at=datetime(2030, 1, 1, tzinfo=UTC)))
    assert response.status_code == 400
    assert "the closing time must come after the opening time" in response.content.decode()
    event_a.refresh_from_db()
    assert (event_a.title, event_a.closes_at) == ("Iris A", None)


def test_an_invalid_field_is_shown_with_400(organiser, event_a):
    response = client_for(organiser).post(f"/events/{event_a.name}/organise/",
                                          rules_data(event_a, max_team_size="many"))
    assert response.status_code == 400
    assert "Enter a whole number." in response.content.decode()


# --- who may organise ------------------------------------------------------------

def test_an_event_admin_cannot_organise_another_event(organiser, event_b, iris):
    client = client_for(organiser)
    for url in organiser_urls(event_b):
        assert client.get(url).status_code == 403, url
    response = client.post(f"/events/{event_b.name}/organise/",
                           rules_data(event_b, title="Taken over"))
    assert response.status_code == 403
    event_b.refresh_from_db()
    assert event_b.title == "Iris B"
    hidden = Event.objects.create(name="hidden", title="Hidden", problem_name="iris",
                                  is_public=False)
    for url in organiser_urls(hidden):
        assert client.get(url).status_code == 404, url


def test_a_participant_gets_403_on_every_organiser_page(alice, event_a):
    client = client_for(alice)
    for url in [*organiser_urls(event_a), "/organiser/", "/organiser/events/new/",
                "/organiser/queue/"]:
        assert client.get(url).status_code == 403, url
    team = Team.objects.get(event=event_a)
    submission = submit(event_a, alice)
    for url in [f"/events/{event_a.name}/organise/signups/{team.id}/approve/",
                f"/events/{event_a.name}/organise/submissions/{submission.id}/cancel/",
                f"/events/{event_a.name}/organise/submissions/rerun-failed/"]:
        assert client.post(url).status_code == 403, url
    assert Evaluation.objects.get(id=submission.evaluation_id).state == "queued"


def test_organiser_pages_ask_anonymous_visitors_to_log_in(event_a):
    response = Client().get(f"/events/{event_a.name}/organise/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_actions_need_the_csrf_token(organiser, event_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(organiser)
    response = client.post(f"/events/{event_a.name}/organise/", rules_data(event_a))
    assert response.status_code == 403


# --- sign-ups --------------------------------------------------------------------

@pytest.fixture
def pending(event_a):
    event_a.signup_requires_approval = True
    event_a.save()
    teams = []
    for username in ("bob", "carol"):
        teams.append(services.event_signup(event=event_a, user=make_user(username)))
    return teams


def test_an_event_admin_approves_and_rejects_sign_ups(organiser, event_a, pending):
    bob_team, carol_team = pending
    client = client_for(organiser)
    page = client.get(f"/events/{event_a.name}/organise/signups/").content.decode()
    assert "bob" in page and "carol" in page and "no, pending" in page

    response = client.post(f"/events/{event_a.name}/organise/signups/{bob_team.id}/approve/",
                           follow=True)
    assert response.status_code == 200
    assert "Sign-up of team bob approved." in response.content.decode()
    bob_team.refresh_from_db()
    assert bob_team.approved

    response = client.post(f"/events/{event_a.name}/organise/signups/{carol_team.id}/reject/",
                           follow=True)
    assert "Sign-up of team carol rejected." in response.content.decode()
    assert not Team.objects.filter(id=carol_team.id).exists()

    # An approved team cannot be rejected any more.
    response = client.post(f"/events/{event_a.name}/organise/signups/{bob_team.id}/reject/")
    assert response.status_code == 400
    assert "team bob is already approved" in response.content.decode()


def test_a_team_of_another_event_is_not_found_on_this_events_pages(organiser, event_a,
                                                                   event_b):
    team = services.event_signup(event=event_b, user=make_user("dave"))
    response = client_for(organiser).post(
        f"/events/{event_a.name}/organise/signups/{team.id}/reject/")
    assert response.status_code == 404
    assert Team.objects.filter(id=team.id).exists()


# --- submissions -----------------------------------------------------------------

def fail(submission: Submission, kind: str = "participant") -> None:
    Evaluation.objects.filter(id=submission.evaluation_id).update(
        state="error", error_kind=kind, error_message="ValueError: bad estimator")


def test_the_submissions_page_lists_and_filters_by_state(organiser, event_a, alice):
    failed = submit(event_a, alice, "broken")
    fail(failed)
    submit(event_a, alice, "waiting")
    client = client_for(organiser)
    page = client.get(f"/events/{event_a.name}/organise/submissions/").content.decode()
    assert "broken" in page and "waiting" in page
    assert "participant" in page and "ValueError: bad estimator" in page
    page = client.get(f"/events/{event_a.name}/organise/submissions/?state=error")
    assert page.status_code == 200
    assert "broken" in page.content.decode() and "waiting" not in page.content.decode()


def test_rerunning_a_failed_submission_keeps_the_old_evaluation(organiser, event_a, alice):
    submission = submit(event_a, alice)
    fail(submission)
    old = submission.evaluation_id
    response = client_for(organiser).post(
        f"/events/{event_a.name}/organise/submissions/{submission.id}/rerun/", follow=True)
    assert response.status_code == 200
    assert "Submission first of team alice queued again." in response.content.decode()
    submission.refresh_from_db()
    assert submission.evaluation_id != old
    assert submission.previous_evaluation_ids == [old]
    assert Evaluation.objects.get(id=submission.evaluation_id).state == "queued"
    assert Evaluation.objects.get(id=old).state == "error"


def test_rerunning_a_queued_submission_says_to_cancel_it_first(organiser, event_a, alice):
    submission = submit(event_a, alice)
    response = client_for(organiser).post(
        f"/events/{event_a.name}/organise/submissions/{submission.id}/rerun/")
    assert response.status_code == 409
    assert "cancel it first" in response.content.decode()


def test_rerun_all_failed_reruns_only_the_failed_ones(organiser, event_a, alice):
    platform, participant, queued = (submit(event_a, alice, n) for n in ("p", "q", "r"))
    fail(platform, "platform")
    fail(participant)
    response = client_for(organiser).post(
        f"/events/{event_a.name}/organise/submissions/rerun-failed/", follow=True)
    assert "2 failed submissions queued again." in response.content.decode()
    for submission, rerun in ((platform, True), (participant, True), (queued, False)):
        submission.refresh_from_db()
        assert bool(submission.previous_evaluation_ids) is rerun


def test_a_cancelled_submission_does_not_count_against_the_quota(organiser, event_a, alice):
    submission = submit(event_a, alice)
    team = submission.team
    assert len(services.counted_submission_times(team)) == 1
    response = client_for(organiser).post(
        f"/events/{event_a.name}/organise/submissions/{submission.id}/cancel/", follow=True)
    assert response.status_code == 200
    assert "Submission first of team alice cancelled." in response.content.decode()
    assert Evaluation.objects.get(id=submission.evaluation_id).state == "cancelled"
    assert services.counted_submission_times(team) == []
    # Cancelled, it offers a re-run instead.
    page = client_for(organiser).get(f"/events/{event_a.name}/organise/submissions/")
    assert f"/submissions/{submission.id}/rerun/" in page.content.decode()


# --- the queue -------------------------------------------------------------------

def test_the_queue_says_no_worker_answered_quickly(organiser, event_a, alice, _workers):
    _workers.stop()  # a worker left by an earlier test would answer
    submission = submit(event_a, alice)
    FoldRun.objects.filter(evaluation_id=submission.evaluation_id, fold_index=0).update(
        state="running", worker_host="node-7", started_at=timezone.now(),
        heartbeat_at=timezone.now() - timedelta(seconds=3))
    start = time.monotonic()
    response = client_for(organiser).get("/organiser/queue/")
    assert time.monotonic() - start < 3
    assert response.status_code == 200
    page = response.content.decode()
    assert "No worker answered" in page
    assert "node-7" in page and "iris-a / alice / first</a>" in page
    n_queued = FoldRun.objects.filter(state="queued").count()
    assert f"<strong>{n_queued}</strong> folds queued" in page

    # An admin of another event does not see this event's running folds.
    other = make_user("otto")
    Event.objects.create(name="other", title="Other", problem_name="iris").admins.add(other)
    assert "node-7" not in client_for(other).get("/organiser/queue/").content.decode()


def test_the_queue_links_to_flower_when_configured(superuser, settings):
    settings.DATARUN_FLOWER_URL = "https://flower.example.org/"
    page = client_for(superuser).get("/organiser/queue/").content.decode()
    assert 'href="https://flower.example.org/"' in page


def test_the_queue_lists_a_live_worker(superuser, celery_worker_process):
    page = client_for(superuser).get("/organiser/queue/").content.decode()
    assert "No worker answered" not in page
    assert re.search(r"<td>test@[^<]+</td><td>sandbox</td>", page)
    assert re.search(r"<td>scorer@[^<]+</td><td>scoring</td>", page)
    assert "No worker reads the queue" not in page


def test_the_queue_warns_when_no_worker_reads_the_scoring_queue(superuser, _workers):
    # A fold worker alone: folds would run, and no submission be scored.
    _workers.stop()
    log = _workers.storage / "lonely-worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "sandbox",
             "-c", "1", "-n", "lonely@%h", "-l", "INFO"],
            cwd=ROOT, env=_workers.env("local"), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while f"lonely@{socket.gethostname()} ready." not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        page = client_for(superuser).get("/organiser/queue/").content.decode()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert "No worker reads the queue <code>scoring</code>: folds run, but submissions " \
           "are not scored" in page
    assert "No worker reads the queue <code>sandbox</code>" not in page
    assert re.search(r"<td>lonely@[^<]+</td><td>sandbox</td>", page)


# --- the Django admin --------------------------------------------------------------

def test_the_django_admin_approves_sign_ups_through_the_service(superuser, event_a, pending):
    bob_team, carol_team = pending
    response = client_for(superuser).post("/admin/databoard/team/", {
        "action": "approve_signups", "_selected_action": [bob_team.id, carol_team.id],
    }, follow=True)
    assert "2 approved." in response.content.decode()
    assert Team.objects.filter(id__in=[bob_team.id, carol_team.id], approved=True).count() == 2
    assert event_a.audit_entries.filter(action="signup_approve").count() == 2


def test_the_django_admin_shows_evaluations_and_fold_runs_read_only(superuser, event_a, alice):
    submission = submit(event_a, alice)
    client = client_for(superuser)
    listing = client.get("/admin/datarun/foldrun/?state__exact=queued")
    assert listing.status_code == 200
    assert "Select fold run to view" in listing.content.decode()
    page = client.get(f"/admin/datarun/evaluation/{submission.evaluation_id}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get("/admin/datarun/evaluation/add/").status_code == 403


# --- event admins ---------------------------------------------------------------

def test_an_event_admin_adds_and_removes_a_co_organiser(event_a, organiser):
    make_user("tim")
    client = client_for(organiser)
    response = client.post("/events/iris-a/organise/admins/", {"username": "tim"})
    assert response.status_code == 302
    assert sorted(event_a.admins.values_list("username", flat=True)) == ["olga", "tim"]
    page = client.get("/events/iris-a/organise/").content.decode()
    assert 'value="tim" aria-label="remove tim"' in page
    assert event_a.audit_entries.filter(action="admin_add", data__admin="tim").exists()
    # tim, now an admin, organises the event.
    assert client_for(get_user_model().objects.get(username="tim")).get(
        "/events/iris-a/organise/").status_code == 200
    response = client.post("/events/iris-a/organise/admins/", {"remove": "tim"})
    assert response.status_code == 302
    assert list(event_a.admins.values_list("username", flat=True)) == ["olga"]


def test_admins_refused_say_why(event_a, organiser):
    client = client_for(organiser)
    response = client.post("/events/iris-a/organise/admins/", {"username": "nobody"})
    assert response.status_code == 404
    assert "no user named &#x27;nobody&#x27;: they sign up first" in response.content.decode()
    response = client.post("/events/iris-a/organise/admins/", {"remove": "olga"})
    assert response.status_code == 400
    assert "you cannot remove yourself" in response.content.decode()
    make_user("eve")
    assert client_for(get_user_model().objects.get(username="eve")).post(
        "/events/iris-a/organise/admins/", {"username": "eve"}).status_code == 403
    assert list(event_a.admins.values_list("username", flat=True)) == ["olga"]


# --- announcements --------------------------------------------------------------

def test_an_announcement_is_on_the_event_page_and_mailed_to_each_participant(
        event_a, organiser, alice):
    from django.core import mail

    alice.email = "alice@example.org"
    alice.save(update_fields=["email"])
    bob = make_user("bob", email="bob@example.org")
    services.event_signup(event=event_a, user=bob)
    make_user("carol", email="carol@example.org")  # not in the event
    response = client_for(organiser).post("/events/iris-a/organise/announce/", {
        "subject": "Deadline moved", "body": "The event closes on **Friday** now."})
    assert response.status_code == 302
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org"]
    assert mail.outbox[0].subject == "[Iris A] Deadline moved"
    assert "The event closes on **Friday** now." in mail.outbox[0].body
    page = client_for(alice).get("/events/iris-a/").content.decode()
    assert 'id="announcements"' in page
    assert "<p>The event closes on <strong>Friday</strong> now.</p>" in page


def test_only_admins_announce_and_an_empty_one_is_refused(event_a, organiser, alice):
    from django.core import mail

    assert client_for(alice).post("/events/iris-a/organise/announce/", {
        "subject": "spam", "body": "spam"}).status_code == 403
    response = client_for(organiser).post("/events/iris-a/organise/announce/",
                                          {"subject": "", "body": "x"})
    assert response.status_code == 400
    assert "a subject of 1 to 200 characters" in response.content.decode()
    assert not event_a.announcements.exists() and mail.outbox == []
