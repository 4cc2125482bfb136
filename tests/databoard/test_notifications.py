"""E-mail to a team's members when its submission is scored or fails: read
from Django's test outbox, and once through a real SMTP server (a small one
in this test, over a socket, with Django's SMTP backend)."""
import socketserver
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from databoard import services
from databoard.models import Event, Profile
from databoard.services.notifications import submission_notify
from datarun.models import Evaluation
from datarun.states import ErrorKind, RunState
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


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for a client that sends one message."""

    def handle(self):
        self.wfile.write(b"220 test SMTP server\r\n")
        envelope = {"to": []}
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "MAIL":
                envelope["from"] = command
                self.wfile.write(b"250 OK\r\n")
            elif verb == "RCPT":
                envelope["to"].append(command.split(":", 1)[1].strip(" <>"))
                self.wfile.write(b"250 OK\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 end with .\r\n")
                data = []
                while (part := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(part)
                self.server.received.append({**envelope, "data": b"".join(data).decode()})
                envelope = {"to": []}
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


def test_the_mail_leaves_through_a_real_smtp_server(event, settings):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = server.server_address
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.DEFAULT_FROM_EMAIL = "datarun@course.example"
        submission = submit_scored(event, "alice", valid=0.875, name="forest")
        with_teammate(event)
        assert submission_notify(evaluation_id=submission.evaluation_id) == 2
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(r["to"][0] for r in server.received) == \
        ["alice@example.org", "bob@example.org"]
    assert all("datarun@course.example" in r["from"] for r in server.received)
    assert "Subject: [Iris course] forest is scored" in server.received[0]["data"]
    assert "acc (official): 0.875" in server.received[0]["data"]
