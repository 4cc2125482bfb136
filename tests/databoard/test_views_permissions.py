"""The web pages' permissions matrix: every page and form action, for an
anonymous visitor, the participant whose team owns the submission, a member
of another team, an admin of the event (in no team) and a superuser (in no
team); and CSRF on every form action."""
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import get_resolver
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
LOGIN = "login"  # a redirect to the login page


@pytest.fixture(scope="module")
def iris_problem(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        problem = datarun_services.problem_import_ramp_kit(path=EXAMPLES / "iris",
                                                           name="iris-web-matrix")
    yield problem.name
    with django_db_blocker.unblock():
        Problem.objects.filter(name=problem.name).delete()


@pytest.fixture
def world(iris_problem):
    event = Event.objects.create(name=EVENT, title=EVENT, problem_name=iris_problem,
                                 is_competitive=True,
                                 public_opens_at=timezone.now() + timedelta(days=1))
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
    Evaluation.objects.filter(id=submission.evaluation_id).update(
        state=RunState.ERROR, error_kind=ErrorKind.PARTICIPANT)
    bobs = post_submission(client_for(users["other_team"]), name="bobs").json()["id"]
    make_user("carol")
    pending = Team.objects.create(event=event, name="pending", approved=False)
    invitation = services.team_invite(
        team=services.team_of(event=event, user=users["participant"]),
        user=users["participant"], username="bob")
    pool, _ = datarun_services.pool_create(user=superuser(), name="site-a", sandbox="local")
    return {"pool": pool.name, "event": event, "users": users, "sub": submission.id, "bobs": bobs,
            "team": pending.id, "inv": invitation.id, "run": submission.evaluation_id}


def _client(world, role, **kwargs) -> Client:
    client = Client(**kwargs)
    if world["users"][role] is not None:
        client.force_login(world["users"][role])
    return client


def _url(world, url: str) -> str:
    return url.format(event=EVENT, sub=world["sub"], bobs=world["bobs"], team=world["team"],
                      inv=world["inv"], problem=world["event"].problem_name,
                      dataset="none-such", number=1, run=world["run"], pool=world["pool"])


def _outcome(response) -> int | str:
    if response.status_code == 302 and "/accounts/login/" in response["Location"]:
        return LOGIN
    return response.status_code


# Form data.
SIGNUP = {'username': 'newbie', 'email': 'n@example.org',
          'password1': 'a-long-pass-phrase-9', 'password2': 'a-long-pass-phrase-9'}
PROFILE = {'first_name': 'A', 'last_name': 'B', 'email': 'a@example.org', 'affiliation': '',
           'time_zone': ''}
PASSWORD_CHANGE = {'old_password': 'wrong', 'new_password1': 'x', 'new_password2': 'y'}
NEW_EVENT = {'problem_name': 'iris-web-matrix', 'name': 'new-event', 'title': 'New'}
RULES = {'title': 'Renamed', 'max_team_size': '3', 'leaderboard_kind': 'bagged',
         'min_submission_interval_s': '0'}

# (method, url, data, expected outcome per role in ROLES order). 302 is a
# redirect after a successful action, or away from a page the user does not
# need (sign-up when logged in); 400 a refusal the page explains.
MATRIX = [
    ('GET', '/api/schema/', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/api/schema/swagger/', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/', None,
     (302, 302, 302, 302, 302)),
    ('GET', '/events/', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/favicon.ico', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/events/{event}/', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/events/{event}/starting-kit.zip', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/events/{event}/sandbox/', None,
     (LOGIN, 200, 200, 403, 403)),
    ('POST', '/events/{event}/sandbox/', {'file-estimator.py': 'x = 1\n'},
     (LOGIN, 302, 302, 403, 403)),
    ('POST', '/events/{event}/sandbox/upload/', None,
     (LOGIN, 400, 400, 403, 403)),
    ('GET', '/events/{event}/sandbox/files/estimator.py', None,
     (LOGIN, 200, 200, 403, 403)),
    ('GET', '/my/submissions/', None,
     (LOGIN, 200, 200, 200, 200)),
    ('GET', '/submissions/{sub}/', None,
     (LOGIN, 200, 404, 200, 200)),
    ('GET', '/submissions/{sub}/status/', None,
     (LOGIN, 200, 404, 200, 200)),
    # Leaderboards, code (before the public opening), pictures: databoard/views/boards.py.
    ('GET', '/events/{event}/leaderboard/', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/events/{event}/leaderboard/?board=private', None,
     (403, 403, 403, 200, 200)),
    ('GET', '/events/{event}/leaderboard/table/?board=competition', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/events/{event}/leaderboard.csv?board=private', None,
     (403, 403, 403, 200, 200)),
    ('GET', '/events/{event}/pictures/', None,
     (200, 200, 200, 200, 200)),
    ('POST', '/submissions/{sub}/select/', None,
     (LOGIN, 302, 404, 404, 404)),
    ('GET', '/submissions/{sub}/code/', None,
     (404, 200, 404, 200, 200)),
    ('GET', '/submissions/{sub}/diff/', None,
     (404, 200, 404, 200, 200)),
    ('POST', '/submissions/{sub}/import/', None,
     (LOGIN, 302, 404, 403, 403)),
    ('GET', '/submissions/{sub}/pictures/', None,
     (LOGIN, 200, 404, 200, 200)),
    # Runs: the team's and the event admins'; this run failed, so a
    # reproduction is refused (409) even to admins.
    ('GET', '/submissions/{sub}/runs/', None,
     (LOGIN, 302, 404, 302, 302)),
    ('GET', '/submissions/{sub}/runs/{run}/', None,
     (LOGIN, 200, 404, 200, 200)),
    ('GET', '/submissions/{sub}/runs/{run}/live/', None,
     (LOGIN, 200, 404, 200, 200)),
    ('POST', '/submissions/{sub}/reproduce/', None,
     (LOGIN, 403, 404, 409, 409)),
    ('GET', '/accounts/signup/', None,
     (200, 302, 302, 302, 302)),
    ('POST', '/accounts/signup/', SIGNUP,
     (302, 302, 302, 302, 302)),
    ('GET', '/accounts/login/', None,
     (200, 302, 302, 302, 302)),
    ('POST', '/accounts/login/', {'username': 'carol', 'password': 'pw-carol-1234'},
     (302, 302, 302, 302, 302)),
    ('POST', '/accounts/logout/', None,
     (302, 302, 302, 302, 302)),
    ('GET', '/accounts/profile/', None,
     (LOGIN, 200, 200, 200, 200)),
    ('POST', '/accounts/profile/', PROFILE,
     (LOGIN, 302, 302, 302, 302)),
    ('POST', '/accounts/profile/token/', {'action': 'create'},
     (LOGIN, 302, 302, 302, 302)),
    ('GET', '/accounts/password/change/', None,
     (LOGIN, 200, 200, 200, 200)),
    ('POST', '/accounts/password/change/', PASSWORD_CHANGE,
     (LOGIN, 200, 200, 200, 200)),
    ('GET', '/accounts/password/change/done/', None,
     (LOGIN, 200, 200, 200, 200)),
    ('GET', '/accounts/password/reset/', None,
     (200, 200, 200, 200, 200)),
    ('POST', '/accounts/password/reset/', {'email': 'nobody@example.org'},
     (302, 302, 302, 302, 302)),
    ('GET', '/accounts/password/reset/sent/', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/accounts/password/reset/MQ/bad-token/', None,
     (200, 200, 200, 200, 200)),
    ('GET', '/accounts/password/reset/complete/', None,
     (200, 200, 200, 200, 200)),
    ('POST', '/events/{event}/signup/', None,
     (LOGIN, 302, 302, 302, 302)),
    ('GET', '/events/{event}/team/', None,
     (LOGIN, 200, 200, 200, 200)),
    ('POST', '/events/{event}/team/rename/', {'name': 'renamed'},
     (LOGIN, 302, 302, 404, 404)),
    ('POST', '/events/{event}/team/invite/', {'username': 'carol'},
     (LOGIN, 302, 302, 403, 403)),
    ('POST', '/events/{event}/team/leave/', None,
     (LOGIN, 400, 400, 400, 400)),
    ('POST', '/invitations/{inv}/accept/', None,
     (LOGIN, 404, 400, 404, 404)),
    ('POST', '/invitations/{inv}/decline/', None,
     (LOGIN, 404, 302, 404, 404)),
    ('GET', '/organiser/', None,
     (LOGIN, 403, 403, 200, 200)),
    ('GET', '/organiser/events/new/', None,
     (LOGIN, 403, 403, 403, 200)),
    ('POST', '/organiser/events/new/', NEW_EVENT,
     (LOGIN, 403, 403, 403, 400)),
    ('GET', '/organiser/kits/new/', None,
     (LOGIN, 403, 403, 403, 200)),
    ('POST', '/organiser/kits/new/', {'name': 'no-file'},
     (LOGIN, 403, 403, 403, 400)),
    ('GET', '/organiser/accounts/import/', None,
     (LOGIN, 403, 403, 200, 200)),
    ('POST', '/organiser/accounts/import/', {'csv_text': 'username,email\n'},
     (LOGIN, 403, 403, 400, 400)),
    ('POST', '/events/{event}/organise/admins/', {'username': 'nobody'},
     (LOGIN, 403, 403, 404, 404)),
    ('POST', '/events/{event}/organise/announce/', {'subject': '', 'body': ''},
     (LOGIN, 403, 403, 400, 400)),
    ('GET', '/organiser/queue/', None,
     (LOGIN, 403, 403, 200, 200)),
    ('GET', '/organiser/pools/', None,
     (LOGIN, 403, 403, 403, 200)),
    ('POST', '/organiser/pools/', {"name": "gpu-box", "sandbox": "docker", "concurrency": 1,
                                   "cpus_per_slot": 1, "memory_mb_per_slot": 2048,
                                   "gpus_per_slot": 0},
     (LOGIN, 403, 403, 403, 201)),
    ('POST', '/organiser/pools/{pool}/token/', None,
     (LOGIN, 403, 403, 403, 200)),
    ('GET', '/events/{event}/organise/', None,
     (LOGIN, 403, 403, 200, 200)),
    ('POST', '/events/{event}/organise/', RULES,
     (LOGIN, 403, 403, 302, 302)),
    ('GET', '/events/{event}/organise/signups/', None,
     (LOGIN, 403, 403, 200, 200)),
    ('POST', '/events/{event}/organise/signups/{team}/approve/', None,
     (LOGIN, 403, 403, 302, 302)),
    ('POST', '/events/{event}/organise/signups/{team}/reject/', None,
     (LOGIN, 403, 403, 302, 302)),
    ('GET', '/events/{event}/organise/submissions/', None,
     (LOGIN, 403, 403, 200, 200)),
    ('POST', '/events/{event}/organise/submissions/rerun-failed/', None,
     (LOGIN, 403, 403, 302, 302)),
    ('POST', '/events/{event}/organise/submissions/{sub}/rerun/', None,
     (LOGIN, 403, 403, 302, 302)),
    ('POST', '/events/{event}/organise/submissions/{bobs}/cancel/', None,
     (LOGIN, 403, 403, 302, 302)),
    # The data dashboard, staff only: databoard/views/data.py (no dataset in this world).
    ('GET', '/data/datasets/', None,
     (LOGIN, 403, 403, 403, 200)),
    ('GET', '/data/datasets/{dataset}/v{number}/', None,
     (LOGIN, 403, 403, 403, 404)),
    ('GET', '/data/problems/{problem}/', None,
     (LOGIN, 403, 403, 403, 200)),
]
IDS = [f"{method} {url}" for method, url, _, _ in MATRIX]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", MATRIX, ids=IDS)
def test_web_permissions_matrix(world, page, role):
    method, url, data, expected = page
    response = getattr(_client(world, role), method.lower())(_url(world, url), data or {})
    assert _outcome(response) == expected[ROLES.index(role)], (url, role)


@pytest.mark.parametrize("page", [p for p in MATRIX if p[0] == "POST"],
                         ids=[i for i in IDS if i.startswith("POST")])
def test_every_form_action_needs_the_csrf_token(world, page):
    _, url, data, _ = page
    for role in ("participant", "event_admin", "superuser"):
        client = _client(world, role, enforce_csrf_checks=True)
        assert client.post(_url(world, url), data or {}).status_code == 403, (page, role)


def test_every_page_is_in_the_matrix():
    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                if str(p.pattern) not in ("admin/", "api/v1/"):
                    yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern)

    def as_route(url: str) -> str:
        url = url.split("?")[0].lstrip("/").replace("files/estimator.py", "files/{file}")
        for key in ("{event}", "{sub}", "{bobs}", "{team}", "{inv}", "{problem}", "{dataset}",
                    "{number}", "{run}", "{pool}", "{file}"):
            url = url.replace(key, "<>")
        return url.replace("password/reset/MQ/bad-token/", "password/reset/<>/<>/")

    covered = {as_route(url) for _, url, _, _ in MATRIX}
    routes = {re.sub(r"<[^>]+>", "<>", r) for r in walk(get_resolver().url_patterns)}
    assert routes - covered == set()
