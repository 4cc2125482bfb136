"""E-mail to a team's members when its submission is scored or fails: read
from Django's test outbox, and in one test also through a real SMTP server
(aiosmtpd's debugging server, in its own process, with Django's SMTP backend)."""
import re
import socket
import subprocess
import sys
import time

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from databoard import services
from databoard.models import Event, Profile
from databoard.services.notifications import submission_notify
from datarun.models import Evaluation
from datarun.states import ErrorKind, RunState
from tests.conftest import free_port, stop_process
from tests.databoard.test_api import make_event, make_user, submit_scored

pytestmark = pytest.mark.django_db


@pytest.fixture
def event() -> Event:
    event = make_event()
    event.title = "Iris course"
    event.save(update_fields=["title"])
    return event


def with_teammate(event: Event, submission_user: str = "alice") -> None:
    """bob joins alice's team; both have an address."""
    alice = get_user_model().objects.get(username=submission_user)
    alice.email = "alice@example.org"
    alice.save(update_fields=["email"])
    bob = make_user("bob")
    bob.email = "bob@example.org"
    bob.save(update_fields=["email"])
    team = services.team_of(event=event, user=alice)
    invitation = services.team_invite(team=team, user=alice, username="bob")
    services.invitation_accept(invitation_id=invitation.id, user=bob)


def test_each_member_gets_the_validation_scores_when_a_submission_is_scored(event):
    submission = submit_scored(event, "alice", valid=0.875, test=0.5, name="forest")
    with_teammate(event)
    assert submission_notify(evaluation_id=submission.evaluation_id) == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org"]
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in mail.outbox)
    message = mail.outbox[0]
    assert message.subject == "[Iris course] forest is scored"
    assert "acc (official): 0.875" in message.body
    assert "0.500" not in message.body  # the test score stays private
    assert f"/submissions/{submission.id}/" in message.body
    assert "/accounts/profile/" in message.body  # how to stop them


def test_a_member_who_opted_out_gets_nothing(event, client):
    submission = submit_scored(event, "alice", valid=0.875, name="forest")
    with_teammate(event)
    bob = get_user_model().objects.get(username="bob")
    client.force_login(bob)
    response = client.post("/accounts/profile/", {"email": "bob@example.org", "time_zone": ""})
    assert response.status_code == 302  # the box unticked: no more e-mails
    assert Profile.objects.get(user=bob).notify_submissions is False
    assert submission_notify(evaluation_id=submission.evaluation_id) == 1
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]


def test_a_failed_submission_says_why(event):
    submission = submit_scored(event, "alice", valid=0.875, name="broken")
    with_teammate(event)
    Evaluation.objects.filter(id=submission.evaluation_id).update(
        state=RunState.ERROR, error_kind=ErrorKind.PARTICIPANT,
        error_message="ValueError: the model could not be fitted")
    assert submission_notify(evaluation_id=submission.evaluation_id) == 2
    assert mail.outbox[0].subject == "[Iris course] broken failed"
    assert "ValueError: the model could not be fitted" in mail.outbox[0].body
    Evaluation.objects.filter(id=submission.evaluation_id).update(
        error_kind=ErrorKind.PLATFORM, error_message="the worker was lost 2 times")
    mail.outbox.clear()
    submission_notify(evaluation_id=submission.evaluation_id)
    assert "not counted against your team's quota" in mail.outbox[0].body


def test_nothing_is_sent_for_an_evaluation_still_running_or_of_no_submission(event):
    submission = submit_scored(event, "alice", valid=0.875, name="forest")
    Evaluation.objects.filter(id=submission.evaluation_id).update(state=RunState.RUNNING)
    assert submission_notify(evaluation_id=submission.evaluation_id) == 0
    assert submission_notify(evaluation_id=10**9) == 0
    assert mail.outbox == []


@pytest.fixture
def smtp_debugging_server(tmp_path):
    """aiosmtpd's debugging server in its own process: it accepts every
    message and prints it; (host, port, the file it prints to)."""
    port = free_port()
    printed = tmp_path / "smtp.log"
    with open(printed, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
             "-c", "aiosmtpd.handlers.Debugging"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, printed.read_text()
                time.sleep(0.1)
        yield "127.0.0.1", port, printed
    finally:
        stop_process(proc)


def test_a_scored_submission_is_mailed_to_the_outbox_and_through_smtp(
        event, settings, smtp_debugging_server):
    """One scored submission: its mails in Django's test outbox, then sent
    again through a real SMTP server with Django's SMTP backend."""
    submission = submit_scored(event, "alice", valid=0.875, name="forest")
    with_teammate(event)
    settings.DEFAULT_FROM_EMAIL = "datarun@course.example"

    assert submission_notify(evaluation_id=submission.evaluation_id) == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org"]
    subject = "[Iris course] forest is scored"
    assert {m.subject for m in mail.outbox} == {subject}

    host, port, printed = smtp_debugging_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = host, port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    assert submission_notify(evaluation_id=submission.evaluation_id) == 2
    deadline = time.monotonic() + 10
    while (text := printed.read_text()).count("END MESSAGE") < 2:
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    messages = text.split("---------- MESSAGE FOLLOWS ----------")[1:]
    assert sorted(re.search(r"^To: (.+)$", m, re.M).group(1) for m in messages) == [
        "alice@example.org", "bob@example.org"]
    for message in messages:
        assert f"Subject: {subject}" in message
        assert "From: datarun@course.example" in message
        assert "acc (official): 0.875" in message
