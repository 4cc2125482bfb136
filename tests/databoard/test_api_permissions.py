"""The API's permissions matrix: every endpoint, for an anonymous visitor,
the participant whose team owns the submission, a member of another team,
an admin of the event (in no team) and a superuser (in no team)."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from databoard import services
from databoard.models import Event, Submission, Team
from datarun import services as datarun_services
from datarun.models import Evaluation, Problem
from datarun.states import ErrorKind, RunState
from tests.conftest import EXAMPLES, superuser
from tests.databoard.test_api import EVENT, client_for, make_user, post_submission

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "participant", "other_team", "event_admin", "superuser")


@pytest.fixture(scope="module")
def iris_problem(django_db_setup, django_db_blocker):
    """The kit imported once for the module (committed), removed at its end."""
    with django_db_blocker.unblock():
        problem = datarun_services.problem_import_ramp_kit(path=EXAMPLES / "iris",
                                                           name="iris-matrix")
    yield problem.name
    with django_db_blocker.unblock():
        Problem.objects.filter(name=problem.name).delete()


@pytest.fixture
def world(iris_problem):
    event = Event.objects.create(name=EVENT, title=EVENT, problem_name=iris_problem,
                                 is_competitive=True)
    users = {
        "participant": make_user("alice"),
        "other_team": make_user("bob"),
        "event_admin": make_user("organiser"),
        "superuser": get_user_model().objects.create_superuser("root", password="pw-root-1234"),
        "anonymous": None,
    }
    for role in ("participant", "other_team"):
        services.event_signup(event=event, user=users[role])
    event.admins.add(users["event_admin"])
    submission_id = post_submission(client_for(users["participant"]), name="alices").json()["id"]
    submission = Submission.objects.get(id=submission_id)
    # A participant error: something an organiser could re-run.
    Evaluation.objects.filter(id=submission.evaluation_id).update(
        state=RunState.ERROR, error_kind=ErrorKind.PARTICIPANT)
    make_user("carol")
    pending = Team.objects.create(event=event, name="pending", approved=False)
    invitation = services.team_invite(
        team=services.team_of(event=event, user=users["participant"]),
        user=users["participant"], username="bob")
    pool, _ = datarun_services.pool_create(user=superuser(), name="site-a", sandbox="local")
    return {"pool": pool.name, "event": event, "users": users, "submission": submission,
            "pending": pending,
            "invitation": invitation}


def _request(world, role, method, url, data=None):
    client = client_for(world["users"][role])
    if method == "POST_FILES":
        return post_submission(client, name=f"by-{role}")
    url = url.format(event=EVENT, sub=world["submission"].id, team=world["pending"].id,
                     inv=world["invitation"].id, problem=world["event"].problem_name,
                     dataset="none-such", number=1, file="train.csv",
                     evaluation=world["submission"].evaluation_id,
                     run=world["submission"].evaluation_id, artifact="submission/estimator.py",
                     digest="0" * 64, lock="0" * 64, pool=world["pool"])
    if isinstance(data, dict):
        data = {k: v.format(pool=world["pool"]) if isinstance(v, str) else v
                for k, v in data.items()}
    return getattr(client, method.lower())(url, data or {}, format="json")


# endpoint -> (method, url, data, expected status per role in ROLES order)
MATRIX = {
    "health": ("GET", "/api/v1/health/", None, (200, 200, 200, 200, 200)),
    "event list": ("GET", "/api/v1/events/", None, (200, 200, 200, 200, 200)),
    "event detail": ("GET", "/api/v1/events/{event}/", None, (200, 200, 200, 200, 200)),
    "event edit": ("PATCH", "/api/v1/events/{event}/", {"max_submissions_per_day": 3},
                   (403, 403, 403, 200, 200)),
    "sign up": ("POST", "/api/v1/events/{event}/signup/", None, (401, 201, 201, 201, 201)),
    "my team": ("GET", "/api/v1/events/{event}/team/", None, (401, 200, 200, 404, 404)),
    "team history": ("GET", "/api/v1/events/{event}/team/history/", None,
                     (401, 200, 200, 404, 404)),
    "rename team": ("PATCH", "/api/v1/events/{event}/team/", {"name": "renamed"},
                    (401, 200, 200, 404, 404)),
    "invite": ("POST", "/api/v1/events/{event}/team/invitations/", {"username": "carol"},
               (401, 201, 201, 403, 403)),
    "leave team": ("POST", "/api/v1/events/{event}/team/leave/", None,
                   (401, 400, 204, 400, 400)),
    "teams of the event": ("GET", "/api/v1/events/{event}/teams/", None,
                           (401, 403, 403, 200, 200)),
    "approve sign-up": ("POST", "/api/v1/teams/{team}/approve/", None,
                        (401, 403, 403, 200, 200)),
    "reject sign-up": ("POST", "/api/v1/teams/{team}/reject/", None, (401, 403, 403, 204, 204)),
    "invitations": ("GET", "/api/v1/invitations/", None, (401, 200, 200, 200, 200)),
    "accept invitation": ("POST", "/api/v1/invitations/{inv}/accept/", None,
                          (401, 404, 200, 404, 404)),
    "decline invitation": ("POST", "/api/v1/invitations/{inv}/decline/", None,
                           (401, 404, 204, 404, 404)),
    "submit": ("POST_FILES", None, None, (401, 201, 201, 403, 403)),
    "my submissions": ("GET", "/api/v1/submissions/", None, (401, 200, 200, 200, 200)),
    "pools": ("GET", "/api/v1/pools/", None, (401, 403, 403, 403, 200)),
    # Kit upload reads multipart only: a superuser's JSON body is a 415.
    "upload kit": ("POST", "/api/v1/kits/", {"name": "x"}, (401, 403, 403, 403, 415)),
    "kit report": ("GET", "/api/v1/events/{event}/kit-report/", None,
                   (401, 403, 403, 404, 404)),
    "create pool": ("POST", "/api/v1/pools/", {"name": "site-b", "sandbox": "local"},
                    (401, 403, 403, 403, 201)),
    "reset pool token": ("POST", "/api/v1/pools/{pool}/token/", None,
                         (401, 403, 403, 403, 200)),
    "assign event pool": ("PUT", "/api/v1/events/{event}/pool/", {"pool": "{pool}"},
                          (401, 403, 403, 403, 200)),
    # The runner API takes runner and fold tokens only: no user, even a
    # superuser, claims or reports a fold.
    "runner problem": ("POST", "/api/v1/runner/problems/", {"name": "x"}, (401,) * 5),
    "runner claim next": ("POST", "/api/v1/runner/claim/",
                          {"host": "h", "sandbox": "local"}, (401,) * 5),
    "runner claim": ("POST", "/api/v1/runner/folds/{sub}/claim/",
                     {"host": "h", "sandbox": "local"}, (401,) * 5),
    "runner input": ("GET", "/api/v1/runner/folds/{sub}/inputs/{digest}", None, (401,) * 5),
    "runner environment": ("GET", "/api/v1/runner/environments/{lock}/", None, (401,) * 5),
    "runner wheel": ("GET", "/api/v1/runner/wheels/{digest}", None, (401,) * 5),
    "runner heartbeat": ("POST", "/api/v1/runner/folds/{sub}/heartbeat/", None, (401,) * 5),
    "runner logs": ("POST", "/api/v1/runner/folds/{sub}/logs/", {"lines": []}, (401,) * 5),
    "runner outcome": ("POST", "/api/v1/runner/folds/{sub}/outcome/", None, (401,) * 5),
    "submission detail": ("GET", "/api/v1/submissions/{sub}/", None, (401, 200, 404, 200, 200)),
    "submission code": ("GET", "/api/v1/submissions/{sub}/code/", None,
                        (404, 200, 404, 200, 200)),
    # The collaborative phase, before the public opening: only the team and admins
    # read the code; importing needs a team of the event (the diff is with itself).
    "submission diff": ("GET", "/api/v1/submissions/{sub}/diff/?against={sub}", None,
                        (404, 200, 404, 200, 200)),
    "submission import": ("POST", "/api/v1/submissions/{sub}/import/", None,
                          (401, 200, 404, 403, 403)),
    "submission credits": ("GET", "/api/v1/submissions/{sub}/credits/", None,
                           (404, 200, 404, 200, 200)),
    "select for competition": ("POST", "/api/v1/submissions/{sub}/select/", None,
                               (401, 200, 404, 404, 404)),
    "re-run": ("POST", "/api/v1/submissions/{sub}/rerun/", None, (401, 403, 404, 202, 202)),
    "cancel": ("POST", "/api/v1/submissions/{sub}/cancel/", None, (401, 403, 404, 409, 409)),
    "starting kit": ("GET", "/api/v1/events/{event}/starting-kit.zip", None,
                     (200, 200, 200, 200, 200)),
    # Runs: the team's and the event admins' (an error run: nothing to reproduce).
    "runs": ("GET", "/api/v1/submissions/{sub}/runs/", None, (401, 200, 404, 200, 200)),
    "run": ("GET", "/api/v1/submissions/{sub}/runs/{run}/", None, (401, 200, 404, 200, 200)),
    "run logs": ("GET", "/api/v1/submissions/{sub}/runs/{run}/logs/", None,
                 (401, 200, 404, 200, 200)),
    "run artifact": ("GET", "/api/v1/submissions/{sub}/runs/{run}/artifacts/{artifact}", None,
                     (401, 200, 404, 200, 200)),
    "submission logs": ("GET", "/api/v1/submissions/{sub}/logs/", None,
                        (401, 200, 404, 200, 200)),
    "reproduce": ("POST", "/api/v1/submissions/{sub}/reproduce/", None,
                  (401, 403, 404, 409, 409)),
    "re-run failed": ("POST", "/api/v1/events/{event}/rerun-failed/", None,
                      (401, 403, 403, 202, 202)),
    "public leaderboard": ("GET", "/api/v1/events/{event}/leaderboard/", None,
                           (200, 200, 200, 200, 200)),
    "private leaderboard": ("GET", "/api/v1/events/{event}/leaderboard/?board=private", None,
                            (403, 403, 403, 200, 200)),
    "competition leaderboard": ("GET", "/api/v1/events/{event}/leaderboard/?board=competition",
                                None, (200, 200, 200, 200, 200)),
    "leaderboard csv": ("GET", "/api/v1/events/{event}/leaderboard.csv", None,
                        (200, 200, 200, 200, 200)),
    "private leaderboard csv": ("GET", "/api/v1/events/{event}/leaderboard.csv?board=private",
                                None, (403, 403, 403, 200, 200)),
    # The data dashboard, staff only (no dataset in this world).
    "dataset version dashboard": ("GET", "/api/v1/datasets/{dataset}/versions/{number}/dashboard/",
                                  None, (401, 403, 403, 403, 404)),
    "problem dashboard": ("GET", "/api/v1/problems/{problem}/dashboard/", None,
                          (401, 403, 403, 403, 200)),
    # Problems, staff only: a declarative spec (this one is refused), a summary, the kit
    # with its test labels.
    "problem create": ("POST", "/api/v1/problems/", {"name": "none-such"},
                       (401, 403, 403, 403, 400)),
    "problem": ("GET", "/api/v1/problems/{problem}/", None, (401, 403, 403, 403, 200)),
    "problem kit": ("GET", "/api/v1/problems/{problem}/kit.zip", None,
                    (401, 403, 403, 403, 200)),
    # Its own environment (none: the shared runtime); a pip option is refused.
    "problem environment": ("GET", "/api/v1/problems/{problem}/environment/", None,
                            (401, 403, 403, 403, 200)),
    "problem environment set": ("PUT", "/api/v1/problems/{problem}/environment/",
                                {"requirements": "-r /etc/passwd"}, (401, 403, 403, 403, 400)),
    # Datasets, staff only (no dataset in this world).
    "datasets": ("GET", "/api/v1/datasets/", None, (401, 403, 403, 403, 200)),
    "dataset create": ("POST", "/api/v1/datasets/", {"name": "none-such"},
                       (401, 403, 403, 403, 400)),
    "dataset": ("GET", "/api/v1/datasets/{dataset}/", None, (401, 403, 403, 403, 404)),
    "dataset version": ("GET", "/api/v1/datasets/{dataset}/versions/{number}/", None,
                        (401, 403, 403, 403, 404)),
    "dataset version croissant": ("GET",
                                  "/api/v1/datasets/{dataset}/versions/{number}/croissant.json",
                                  None, (401, 403, 403, 403, 404)),
    "dataset version file": ("GET", "/api/v1/datasets/{dataset}/versions/{number}/files/{file}",
                             None, (401, 403, 403, 403, 404)),
    # Re-scores, staff only: on the problem it already ran on (refused), and the drift.
    "evaluation re-score": ("POST", "/api/v1/evaluations/{evaluation}/rescore/",
                            {"problem": "iris-matrix"}, (401, 403, 403, 403, 400)),
    "evaluation drift": ("GET", "/api/v1/evaluations/{evaluation}/drift/", None,
                         (401, 403, 403, 403, 200)),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_permissions_matrix(world, endpoint, role):
    method, url, data, expected = MATRIX[endpoint]
    response = _request(world, role, method, url, data)
    assert response.status_code == expected[ROLES.index(role)], (
        endpoint, role, response.content[:300])
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_every_api_endpoint_is_in_the_matrix():
    from django.urls import get_resolver

    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    routes = {str(p.pattern) for p in api.url_patterns if p.name}
    covered = {"health/", "auth/token/"}  # token creation: tests/databoard/test_api.py
    for _method, url, _, _ in MATRIX.values():
        if url is None:
            covered.add("events/<slug:name>/submissions/")
            continue
        path = url.split("?")[0].removeprefix("/api/v1/")
        path = (path.replace("{event}", "<slug:name>").replace("{sub}", "<int:pk>")
                .replace("{team}", "<int:pk>").replace("{inv}", "<int:pk>")
                .replace("{problem}", "<slug:name>").replace("{dataset}", "<slug:name>")
                .replace("{number}", "<int:number>").replace("{file}", "<str:file_name>")
                .replace("{evaluation}", "<int:pk>").replace("{run}", "<int:run>")
                .replace("{artifact}", "<path:name>").replace("{digest}", "<str:digest>")
                .replace("{pool}", "<slug:name>").replace("{lock}", "<str:lock_hash>"))
        covered.add(path)
    assert routes - covered == set()


def test_my_submissions_lists_only_the_users_team(world):
    users = world["users"]
    assert [s["id"] for s in client_for(users["participant"]).get(
        "/api/v1/submissions/").json()["results"]] == [world["submission"].id]
    assert client_for(users["other_team"]).get("/api/v1/submissions/").json()["results"] == []


def test_code_is_readable_by_other_participants_only_after_public_opening(world):
    event, users = world["event"], world["users"]
    url = f"/api/v1/submissions/{world['submission'].id}/code/"
    event.public_opens_at = timezone.now() - timedelta(minutes=1)
    event.save()
    assert client_for(users["other_team"]).get(url).status_code == 200
    assert client_for(None).get(url).status_code == 404
    outsider = make_user("dave")  # logged in, not signed up
    assert client_for(outsider).get(url).status_code == 404


def test_private_scores_are_public_once_the_event_closes(world):
    event = world["event"]
    event.closes_at = timezone.now() - timedelta(minutes=1)
    event.save()
    response = client_for(None).get(f"/api/v1/events/{EVENT}/leaderboard/?board=private")
    assert response.status_code == 200
    assert response.json()["test_scores_shown"] is True


def test_a_participant_cannot_act_on_another_teams_submission(world):
    bob = client_for(world["users"]["other_team"])
    sub = world["submission"].id
    for url in (f"/api/v1/submissions/{sub}/select/", f"/api/v1/submissions/{sub}/rerun/",
                f"/api/v1/submissions/{sub}/cancel/"):
        assert bob.post(url).status_code == 404
    assert Team.objects.get(name="bob").selected_submission is None


def test_unlisted_event_is_hidden_from_outsiders_but_not_from_its_teams(world):
    event, users = world["event"], world["users"]
    event.is_public = False
    event.save()
    assert client_for(None).get(f"/api/v1/events/{EVENT}/").status_code == 404
    assert client_for(make_user("eve")).get(f"/api/v1/events/{EVENT}/").status_code == 404
    assert client_for(users["participant"]).get(f"/api/v1/events/{EVENT}/").status_code == 200
    listed = client_for(None).get("/api/v1/events/").json()["results"]
    assert EVENT not in [e["name"] for e in listed]
