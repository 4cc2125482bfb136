"""Schemathesis against the live server: every operation of the OpenAPI
description, as a participant and as an event admin, with data that fits the
schema and data that does not. No answer may be a server error, and every
answer must be one the schema documents (status code, content type, body).

Half the cases aim at real objects (the event, a submission, its run, an
invitation...), so that the views get past their 404s; the other half use
generated path parameters. Hypothesis is derandomized and bounded, so a run
is the same every time and takes a few minutes at most.
"""
import re
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from databoard import services
from databoard.models import Event, Submission, Team
from datarun import services as datarun_services
from tests.conftest import EXAMPLES
from tests.databoard.test_api import STARTING_KIT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVENT = "fuzzed"
PROBLEM = "iris-fuzzed"
EXAMPLES_PER_OPERATION = 12  # per role and generation mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@dataclass
class Tally:
    operations: set = field(default_factory=set)
    requests: int = 0
    server_errors: int = 0
    failures: dict = field(default_factory=dict)


@pytest.fixture
def world():
    """An event with a participant (one submission), an event admin, a pending
    team and an invitation: the objects real path parameters point at."""
    datarun_services.problem_import_ramp_kit(path=EXAMPLES / "iris", name=PROBLEM)
    event = Event.objects.create(name=EVENT, title=EVENT, problem_name=PROBLEM)
    users = {name: get_user_model().objects.create_user(name, password=f"pw-{name}-12345")
             for name in ("fuzz-alice", "fuzz-bob", "fuzz-organiser")}
    services.event_signup(event=event, user=users["fuzz-alice"])
    event.admins.add(users["fuzz-organiser"])
    submission = services.submission_create(event=event, user=users["fuzz-alice"],
                                            name="first", files={"estimator.py": STARTING_KIT})
    pending = Team.objects.create(event=event, name="pending", approved=False)
    invitation = services.team_invite(team=services.team_of(event=event, user=users["fuzz-alice"]),
                                      user=users["fuzz-alice"], username="fuzz-bob")
    return {"event": event, "users": users, "submission": submission, "pending": pending,
            "invitation": invitation}


def real_path_parameters(path: str, world) -> dict:
    """The path parameters of an operation, naming the world's objects."""
    submission: Submission = world["submission"]
    by_collection = {"events": EVENT, "problems": PROBLEM, "datasets": "iris-data",
                     "submissions": submission.id, "evaluations": submission.evaluation_id,
                     "invitations": world["invitation"].id, "teams": world["pending"].id,
                     "pools": "none-such", "runner": submission.evaluation_id}
    collection = by_collection.get(path.split("/")[3])
    values = {"name": collection, "id": collection,
              "run": submission.evaluation_id, "number": 1, "file_name": "train.csv",
              "digest": "0" * 64, "lock_hash": "0" * 64}
    if "/artifacts/" in path:
        values["name"] = "submission/estimator.py"
    return {name: values[name] for name in re.findall(r"{(\w+)}", path)}


def fuzz(operation, *, mode, token, world, base_url, tally: Tally) -> None:
    generated = operation.as_strategy(generation_mode=mode)
    real = real_path_parameters(operation.path, world)
    if real:
        generated = st.one_of(generated, operation.as_strategy(generation_mode=mode,
                                                               path_parameters=real))
    session = requests.Session()
    headers = {"Authorization": f"Token {token}"}

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=generated)
    def run(case):
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        tally.requests += 1
        tally.server_errors += response.status_code >= 500
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as exc:  # keep the first of each operation
            key = f"{operation.label} ({mode.value})"
            tally.failures.setdefault(key, f"{response.status_code}: {exc}"[:1500])

    try:
        run()
    except Unsatisfiable:
        # Nothing to break: the operation takes no input that could be invalid.
        assert mode == GenerationMode.NEGATIVE, operation.label
    tally.operations.add(operation.label)


def test_every_operation_answers_as_documented_and_never_with_a_server_error(
        live_server_process, world):
    base_url = live_server_process.url
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/?format=json")
    operations = [result.ok() for result in schema.get_all_operations()]
    tally = Tally()
    for role in ("fuzz-alice", "fuzz-organiser"):
        token = Token.objects.create(user=world["users"][role]).key
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode=mode, token=token, world=world, base_url=base_url,
                     tally=tally)
    print(f"schemathesis: {len(tally.operations)} operations, {tally.requests} requests, "
          f"{tally.server_errors} server errors, {len(tally.failures)} failing")
    assert len(tally.operations) == len(operations) >= 45
    assert tally.server_errors == 0, live_server_process.log_tail()
    assert not tally.failures, "\n\n".join(f"{k}: {v}" for k, v in tally.failures.items())
