"""The participant-facing REST API, through the real URLconf and PostgreSQL.

Submissions are created for real; their fold tasks are queued on commit, which
never happens inside these (rolled back) tests, so no broker is needed. Scores
are written directly, as the scorer would.
"""
import math
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from databoard import services as databoard_services
from databoard.models import Event, Submission
from datarun import services as datarun_services
from datarun.errors import InvalidSubmission
from datarun.models import Evaluation, EvaluationScore, ScoreType
from datarun.signals import evaluation_scored
from datarun.states import RunState
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

EVENT = "iris-2025"
STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()


def make_event(kit: str = "iris", name: str = EVENT, **fields) -> Event:
    datarun_services.problem_import_ramp_kit(path=EXAMPLES / kit)
    return Event.objects.create(name=name, title=name, problem_name=kit, **fields)


def make_user(username: str):
    return get_user_model().objects.create_user(username, password=f"pw-{username}-1234")


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def signed_up(username: str, event: Event):
    user = make_user(username)
    databoard_services.event_signup(event=event, user=user)
    return user


def post_submission(client: APIClient, name: str = "first",
                    files: dict[str, bytes] | None = None, event: str = EVENT):
    files = {"estimator.py": STARTING_KIT} if files is None else files
    uploads = [SimpleUploadedFile(fname, content) for fname, content in files.items()]
    return client.post(f"/api/v1/events/{event}/submissions/",
                       {"name": name, "files": uploads}, format="multipart")


def assert_error(response, status: int, code: str, message: str = "") -> None:
    """The API's one error shape, with this code and a message containing ``message``."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert message in body["error"]["message"]


@pytest.fixture
def event() -> Event:
    return make_event()


@pytest.fixture
def alice(event):
    return signed_up("alice", event)


# --- authentication ----------------------------------------------------------------

def test_health_answers_without_authentication_and_names_nothing_to_anonymous_callers():
    response = APIClient().get("/api/v1/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_names_the_platforms_parts_to_signed_in_users(alice):
    response = client_for(alice).get("/api/v1/health/")
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "postgresql"
    assert response.json()["broker"] == "redis"


def test_a_token_from_username_and_password_authenticates_requests(alice):
    client = APIClient()
    response = client.post("/api/v1/auth/token/",
                           {"username": "alice", "password": "pw-alice-1234"})
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")

    assert post_submission(client).status_code == 201
    assert [s["name"] for s in client.get("/api/v1/submissions/").json()["results"]] == ["first"]


def test_a_wrong_password_gets_no_token(alice):
    response = APIClient().post("/api/v1/auth/token/",
                                {"username": "alice", "password": "guess"})
    assert_error(response, 400, "invalid", "Unable to log in with provided credentials.")


def get_token(username: str, password: str, address: str = "10.0.0.1"):
    return APIClient().post("/api/v1/auth/token/", {"username": username, "password": password},
                            REMOTE_ADDR=address)


@pytest.fixture
def three_failures_lock_out(settings):
    settings.AXES_FAILURE_LIMIT = 3


def test_wrong_passwords_lock_the_account_out_with_a_retry_after(alice, three_failures_lock_out):
    for _ in range(2):
        assert get_token("alice", "guess").status_code == 400
    locked = get_token("alice", "guess", address="10.0.0.2")  # the third, from elsewhere
    assert_error(locked, 429, "too_many_attempts", "Too many failed logins")
    assert "try again in 15 minutes" in locked.json()["error"]["message"]
    assert locked["Retry-After"] == "900"
    # Even the right password, from any address, until the cool-off is over.
    assert get_token("alice", "pw-alice-1234", address="10.0.0.3").status_code == 429


def test_wrong_passwords_from_one_address_lock_that_address_out(alice, three_failures_lock_out):
    for name in ("root", "admin", "organiser"):
        get_token(name, "guess")
    assert get_token("alice", "pw-alice-1234").status_code == 429
    assert get_token("alice", "pw-alice-1234", address="10.0.0.2").status_code == 200


def test_behind_a_proxy_the_address_it_saw_is_counted(alice, three_failures_lock_out, settings):
    settings.DATARUN_PROXY_COUNT = 1

    def via_proxy(password: str, client: str):
        # The client may send its own X-Forwarded-For: only the proxy's last entry counts.
        return APIClient().post("/api/v1/auth/token/", {"username": "alice",
                                                       "password": password},
                                REMOTE_ADDR="172.17.0.1",
                                HTTP_X_FORWARDED_FOR=f"6.6.6.6, {client}")

    for name in ("root", "admin", "organiser"):
        APIClient().post("/api/v1/auth/token/", {"username": name, "password": "guess"},
                         REMOTE_ADDR="172.17.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert via_proxy("pw-alice-1234", "203.0.113.9").status_code == 429
    assert via_proxy("pw-alice-1234", "198.51.100.7").status_code == 200


def test_a_successful_login_forgives_the_failures_before_it(alice, three_failures_lock_out):
    for _ in range(2):
        get_token("alice", "guess")
    assert get_token("alice", "pw-alice-1234").status_code == 200
    for _ in range(2):
        assert get_token("alice", "guess").status_code == 400
    assert get_token("alice", "pw-alice-1234").status_code == 200


def test_submitting_without_credentials_is_401(event):
    response = post_submission(APIClient())
    assert_error(response, 401, "not_authenticated",
                 "Authentication credentials were not provided.")
    assert not Submission.objects.exists()


def test_a_bad_token_is_401(event):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert_error(post_submission(client), 401, "authentication_failed", "Invalid token.")


# --- submission rules --------------------------------------------------------------

def test_submitting_before_signing_up_says_to_sign_up(event):
    response = post_submission(client_for(make_user("alice")))
    assert_error(response, 403, "permission_denied",
                 f"sign up to {EVENT} first")


def test_signing_up_then_submitting_is_accepted(event):
    client = client_for(make_user("alice"))
    signup = client.post(f"/api/v1/events/{EVENT}/signup/")
    assert signup.status_code == 201
    assert signup.json() == {"event": EVENT, "team": "alice", "approved": True}

    response = post_submission(client)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["event"], body["team"]) == ("first", EVENT, "alice")
    assert (body["state"], body["n_folds"]) == ("queued", 5)


def test_an_unapproved_sign_up_cannot_submit_yet(event):
    user = signed_up("alice", event)
    event.teams.update(approved=False)
    assert_error(post_submission(client_for(user)), 403, "permission_denied",
                 "awaits an event admin's approval")


def test_wrong_file_names_are_refused_naming_the_expected_files(alice):
    response = post_submission(client_for(alice), files={"classifier.py": STARTING_KIT})
    assert_error(response, 400, "invalid_submission",
                 "this problem needs exactly the files estimator.py; got classifier.py")


def test_an_extra_file_is_refused(alice):
    response = post_submission(client_for(alice),
                               files={"estimator.py": STARTING_KIT, "utils.py": b"x = 1\n"})
    assert_error(response, 400, "invalid_submission",
                 "needs exactly the files estimator.py; got estimator.py, utils.py")


def test_a_request_without_files_is_refused(alice):
    response = post_submission(client_for(alice), files={})
    assert_error(response, 400, "invalid_submission",
                 "upload each as a multipart file field named 'files'")


@pytest.mark.parametrize(("file_name", "reason"), [
    ("../estimator.py", "is a path"), ("sub/estimator.py", "is a path"),
    ("..\\estimator.py", "is a path"), ("..", "names a folder, not a file"),
    (".estimator.py", "is a dot-file"), ("estimator.py\x00", "an unprintable character"),
])
def test_unsafe_file_names_are_refused_by_the_service(alice, event, file_name, reason):
    # The API refuses them too (tests/databoard/test_uploads.py); the service
    # refuses them for every other caller.
    with pytest.raises(InvalidSubmission, match=f"^file name .* {reason}"):
        databoard_services.submission_create(event=event, user=alice, name="first",
                                             files={file_name: STARTING_KIT})
    assert not Submission.objects.exists()


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(alice, settings):
    settings.DATARUN_MAX_SUBMISSION_FILE_BYTES = 100
    response = post_submission(client_for(alice))
    assert_error(response, 400, "invalid_submission",
                 f"estimator.py is {len(STARTING_KIT)} bytes; "
                 "the limit is 100 bytes per file")


def test_a_closed_event_refuses_participants_but_not_its_admins(event, alice):
    event.closes_at = timezone.now() - timedelta(hours=1)
    event.save()
    admin = signed_up("organiser", event)
    event.admins.add(admin)

    response = post_submission(client_for(alice))
    assert_error(response, 403, "submission_refused",
                 "the event closed for submissions at "
                 f"{event.closes_at:%Y-%m-%d %H:%M:%S} UTC")
    assert response.json()["error"]["details"] == {"rule": "closed", "next_allowed_at": None}

    assert post_submission(client_for(admin), name="admin-check").status_code == 201


def test_an_event_not_yet_open_says_when_it_opens(event, alice):
    event.opens_at = timezone.now() + timedelta(days=1)
    event.save()
    response = post_submission(client_for(alice))
    assert_error(response, 403, "submission_refused",
                 f"the event opens for submissions at {event.opens_at:%Y-%m-%d %H:%M:%S} UTC")
    assert response.json()["error"]["details"] == {
        "rule": "not_open", "next_allowed_at": event.opens_at.isoformat()}


@pytest.mark.parametrize("name", ["", "-starts-with-dash", "has space", "a/b", "x" * 101])
def test_an_invalid_submission_name_is_refused(alice, name):
    response = post_submission(client_for(alice), name=name)
    assert_error(response, 400, "invalid_submission", "a submission name is 1-100 letters")


def test_a_duplicate_submission_name_is_refused(alice):
    client = client_for(alice)
    assert post_submission(client, name="rf").status_code == 201
    assert_error(post_submission(client, name="rf"), 400, "invalid_submission",
                 "your team already has a submission named 'rf'")
    assert Submission.objects.count() == 1


def test_a_participant_cannot_see_another_users_submission(alice, event):
    submission_id = post_submission(client_for(alice)).json()["id"]
    bob = signed_up("bob", event)

    assert client_for(alice).get(f"/api/v1/submissions/{submission_id}/").status_code == 200
    response = client_for(bob).get(f"/api/v1/submissions/{submission_id}/")
    assert_error(response, 404, "not_found", f"no submission {submission_id} of yours")
    assert client_for(bob).get("/api/v1/submissions/").json()["results"] == []


def test_an_unknown_url_answers_with_the_error_shape():
    assert_error(APIClient().get("/api/v1/no-such-thing/"), 404, "not_found")
    # Not a CSRF failure page for a POST, not Django's HTML page for a newline.
    client = APIClient(enforce_csrf_checks=True)
    assert_error(client.post("/api/v1/submissions/-1/cancel/"), 404, "not_found")
    assert_error(client.get("/api/v1/events/%0A/"), 404, "not_found")


# --- malformed requests answer 400, not 500 -------------------------------------------

@pytest.mark.parametrize("body", ["null", "0", '"AAA"', "[null, null]", "false"])
def test_an_invitation_whose_body_is_not_an_object_is_refused(alice, event, body):
    response = client_for(alice).post(f"/api/v1/events/{EVENT}/team/invitations/", body,
                                      content_type="application/json")
    assert_error(response, 400, "invalid")


def test_a_team_rename_whose_body_is_not_an_object_is_refused(alice, event):
    response = client_for(alice).patch(f"/api/v1/events/{EVENT}/team/", "[1]",
                                       content_type="application/json")
    assert_error(response, 400, "invalid")


def test_an_invited_username_with_a_nul_character_is_refused(alice, event):
    response = client_for(alice).post(f"/api/v1/events/{EVENT}/team/invitations/",
                                      {"username": "bo\x00b"}, format="json")
    assert_error(response, 400, "invalid", "username: Null characters are not allowed")


def test_a_nul_character_in_an_api_url_is_refused(alice):
    submission = Submission.objects.get(id=post_submission(client_for(alice)).json()["id"])
    base = f"/api/v1/submissions/{submission.id}/runs/{submission.evaluation_id}/artifacts/"
    client = client_for(alice)
    assert client.get(base + "submission/estimator.py").content == STARTING_KIT

    assert_error(client.get(base + "submission%00/estimator.py"), 400, "invalid", "NUL")
    assert_error(client.get(f"/api/v1/events/{EVENT}/leaderboard/?kind=mean%00"),
                 400, "invalid", "NUL")


# --- leaderboard ---------------------------------------------------------------------

def submit_scored(event: Event, username: str, *, valid, test=0.5, valid_mean=None,
                  name: str = "sub", user=None) -> Submission:
    """A submission whose evaluation the scorer finished with these official
    scores, by a new user signed up as ``username`` (or by ``user``)."""
    user = user or signed_up(username, event)
    submission = databoard_services.submission_create(
        event=event, user=user, name=name, files={"estimator.py": STARTING_KIT})
    evaluation = Evaluation.objects.get(id=submission.evaluation_id)
    evaluation.state = RunState.SCORED
    evaluation.save(update_fields=["state"])
    official = ScoreType.objects.get(problem=evaluation.problem, index=0)
    EvaluationScore.objects.bulk_create([
        EvaluationScore(evaluation=evaluation, score_type=official, step="valid",
                        mean=valid if valid_mean is None else valid_mean, std=0.01,
                        bagged=valid),
        EvaluationScore(evaluation=evaluation, score_type=official, step="test",
                        mean=test, std=0.01, bagged=test),
    ])
    # What the scorer sends once the evaluation is scored (the leaderboard listens).
    evaluation_scored.send(sender=Evaluation, evaluation_id=evaluation.id)
    return submission


def leaderboard(client: APIClient, event: str = EVENT, **params) -> dict:
    response = client.get(f"/api/v1/events/{event}/leaderboard/", params)
    assert response.status_code == 200, response.content
    return response.json()


def ranking(board: dict, score: str) -> list[tuple]:
    return [(row["rank"], row["team"], row["scores"][score]["valid"].get(board["kind"]))
            for row in board["rows"]]


def test_leaderboard_ranks_higher_accuracy_first_and_missing_scores_last(event):
    # Missing scores submitted first, so that submission order alone would
    # rank them first.
    submit_scored(event, "nan", valid=math.nan)
    submit_scored(event, "good", valid=0.9)
    submit_scored(event, "none", valid=None)
    submit_scored(event, "best", valid=0.95)

    board = leaderboard(APIClient())

    assert ranking(board, "acc") == [
        (1, "best", 0.95), (2, "good", 0.9), (3, "nan", None), (4, "none", None),
    ]


def test_leaderboard_ranks_lower_rmse_first_and_missing_scores_last():
    event = make_event("diabetes", name="diabetes-2025")
    submit_scored(event, "nan", valid=math.nan, valid_mean=math.nan)
    submit_scored(event, "worse", valid=60.0, valid_mean=40.0)
    submit_scored(event, "better", valid=50.0, valid_mean=55.0)

    assert ranking(leaderboard(APIClient(), "diabetes-2025"), "rmse") == [
        (1, "better", 50.0), (2, "worse", 60.0), (3, "nan", None),
    ]
    assert ranking(leaderboard(APIClient(), "diabetes-2025", kind="mean"), "rmse") == [
        (1, "worse", 40.0), (2, "better", 55.0), (3, "nan", None),
    ]


def test_leaderboard_leaves_out_submissions_not_scored_yet(event, alice):
    submit_scored(event, "bob", valid=0.9)
    post_submission(client_for(alice))  # queued

    assert [row["team"] for row in leaderboard(APIClient())["rows"]] == ["bob"]


def test_leaderboard_refuses_an_unknown_kind(event):
    response = APIClient().get(f"/api/v1/events/{EVENT}/leaderboard/", {"kind": "median"})
    assert_error(response, 400, "invalid", "kind must be 'bagged' or 'mean'")


def test_a_private_event_has_no_public_leaderboard():
    make_event(is_public=False)
    response = APIClient().get(f"/api/v1/events/{EVENT}/leaderboard/")
    assert_error(response, 404, "not_found", f"no event named '{EVENT}'")


# --- test scores are for event admins ----------------------------------------------------

@pytest.fixture
def scored_submission(event) -> Submission:
    return submit_scored(event, "alice", valid=0.9, test=0.8)


@pytest.fixture
def organiser(event):
    user = make_user("organiser")
    event.admins.add(user)
    return user


def test_leaderboard_shows_test_scores_to_event_admins_only(scored_submission, organiser):
    participant = client_for(scored_submission.submitted_by)
    for board in (leaderboard(APIClient()), leaderboard(participant)):
        assert board["test_scores_shown"] is False
        (row,) = board["rows"]
        assert row["scores"]["acc"] == {"valid": {"mean": 0.9, "std": 0.01, "bagged": 0.9}}
        assert row["test_time"] is None

    board = leaderboard(client_for(organiser))
    assert board["test_scores_shown"] is True
    (row,) = board["rows"]
    assert row["scores"]["acc"]["test"] == {"mean": 0.8, "std": 0.01, "bagged": 0.8}


def test_submission_detail_shows_test_scores_to_event_admins_only(scored_submission, organiser):
    url = f"/api/v1/submissions/{scored_submission.id}/"

    mine = client_for(scored_submission.submitted_by).get(url).json()
    assert mine["scores"]["acc"] == {"valid": {"mean": 0.9, "std": 0.01, "bagged": 0.9}}

    theirs = client_for(organiser).get(url).json()
    assert theirs["scores"]["acc"]["test"]["bagged"] == 0.8


def test_submission_list_does_not_show_test_scores_to_participants(scored_submission):
    (listed,) = client_for(scored_submission.submitted_by).get(
        "/api/v1/submissions/").json()["results"]
    assert listed["scores"]["acc"] == {"valid": {"mean": 0.9, "std": 0.01, "bagged": 0.9}}
