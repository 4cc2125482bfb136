"""Team pages as participants use them: signing up to an event, the team
page, renaming, invitations between users (team size, one team per event),
leaving; refusals come back with their message and a 4xx status."""
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from databoard import services
from databoard.models import Event, Team, TeamInvitation
from tests.conftest import EXAMPLES
from tests.integration.helpers import make_event

pytestmark = pytest.mark.django_db

EVENT = "iris-teams"
TEAM_PAGE = f"/events/{EVENT}/team/"
STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()


@pytest.fixture
def event() -> Event:
    return make_event(EXAMPLES / "iris", EVENT, max_team_size=2)


def browser(username: str) -> Client:
    user = get_user_model().objects.create_user(username, f"{username}@example.org",
                                                f"pw-{username}-1234")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def page_text(response) -> str:
    return response.content.decode()


def invitation_of(client: Client) -> TeamInvitation:
    return TeamInvitation.objects.get(user=client.user)


# --- signing up ----------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_log_in(client, event):
    response = client.get(TEAM_PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={TEAM_PAGE}"
    assert client.post(f"/events/{EVENT}/signup/").status_code == 302
    assert not Team.objects.exists()


def test_team_page_offers_sign_up_then_shows_the_team(event):
    alice = browser("alice")
    page = page_text(alice.get(TEAM_PAGE))
    assert "You are not signed up" in page
    assert f'action="/events/{EVENT}/signup/"' in page

    response = alice.post(f"/events/{EVENT}/signup/")
    assert response.status_code == 302
    assert response["Location"] == TEAM_PAGE
    page = page_text(alice.get(TEAM_PAGE))
    assert f"You are signed up to {EVENT} (team alice)." in page
    assert "<h2>alice</h2>" in page
    assert "You are not signed up" not in page
    # Signing up twice keeps the one team.
    alice.post(f"/events/{EVENT}/signup/")
    assert Team.objects.filter(event=event).count() == 1


def test_sign_up_awaiting_approval_says_so_and_cannot_invite(event):
    event.signup_requires_approval = True
    event.save()
    alice, bob = browser("alice"), browser("bob")
    page = page_text(alice.post(f"/events/{EVENT}/signup/", follow=True))
    assert f"Your sign-up to {EVENT} awaits an event admin" in page
    refused = alice.post(f"/events/{EVENT}/team/invite/", {"username": "bob"})
    assert refused.status_code == 403
    assert "awaits an event admin" in page_text(refused)
    assert not TeamInvitation.objects.filter(user=bob.user).exists()


def test_unknown_or_unlisted_events_are_not_found(event):
    alice = browser("alice")
    response = alice.get("/events/no-such-event/team/")
    assert response.status_code == 404
    assert "no event named &#x27;no-such-event&#x27;" in page_text(response)
    event.is_public = False
    event.save()
    assert alice.get(TEAM_PAGE).status_code == 404
    assert alice.post(f"/events/{EVENT}/signup/").status_code == 404
    assert not Team.objects.exists()


# --- invitations ---------------------------------------------------------------------

def test_invitation_flow_between_two_users(event):
    alice, bob = browser("alice"), browser("bob")
    alice.post(f"/events/{EVENT}/signup/")

    unknown = alice.post(f"/events/{EVENT}/team/invite/", {"username": "nobody"})
    assert unknown.status_code == 404
    assert "no user named &#x27;nobody&#x27;" in page_text(unknown)

    response = alice.post(f"/events/{EVENT}/team/invite/", {"username": "bob"})
    assert response.status_code == 302
    page = page_text(alice.get(TEAM_PAGE))
    assert "bob is invited to alice" in page
    assert re.search(r"<li>bob <span class=\"muted\">\(invited by alice", page)

    invitation = invitation_of(bob)
    profile = page_text(bob.get("/accounts/profile/"))
    assert "invites you to team" in profile
    assert f'action="/invitations/{invitation.id}/accept/"' in profile
    assert f'action="/invitations/{invitation.id}/decline/"' in profile
    # Bob's page for the event offers it too.
    assert f'action="/invitations/{invitation.id}/accept/"' in page_text(bob.get(TEAM_PAGE))

    accepted = bob.post(f"/invitations/{invitation.id}/accept/")
    assert accepted.status_code == 302
    assert accepted["Location"] == TEAM_PAGE
    page = page_text(bob.get(TEAM_PAGE))
    assert f"You joined team alice in {EVENT}." in page
    assert "<td>alice</td>" in page and "bob <span class=\"muted\">(you)</span>" in page
    assert "No pending invitations." in page_text(bob.get("/accounts/profile/"))
    assert ">alice</a>" in page_text(bob.get("/accounts/profile/"))  # my teams


def test_a_full_team_refuses_invitations_and_joins(event):
    alice, bob, carol, dave = (browser(n) for n in ("alice", "bob", "carol", "dave"))
    alice.post(f"/events/{EVENT}/signup/")
    alice.post(f"/events/{EVENT}/team/invite/", {"username": "bob"})
    alice.post(f"/events/{EVENT}/team/invite/", {"username": "carol"})
    assert bob.post(f"/invitations/{invitation_of(bob).id}/accept/").status_code == 302

    # Two members out of two: carol's invitation can no longer be accepted ...
    refused = carol.post(f"/invitations/{invitation_of(carol).id}/accept/")
    assert refused.status_code == 400
    assert "team alice is full (2 members in iris-teams)" in page_text(refused)
    assert services.team_of(event=event, user=carol.user) is None
    # ... and no one else is invited.
    refused = alice.post(f"/events/{EVENT}/team/invite/", {"username": "dave"})
    assert refused.status_code == 400
    assert "teams in iris-teams have at most 2 members" in page_text(refused)
    assert not TeamInvitation.objects.filter(user=dave.user).exists()


def test_one_team_per_event(event):
    alice, bob, carol = browser("alice"), browser("bob"), browser("carol")
    alice.post(f"/events/{EVENT}/signup/")
    bob.post(f"/events/{EVENT}/signup/")
    bob.post(f"/events/{EVENT}/team/invite/", {"username": "carol"})
    carol.post(f"/invitations/{invitation_of(carol).id}/accept/")
    alice.post(f"/events/{EVENT}/team/invite/", {"username": "bob"})

    # Bob is in a team of two: he has to leave it before joining another.
    refused = bob.post(f"/invitations/{invitation_of(bob).id}/accept/")
    assert refused.status_code == 400
    assert "leave team bob first" in page_text(refused)
    assert services.team_of(event=event, user=bob.user).name == "bob"

    # Carol submitted with bob's team: she stays in it. Bob did not submit: he may
    # leave, and then join alice.
    services.submission_create(event=event, user=carol.user, name="first",
                               files={"estimator.py": STARTING_KIT})
    refused = carol.post(f"/events/{EVENT}/team/leave/")
    assert refused.status_code == 400
    assert "you cannot leave it" in page_text(refused)
    assert bob.post(f"/events/{EVENT}/team/leave/").status_code == 302
    assert bob.post(f"/invitations/{invitation_of(bob).id}/accept/").status_code == 302
    assert services.team_of(event=event, user=bob.user).name == "alice"


def test_a_user_who_submitted_cannot_change_teams(event):
    alice, bob = browser("alice"), browser("bob")
    alice.post(f"/events/{EVENT}/signup/")
    bob.post(f"/events/{EVENT}/signup/")
    services.submission_create(event=event, user=bob.user, name="mine",
                               files={"estimator.py": STARTING_KIT})
    alice.post(f"/events/{EVENT}/team/invite/", {"username": "bob"})
    refused = bob.post(f"/invitations/{invitation_of(bob).id}/accept/")
    assert refused.status_code == 400
    assert "you have submitted with team bob: you cannot change teams" in page_text(refused)
    assert services.team_of(event=event, user=bob.user).name == "bob"


def test_declining_an_invitation(event):
    alice, bob = browser("alice"), browser("bob")
    alice.post(f"/events/{EVENT}/signup/")
    alice.post(f"/events/{EVENT}/team/invite/", {"username": "bob"})
    invitation = invitation_of(bob)
    response = bob.post(f"/invitations/{invitation.id}/decline/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"
    assert "Invitation declined." in page_text(bob.get("/accounts/profile/"))
    assert not TeamInvitation.objects.exists()
    assert services.team_of(event=event, user=bob.user) is None


def test_only_the_invited_user_answers_an_invitation(event):
    alice, bob, mallory = browser("alice"), browser("bob"), browser("mallory")
    alice.post(f"/events/{EVENT}/signup/")
    alice.post(f"/events/{EVENT}/team/invite/", {"username": "bob"})
    invitation = invitation_of(bob)
    for action in ("accept", "decline"):
        response = mallory.post(f"/invitations/{invitation.id}/{action}/")
        assert response.status_code == 404
        assert f"no invitation {invitation.id} for you" in page_text(response)
    assert TeamInvitation.objects.filter(id=invitation.id).exists()
    assert bob.get(f"/invitations/{invitation.id}/accept/").status_code == 405


# --- renaming and leaving ------------------------------------------------------------

def test_rename_the_team(event):
    alice, bob = browser("alice"), browser("bob")
    alice.post(f"/events/{EVENT}/signup/")
    bob.post(f"/events/{EVENT}/signup/")
    response = alice.post(f"/events/{EVENT}/team/rename/", {"name": "Setosa Squad"})
    assert response.status_code == 302
    assert "Your team is now called Setosa Squad." in page_text(alice.get(TEAM_PAGE))
    taken = bob.post(f"/events/{EVENT}/team/rename/", {"name": "Setosa Squad"})
    assert taken.status_code == 400
    assert "already has a team named &#x27;Setosa Squad&#x27;" in page_text(taken)
    assert bob.post(f"/events/{EVENT}/team/rename/", {"name": ""}).status_code == 400


def test_leave_the_team(event):
    alice = browser("alice")
    alice.post(f"/events/{EVENT}/signup/")
    response = alice.post(f"/events/{EVENT}/team/leave/", follow=True)
    assert f"You have left your team in {EVENT}." in page_text(response)
    assert "You are not signed up" in page_text(response)
    refused = alice.post(f"/events/{EVENT}/team/leave/")
    assert refused.status_code == 400
    assert "you are in no team in iris-teams" in page_text(refused)


def test_team_posts_without_a_csrf_token_are_refused(event):
    client = Client(enforce_csrf_checks=True)
    user = get_user_model().objects.create_user("alice", password="pw-alice-1234")
    client.force_login(user)
    assert client.post(f"/events/{EVENT}/signup/").status_code == 403
    assert not Team.objects.exists()
    services.event_signup(event=event, user=user)
    get_user_model().objects.create_user("bob")
    assert client.post(f"/events/{EVENT}/team/invite/", {"username": "bob"}).status_code == 403
    assert client.post(f"/events/{EVENT}/team/leave/").status_code == 403
    assert not TeamInvitation.objects.exists()
    assert services.team_of(event=event, user=user) is not None


def test_rename_needs_a_team(event):
    response = browser("alice").post(f"/events/{EVENT}/team/rename/", {"name": "Solo"})
    assert response.status_code == 404
    assert "you are in no team in iris-teams" in page_text(response)
