"""The OpenAPI description of the API, and Swagger UI without the internet.

The description must generate without a warning, and say what the views
really answer: real answers are checked, key by key and at every depth,
against the schema documented for them.
"""
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from tests.databoard.test_api import (
    EVENT,
    client_for,
    make_event,
    make_user,
    post_submission,
    signed_up,
    submit_scored,
)
from tests.datarun.test_dataset_api import upload

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_schema_is_valid_openapi_and_documents_token_creation(schema):
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    assert schema["info"]["title"] == "Datarun API"
    assert "/api/v1/events/{name}/submissions/" in schema["paths"]
    assert "POST /api/v1/auth/token/" in schema["info"]["description"]

    token = schema["paths"]["/api/v1/auth/token/"]["post"]
    request = _resolve(token["requestBody"]["content"]["application/json"]["schema"], schema)
    assert {"username", "password"} <= set(request["required"])
    answer = _response_schema(schema, "/api/v1/auth/token/", "post", 200)
    assert "token" in answer["properties"]


def test_the_schema_generates_without_a_warning(tmp_path, capsys):
    GENERATOR_STATS.reset()  # warnings of an earlier generation in this process
    try:
        call_command("spectacular", "--validate", "--fail-on-warn",
                     "--file", str(tmp_path / "schema.yaml"))
    except CommandError as exc:
        pytest.fail(f"{exc}\n{capsys.readouterr().err}")
    problems = [line for line in capsys.readouterr().err.splitlines()
                if "Warning" in line or "Error" in line]
    assert problems == []
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_every_operation_has_a_tag_a_summary_and_a_unique_id(schema):
    operations = [(path, method, op) for path, ops in schema["paths"].items()
                  for method, op in ops.items()]
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    untagged = [(p, m) for p, m, op in operations if not op.get("tags")]
    assert untagged == []
    unsummarised = [(p, m) for p, m, op in operations
                    if not op.get("summary") and p != "/api/v1/auth/token/"]
    assert unsummarised == []


def test_errors_are_documented_in_the_api_error_shape(schema):
    submit = schema["paths"]["/api/v1/events/{name}/submissions/"]["post"]["responses"]
    assert {"400", "401", "403", "404", "429"} <= set(submit)
    error = _response_schema(schema, "/api/v1/events/{name}/submissions/", "post", 429)
    assert set(error["properties"]) == {"error"}
    assert set(_resolve(error["properties"]["error"], schema)["properties"]) == {
        "code", "message", "details"}
    assert "Retry-After" in submit["429"]["headers"]


def test_uploads_and_downloads_are_documented_as_files(schema):
    submit = schema["paths"]["/api/v1/events/{name}/submissions/"]["post"]["requestBody"]
    upload = _resolve(submit["content"]["multipart/form-data"]["schema"], schema)
    assert upload["properties"]["files"]["items"]["format"] == "binary"
    assert upload["properties"]["archive"]["format"] == "binary"
    kit = schema["paths"]["/api/v1/problems/{name}/kit.zip"]["get"]["responses"]["200"]
    assert kit["content"]["application/zip"]["schema"]["format"] == "binary"
    croissant = schema["paths"][
        "/api/v1/datasets/{name}/versions/{number}/croissant.json"]["get"]["responses"]["200"]
    assert list(croissant["content"]) == ["application/ld+json"]


def test_the_leaderboard_documents_its_query_parameters(schema):
    params = {p["name"]: p for p in
              schema["paths"]["/api/v1/events/{name}/leaderboard/"]["get"]["parameters"]
              if p["in"] == "query"}
    assert set(params["board"]["schema"]["enum"]) == {"public", "private", "competition"}
    assert set(params["kind"]["schema"]["enum"]) == {"bagged", "mean"}


# --- real answers have the documented keys ------------------------------------------

def test_event_and_team_answers_have_the_documented_keys(schema):
    event = make_event(is_competitive=True)
    alice = signed_up("alice", event)
    bob = make_user("bob")
    client = client_for(alice)
    client.post(f"/api/v1/events/{EVENT}/team/invitations/", {"username": "bob"},
                format="json")

    _check(schema, client, "get", "/api/v1/events/", "/api/v1/events/")
    _check(schema, client, "get", f"/api/v1/events/{EVENT}/", "/api/v1/events/{name}/")
    _check(schema, client, "get", f"/api/v1/events/{EVENT}/team/",
           "/api/v1/events/{name}/team/")
    _check(schema, client_for(bob), "get", "/api/v1/invitations/", "/api/v1/invitations/")
    _check(schema, APIClient(), "get", "/api/v1/health/", "/api/v1/health/")


def test_submission_answers_have_the_documented_keys(schema):
    event = make_event()
    alice = signed_up("alice", event)
    created = post_submission(client_for(alice))
    assert created.status_code == 201, created.content
    _assert_documented(created.json(), _response_schema(
        schema, "/api/v1/events/{name}/submissions/", "post", 201), schema, "created")

    scored = submit_scored(event, "bob", valid=0.9, test=0.8)
    bob = client_for(scored.submitted_by)
    detail = _check(schema, bob, "get", f"/api/v1/submissions/{scored.id}/",
                    "/api/v1/submissions/{id}/")
    assert detail["folds"], "the folds are checked too"
    _check(schema, bob, "get", "/api/v1/submissions/", "/api/v1/submissions/")
    _check(schema, bob, "get", f"/api/v1/submissions/{scored.id}/code/",
           "/api/v1/submissions/{id}/code/")
    # The collaborative phase (bob's own submissions: no public opening needed).
    diff = _check(schema, bob, "get", f"/api/v1/submissions/{scored.id}/diff/?against={scored.id}",
                  "/api/v1/submissions/{id}/diff/")
    assert diff["files"], "the files are checked too"
    imported = _check(schema, bob, "post", f"/api/v1/submissions/{scored.id}/import/",
                      "/api/v1/submissions/{id}/import/")
    assert imported["files"]
    _check(schema, bob, "get", f"/api/v1/submissions/{scored.id}/credits/",
           "/api/v1/submissions/{id}/credits/")


def test_leaderboard_answers_have_the_documented_keys(schema):
    event = make_event()
    submit_scored(event, "alice", valid=0.9, test=0.8)
    submit_scored(event, "bob", valid=0.8, test=0.9)
    organiser = make_user("organiser")
    event.admins.add(organiser)

    url, documented = f"/api/v1/events/{EVENT}/leaderboard/", "/api/v1/events/{name}/leaderboard/"
    board = _check(schema, APIClient(), "get", url, documented)
    assert len(board["rows"]) == 2
    _check(schema, client_for(organiser), "get", f"{url}?board=private&kind=mean", documented)
    competition = _check(schema, client_for(organiser), "get", f"{url}?board=competition",
                         documented)
    assert "public_rank" in competition["rows"][0]


def test_dataset_and_problem_answers_have_the_documented_keys(schema):
    staff = client_for(get_user_model().objects.create_superuser("org"))
    created = upload(staff)
    assert created.status_code == 201, created.content
    _assert_documented(created.json(), _response_schema(
        schema, "/api/v1/datasets/", "post", 201), schema, "created")

    _check(schema, staff, "get", "/api/v1/datasets/", "/api/v1/datasets/")
    _check(schema, staff, "get", "/api/v1/datasets/people/", "/api/v1/datasets/{name}/")
    _check(schema, staff, "get", "/api/v1/datasets/people/versions/1/",
           "/api/v1/datasets/{name}/versions/{number}/")
    _check(schema, staff, "get", "/api/v1/datasets/people/versions/1/dashboard/?target=label",
           "/api/v1/datasets/{name}/versions/{number}/dashboard/")

    make_event()
    _check(schema, staff, "get", "/api/v1/problems/iris/", "/api/v1/problems/{name}/")
    _check(schema, staff, "get", "/api/v1/problems/iris/dashboard/",
           "/api/v1/problems/{name}/dashboard/")


# --- Swagger UI ---------------------------------------------------------------------

def test_the_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi: 3" in response.content


def test_swagger_ui_loads_only_files_served_by_the_project(client):
    page = client.get("/api/schema/swagger/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui-bundle" in a for a in assets)
    assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    # No inline script, which the Content-Security-Policy would block.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page)), page
    for asset in assets:
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset


# --- helpers ------------------------------------------------------------------------

def _resolve(node: dict, schema: dict) -> dict:
    """``node`` with references, and the ``allOf`` of a nullable reference, followed."""
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        elif len(node.get("allOf", [])) == 1:
            node = node["allOf"][0]
        else:
            return node


def _response_schema(schema: dict, path: str, method: str, status: int) -> dict:
    content = schema["paths"][path][method]["responses"][str(status)]["content"]
    return _resolve(content["application/json"]["schema"], schema)


def _assert_documented(value, node: dict, schema: dict, where: str) -> None:
    """Every key of ``value`` is documented, and every required one is there."""
    node = _resolve(node, schema)
    if value is None:
        return
    if "properties" in node:
        keys, documented = set(value), set(node["properties"])
        assert keys - documented == set(), f"{where}: undocumented keys"
        assert set(node.get("required", [])) - keys == set(), f"{where}: missing keys"
        for key in keys:
            _assert_documented(value[key], node["properties"][key], schema, f"{where}.{key}")
    elif node.get("type") == "array":
        for i, item in enumerate(value):
            _assert_documented(item, node["items"], schema, f"{where}[{i}]")
    elif isinstance(node.get("additionalProperties"), dict):
        for key, item in value.items():
            _assert_documented(item, node["additionalProperties"], schema, f"{where}.{key}")


def _check(schema: dict, client: APIClient, method: str, url: str, path: str) -> dict | list:
    """Call ``url``, and check its answer against what ``path`` documents for it."""
    response = getattr(client, method)(url)
    assert response.status_code == 200, response.content
    body = response.json()
    _assert_documented(body, _response_schema(schema, path, method, 200), schema, url)
    return body
