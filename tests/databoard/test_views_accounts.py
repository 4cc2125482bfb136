"""Account pages as a visitor uses them: sign up, profile and time zone,
log in/out, passwords, and the same-site rule for ``next``."""
import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from databoard.models import Profile

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-42"


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def sign_up(client: Client, username: str = "alice", **extra):
    return client.post("/accounts/signup/", {
        "username": username, "email": f"{username}@example.org",
        "password1": PASSWORD, "password2": PASSWORD, **extra})


def make_user(username: str = "alice"):
    user = get_user_model().objects.create_user(username, f"{username}@example.org", PASSWORD)
    Profile.objects.create(user=user)
    return user


def logs_in(username: str, password: str) -> bool:
    """Whether the login page accepts these credentials (from a fresh browser)."""
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302


# --- sign up -------------------------------------------------------------------------

def test_sign_up_logs_in_and_creates_the_profile(client):
    response = sign_up(client)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"
    user = get_user_model().objects.get(username="alice")
    assert user.email == "alice@example.org"
    assert Profile.objects.filter(user=user, time_zone="").exists()
    page = client.get("/accounts/profile/")
    assert page.status_code == 200
    assert page.wsgi_request.user == user
    assert "your account is ready" in page.content.decode()


@pytest.mark.parametrize("password1, password2, message", [
    ("password", "password", "too common"),
    ("x7#", "x7#", "too short"),
    (PASSWORD, PASSWORD + "!", "didn’t match"),
])
def test_sign_up_refuses_bad_passwords(client, password1, password2, message):
    response = client.post("/accounts/signup/", {
        "username": "alice", "email": "alice@example.org",
        "password1": password1, "password2": password2})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not get_user_model().objects.filter(username="alice").exists()
    assert "_auth_user_id" not in client.session


def test_sign_up_refuses_a_taken_username_or_email(client):
    make_user("alice")
    taken_name = sign_up(client, "alice")
    assert taken_name.status_code == 400
    assert "already exists" in taken_name.content.decode()
    taken_mail = sign_up(client, "bob", email="ALICE@example.org")
    assert taken_mail.status_code == 400
    assert "e-mail address already exists" in taken_mail.content.decode()


@pytest.mark.parametrize("next_url, landing", [
    ("/events/iris/", "/events/iris/"),
    ("https://evil.example/steal", "/accounts/profile/"),
    ("//evil.example/steal", "/accounts/profile/"),
])
def test_sign_up_follows_next_only_within_the_site(client, next_url, landing):
    response = sign_up(client, next=next_url)
    assert response.status_code == 302
    assert response["Location"] == landing


# --- log in and out ------------------------------------------------------------------

@pytest.mark.parametrize("next_url, landing", [
    ("/accounts/profile/", "/accounts/profile/"),
    ("https://evil.example/", "/events/"),
])
def test_log_in_follows_next_only_within_the_site(client, next_url, landing):
    make_user()
    page = client.get(f"/accounts/login/?next={next_url}")
    assert page.status_code == 200
    response = client.post("/accounts/login/", {
        "username": "alice", "password": PASSWORD, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == landing


def test_log_in_with_a_wrong_password_says_so(client):
    make_user()
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert "enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_log_out_is_post_only(client):
    client.force_login(make_user())
    assert client.get("/accounts/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


# --- profile and time zone -----------------------------------------------------------

def test_profile_needs_a_login(client):
    response = client.get("/accounts/profile/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/profile/"


def test_profile_time_zone_changes_how_times_are_shown(client):
    sign_up(client)
    user = get_user_model().objects.get(username="alice")
    user.date_joined = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    user.save(update_fields=["date_joined"])
    assert "2025-01-15 12:00 UTC" in client.get("/accounts/profile/").content.decode()

    response = client.post("/accounts/profile/", {
        "first_name": "Alice", "last_name": "Liddell", "email": "alice@example.org",
        "affiliation": "Wonderland University", "time_zone": "Asia/Kolkata"})
    assert response.status_code == 302
    profile = Profile.objects.get(user=user)
    assert (profile.time_zone, profile.affiliation) == ("Asia/Kolkata", "Wonderland University")
    page = client.get("/accounts/profile/").content.decode()
    assert "Profile saved." in page
    assert "2025-01-15 17:30 IST" in page  # 12:00 UTC is 17:30 in India
    assert "Times are shown in Asia/Kolkata (from your profile)." in page
    assert 'value="Liddell"' in page


def test_profile_refuses_an_unknown_time_zone(client):
    client.force_login(make_user())
    response = client.post("/accounts/profile/", {
        "email": "alice@example.org", "time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert Profile.objects.get(user__username="alice").time_zone == ""


def test_profile_without_a_zone_follows_the_browser(client):
    client.force_login(make_user())
    client.cookies["tz"] = "America/New_York"
    page = client.get("/accounts/profile/").content.decode()
    assert "Times are shown in America/New_York (from your browser)." in page


def test_profile_is_created_for_accounts_made_elsewhere(client):
    user = get_user_model().objects.create_user("admin-made", "m@example.org", PASSWORD)
    client.force_login(user)
    assert client.get("/accounts/profile/").status_code == 200
    response = client.post("/accounts/profile/", {"email": "m@example.org",
                                                  "time_zone": "Europe/Paris"})
    assert response.status_code == 302
    assert Profile.objects.get(user=user).time_zone == "Europe/Paris"


# --- passwords -----------------------------------------------------------------------

def test_password_reset_mails_a_link_that_sets_a_new_password(client):
    make_user()
    response = client.post("/accounts/password/reset/", {"email": "alice@example.org"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.org"]
    assert "reset your password" in message.subject
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/\S+/)", message.body)
    assert link, message.body

    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200
    assert "Choose a new password" in form.content.decode()
    new_password = "a-brand-new-secret-77"
    done = client.post(form.redirect_chain[-1][0], {
        "new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302
    assert done["Location"] == "/accounts/password/reset/complete/"

    assert logs_in("alice", new_password)
    assert not logs_in("alice", PASSWORD)
    # The link works once.
    assert "invalid or was already used" in client.get(link.group(1), follow=True) \
        .content.decode()


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.org"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert mail.outbox == []


def test_password_change(client):
    client.force_login(make_user())
    wrong = client.post("/accounts/password/change/", {
        "old_password": "nope", "new_password1": "another-secret-88",
        "new_password2": "another-secret-88"})
    assert "old password was entered incorrectly" in wrong.content.decode()
    response = client.post("/accounts/password/change/", {
        "old_password": PASSWORD, "new_password1": "another-secret-88",
        "new_password2": "another-secret-88"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/change/done/"
    assert logs_in("alice", "another-secret-88")
    # Still logged in: Django keeps the session valid after the change.
    assert client.get("/accounts/profile/").status_code == 200


# --- API token ---------------------------------------------------------------------

def api_token(username: str = "alice", password: str = PASSWORD) -> str:
    response = APIClient().post("/api/v1/auth/token/",
                                {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def token_works(token: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    status = client.get("/api/v1/submissions/").status_code
    assert status in (200, 401)
    return status == 200


def logged_in_browser(username: str = "alice", password: str = PASSWORD) -> Client:
    browser = Client()
    assert browser.post("/accounts/login/", {"username": username, "password": password}) \
        .status_code == 302
    return browser


def test_a_password_change_revokes_the_api_token_and_the_other_sessions():
    make_user()
    token, here, elsewhere = api_token(), logged_in_browser(), logged_in_browser()
    assert token_works(token)
    response = here.post("/accounts/password/change/", {
        "old_password": PASSWORD, "new_password1": "another-secret-88",
        "new_password2": "another-secret-88"})
    assert response.status_code == 302
    assert not token_works(token)
    assert here.get("/accounts/profile/").status_code == 200  # the session that changed it
    assert elsewhere.get("/accounts/profile/")["Location"].startswith("/accounts/login/")
    assert token_works(api_token(password="another-secret-88"))  # a new one, on request


def test_a_password_reset_revokes_the_api_token_and_every_session(client):
    make_user()
    token, browser = api_token(), logged_in_browser()
    client.post("/accounts/password/reset/", {"email": "alice@example.org"})
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/\S+/)", mail.outbox[0].body)
    form = client.get(link.group(1), follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": "a-brand-new-secret-77",
                                             "new_password2": "a-brand-new-secret-77"})
    assert not token_works(token)
    assert browser.get("/accounts/profile/")["Location"].startswith("/accounts/login/")


def test_the_profile_shows_the_api_token_and_revokes_it():
    make_user()
    browser = logged_in_browser()
    assert "You have no API token" in browser.get("/accounts/profile/").content.decode()
    page = browser.post("/accounts/profile/token/", {"action": "create"}, follow=True) \
        .content.decode()
    token = re.search(r"Authorization: Token (\w+)", page).group(1)
    assert token == api_token() and token_works(token)

    page = browser.post("/accounts/profile/token/", {"action": "revoke"}, follow=True) \
        .content.decode()
    assert "API token revoked" in page and token not in page
    assert not token_works(token)


# --- throttling ----------------------------------------------------------------------

def test_wrong_passwords_on_the_login_page_lock_out_with_a_clear_message(settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user()
    for _ in range(2):
        assert not logs_in("alice", "guess")
    response = Client().post("/accounts/login/", {"username": "alice", "password": "guess"})
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Too many failed logins for this account or from your address: try again in " \
           "15 minutes" in response.content.decode()
    assert not logs_in("alice", PASSWORD)


def test_password_reset_mails_are_limited_per_address_and_per_account(settings):
    settings.DATARUN_PASSWORD_RESET_RATE = "2/h"
    make_user()
    make_user("bob")
    client = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(2):
        assert client.post("/accounts/password/reset/", {"email": "alice@example.org"}) \
            .status_code == 302
    refused = Client(REMOTE_ADDR="10.0.0.2").post("/accounts/password/reset/",
                                                  {"email": "alice@example.org"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many password-reset requests" in refused.content.decode()
    # The first address asked twice already: bob's address is refused from it.
    assert client.post("/accounts/password/reset/", {"email": "bob@example.org"}) \
        .status_code == 429
    assert [m.to for m in mail.outbox] == [["alice@example.org"]] * 2


# --- CSRF ----------------------------------------------------------------------------

def test_posts_without_a_csrf_token_are_refused():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/signup/", {
        "username": "mallory", "email": "m@example.org",
        "password1": PASSWORD, "password2": PASSWORD}).status_code == 403
    assert not get_user_model().objects.filter(username="mallory").exists()

    user = make_user()
    client.force_login(user)
    response = client.post("/accounts/profile/", {"email": "evil@example.org",
                                                  "time_zone": "UTC"})
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.email == "alice@example.org"


def test_pages_with_forms_carry_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/signup/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token
    response = client.post("/accounts/signup/", {
        "csrfmiddlewaretoken": token.group(1), "username": "alice",
        "email": "alice@example.org", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
