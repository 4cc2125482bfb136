"""What the README promises exists: every ``manage.py`` command, every
``datarun`` subcommand and every API route (with its method) it names."""
import re
from pathlib import Path

import pytest
from django.core.management import get_commands
from django.urls import Resolver404, resolve

from datarun.api.errors import not_found_json

# Not for the database itself: the suite's autouse fixtures expect a test database.
pytestmark = pytest.mark.django_db

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
# Placeholders in the README's paths, and a value of the right shape for each.
PLACEHOLDERS = {"<name>": "some-name", "<id>": "1", "<run>": "1", "<n>": "1", "<seq>": "0",
                "<file>": "train.csv", "<name>.zip": "x.zip"}


def _manage_commands() -> set[str]:
    return set(re.findall(r"manage\.py ([a-z_]+)", README))


def _cli_commands() -> set[str]:
    inline = re.findall(r"`datarun ([a-z][a-z-]*)", README)
    in_blocks = re.findall(r"^[ \t]*datarun ([a-z][a-z-]*)", README, flags=re.MULTILINE)
    return set(inline) | set(in_blocks)


def _api_routes() -> set[tuple[str, str]]:
    """(method, path under /api/v1/) for each route of the API table, and for
    every ``METHOD /api/v1/...`` named in the text."""
    routes = set()
    for row in re.findall(r"^\| (`(?:GET|POST|PATCH|PUT|DELETE)[^|]*) \|", README, re.MULTILINE):
        methods, previous, previous_methods = [], None, []
        for span in re.findall(r"`([^`]+)`", row):
            words = span.split(maxsplit=1)
            if len(words) == 1 and words[0] in METHODS:  # `GET`, `PATCH events/...`
                methods.append(words[0])
                continue
            if words[0] in METHODS:
                methods.append(words[0])
                path = words[1]
            else:
                path = span
            if path.startswith(".../"):  # `.../decline/`: the previous route's sibling
                path = previous.rstrip("/").rsplit("/", 1)[0] + path[3:]
                methods = methods or previous_methods
            for method in methods:
                routes.add((method, path))
            methods, previous, previous_methods = [], path, methods
    for method, path in re.findall(r"`(GET|POST|PATCH|PUT|DELETE) /api/v1/([^`\s]*)`", README):
        routes.add((method, path))
    return routes


def test_the_readme_is_walked():
    # The walk itself finds what it should (a README reformatted out of reach
    # of these patterns would otherwise pass trivially).
    assert {"import_ramp_kit", "dataset_register", "dataset_version_verify"} <= \
        _manage_commands()
    assert {"login", "submit", "test", "diff", "import", "credits"} <= _cli_commands()
    assert {("GET", "health/"), ("POST", "invitations/<id>/decline/"),
            ("PATCH", "events/<name>/team/"),
            ("GET", "submissions/<id>/diff/?against=<id>")} <= _api_routes()
    assert len(_api_routes()) > 40


@pytest.mark.parametrize("command", sorted(_manage_commands()))
def test_every_manage_py_command_in_the_readme_exists(command):
    assert command in get_commands(), f"README names manage.py {command}, which does not exist"


@pytest.mark.parametrize("command", sorted(_cli_commands()))
def test_every_datarun_subcommand_in_the_readme_exists(command):
    from datarun.cli.app import app, load_commands

    load_commands()
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups}
    assert command in names, f"README names `datarun {command}`, which does not exist"


@pytest.mark.parametrize("method, path", sorted(_api_routes()))
def test_every_api_route_in_the_readme_exists(method, path):
    url = "/api/v1/" + path.split("?")[0]
    for placeholder, value in PLACEHOLDERS.items():
        url = url.replace(placeholder, value)
    try:
        match = resolve(url)
    except Resolver404:
        match = None
    # Unknown API URLs resolve to the JSON 404 catch-all.
    assert match is not None and match.func is not not_found_json, \
        f"README names {method} {path}, which no API route answers"
    view = match.func.view_class  # every API route is a class-based view
    allowed = {m.upper() for m in view.http_method_names if hasattr(view, m)}
    assert method in allowed, f"README names {method} {path}; the route allows {allowed}"
