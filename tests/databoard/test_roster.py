"""Accounts for a class from a CSV: the organiser page, the management
command, the invitations (Django's test outbox) and the set-password link
they carry, followed for real."""
import html
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from databoard.models import Event, Team
from tests.databoard.test_api import make_event, make_user

pytestmark = pytest.mark.django_db

CLASS_CSV = """username,email,team
ada,ada@example.org,red
grace,grace@example.org,red
linus,linus@example.org,
alice,someone@example.org,blue
bad name,bad@example.org,blue
nomail,not-an-address,blue
ada2,ADA@example.org,blue
"""


@pytest.fixture
def event() -> Event:
    event = make_event(max_team_size=2)
    event.title = "ML course"
    event.save(update_fields=["title"])
    return event


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_csv(client: Client, text: str, event: str = "", **fields):
    return client.post("/organiser/accounts/import/", {
        "csv_file": SimpleUploadedFile("class.csv", text.encode()), "event": event,
        "send_invitations": "on", **fields})


def test_an_event_admin_creates_the_class_and_each_student_is_invited(event):
    make_user("alice")  # an account that exists already
    olga = make_user("olga")
    event.admins.add(olga)
    response = post_csv(client_for(olga), CLASS_CSV, event=event.name)
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "3 created, 4 skipped" in page
    for reason in ("an account named alice already exists",
                   "the username is empty or has characters other than",
                   "'not-an-address' is not an e-mail address",
                   "another account uses ADA@example.org"):
        assert reason in page, reason
    # The teams of the event: red with two members, linus alone.
    teams = {t.name: sorted(t.members.values_list("username", flat=True))
             for t in Team.objects.filter(event=event)}
    assert teams["red"] == ["ada", "grace"] and teams["linus"] == ["linus"]
    assert all(t.approved for t in Team.objects.filter(event=event))
    # One invitation each, with a link that sets the password.
    assert sorted(m.to[0] for m in mail.outbox) == \
        ["ada@example.org", "grace@example.org", "linus@example.org"]
    invitation = next(m for m in mail.outbox if m.to == ["ada@example.org"])
    assert invitation.subject == "Your Datarun account for ML course"
    assert "your username is ada" in invitation.body and "You are in team red" in invitation.body
    link = re.search(r"http://\S+/accounts/password/reset/\S+/", invitation.body).group(0)
    client = Client()
    form = client.get(link.split("8000", 1)[1], follow=True)
    assert form.status_code == 200
    response = client.post(form.redirect_chain[-1][0], {
        "new_password1": "a-long-class-password-1", "new_password2": "a-long-class-password-1"})
    assert response.status_code == 302
    assert get_user_model().objects.get(username="ada").check_password(
        "a-long-class-password-1")


def test_a_full_team_and_a_team_without_an_event_are_refused(event):
    root = get_user_model().objects.create_superuser("root", password="pw-root-1234")
    response = post_csv(client_for(root), "username,email,team\nx,x@example.org,red\n")
    assert response.status_code == 400
    assert "choose the event the teams are in" in response.content.decode()
    assert not get_user_model().objects.filter(username="x").exists()
    rows = "username,email,team\n" + "".join(f"s{i},s{i}@example.org,red\n" for i in range(3))
    response = post_csv(client_for(root), rows, event=event.name)
    assert "team red is full (2 members, the event&#x27;s limit)" in response.content.decode()
    assert Team.objects.get(event=event, name="red").members.count() == 2


def test_a_csv_without_its_header_says_what_the_columns_are(event):
    root = get_user_model().objects.create_superuser("root", password="pw-root-1234")
    response = post_csv(client_for(root), "ada,ada@example.org\n")
    assert response.status_code == 400
    assert "the CSV&#x27;s first line must name its columns: username,email" in \
        response.content.decode()


def test_participants_cannot_create_accounts(event):
    response = post_csv(client_for(make_user("mallory")), CLASS_CSV, event=event.name)
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="ada").exists()


def test_the_management_command_prints_the_report(event, tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("\ufeffusername;email;team\nada;ada@example.org;red\nada;x@example.org;\n")
    out = io.StringIO()
    call_command("accounts_import", str(roster), "--event", event.name, stdout=out)
    assert out.getvalue().splitlines() == [
        "line 2: created ada in team red, invited",
        "line 3: skipped ada: an account named ada already exists",
        "1 created, 1 skipped",
    ]
    assert [m.to for m in mail.outbox] == [["ada@example.org"]]
