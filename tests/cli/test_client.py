"""datarun.client from Python (as in a notebook) against the live server:
what a participant does, and each refusal as its own error type carrying the
server's message. Also the saved login and the kit unzip's safety."""
import io
import json
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from databoard.models import Submission
from datarun.client import (
    AuthError,
    BadInputError,
    Client,
    NotFoundError,
    RefusedError,
    ServerUnreachable,
    extract_zip,
    load_config,
    save_config,
)
from tests.cli.conftest import PASSWORD, participant
from tests.conftest import EXAMPLES, free_port, stop_process
from tests.integration.helpers import make_event

STARTING_KIT = EXAMPLES / "iris" / "submissions" / "starting_kit"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_submit_wait_and_read_from_python(live_server_process, celery_worker_process, tmp_path):
    participant(make_event(EXAMPLES / "iris", "iris-py"))
    client = Client(live_server_process.url)
    assert client.login("alice", PASSWORD) == client.token

    assert client.event("iris-py")["problem"]["workflow_elements"] == ["estimator"]
    files = client.download_kit("iris-py", tmp_path)
    assert tmp_path / "iris-py" / "problem.py" in files

    submitted = client.submit("iris-py", "from-python", tmp_path / "iris-py" / "submissions"
                              / "starting_kit")
    seen = []
    final = client.wait(submitted["id"], on_progress=lambda d: seen.append(d["state"]),
                        poll=0.2, timeout=120)
    assert final["state"] == "scored"
    assert seen[-1] == "scored"
    assert final["scores"]["acc"]["valid"]["bagged"] > 0.8
    assert [s["id"] for s in client.submissions()] == [submitted["id"]]
    rows = client.leaderboard("iris-py")["rows"]
    assert rows[0]["submission"] == "from-python"

    runs = client.runs(submitted["id"])
    current = [r for r in runs if r["current"]]
    assert len(current) == 1 and current[0]["state"] == "scored"
    run = client.run(submitted["id"], current[0]["id"])
    assert {f["state"] for f in run["folds"]} == {"scored"}
    lines = list(client.follow_logs(submitted["id"], poll=0.2, timeout=30))
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    page = client.logs(submitted["id"], run_id=current[0]["id"])
    assert page["finished"] is True
    kept = client.artifact(submitted["id"], current[0]["id"], "submission/estimator.py")
    assert kept == (STARTING_KIT / "estimator.py").read_bytes()
    with pytest.raises(AuthError, match="admin"):
        client.reproduce(submitted["id"])  # event admins only


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_refusals_raise_typed_errors_with_the_servers_message(live_server_process,
                                                              celery_worker_process):
    participant(make_event(EXAMPLES / "iris", "iris-errors", min_submission_interval_s=600))
    client = Client(live_server_process.url)

    with pytest.raises(AuthError, match="wrong username or password"):
        client.login("alice", "not-the-password")
    with pytest.raises(AuthError) as anonymous:
        client.submissions()
    assert anonymous.value.status == 401

    client.login("alice", PASSWORD)
    with pytest.raises(NotFoundError) as missing:
        client.event("no-such-event")
    assert missing.value.status == 404 and "no-such-event" in missing.value.message

    with pytest.raises(BadInputError) as wrong_file:
        client.submit("iris-errors", "x", {"model.py": "print(1)"})
    assert wrong_file.value.code == "invalid_submission"
    assert "model.py" in wrong_file.value.message

    client.submit("iris-errors", "first", STARTING_KIT)
    with pytest.raises(RefusedError) as too_soon:
        client.submit("iris-errors", "second", STARTING_KIT)
    assert too_soon.value.status == 429
    assert too_soon.value.details["rule"] == "min_interval"
    assert 500 < too_soon.value.retry_after <= 601
    assert "next submission is allowed from" in too_soon.value.message


def test_an_unreachable_server_is_named():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachable) as unreachable:
        Client(url, timeout=5).events()
    assert url in str(unreachable.value)
    assert "refused" in str(unreachable.value).lower()


@pytest.fixture
def not_datarun(tmp_path):
    """A plain static web server (Python's http.server) where a Datarun
    server was expected: it answers an HTML page to /api/v1/events/."""
    page = tmp_path / "site" / "api" / "v1" / "events" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html><body>Welcome to nginx!</body></html>")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1", "--directory", str(tmp_path / "site")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait()


NO_DJANGO = """
import importlib.abc, importlib.util, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("django", "celery", "rest_framework", "datarun"):
            raise ImportError(f"{name} is not installed here")

sys.meta_path.insert(0, Refuse())
spec = importlib.util.spec_from_file_location("client", sys.argv[1])
client_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client_module)
client = client_module.Client(sys.argv[2])
client.login("alice", sys.argv[3])
print([e["name"] for e in client.events()])
"""


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_client_file_needs_only_requests(live_server_process):
    """A notebook with requests but without Django, Celery or the project."""
    participant(make_event(EXAMPLES / "iris", "iris-nb"))
    import datarun.client

    result = subprocess.run([sys.executable, "-c", NO_DJANGO, datarun.client.__file__,
                             live_server_process.url, PASSWORD],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['iris-nb']"


def test_a_server_that_is_not_datarun_is_named(not_datarun):
    client = Client(not_datarun)
    with pytest.raises(ServerUnreachable, match="not JSON: is the URL a Datarun server's"):
        client.events()
    with pytest.raises(NotFoundError, match="is the URL a Datarun server's"):
        client.event("iris")


def test_a_url_without_scheme_is_refused_before_any_request():
    with pytest.raises(BadInputError, match="must start with http:// or https://"):
        Client("127.0.0.1:8000")


def _zip(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../evil.py", "kit/../../evil.py", "/tmp/evil.py",
                                  "C:/evil.py", "..\\evil.py"])
def test_kit_unzip_refuses_paths_outside_the_folder(tmp_path, name):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(BadInputError, match="unsafe path"):
        extract_zip(_zip(**{"kit/problem.py": b"ok", name: b"evil"}), dest)
    assert list(tmp_path.rglob("*.py")) == []  # nothing written, not even the safe member


def test_kit_unzip_keeps_files_that_exist_unless_told(tmp_path):
    edited = tmp_path / "kit" / "estimator.py"
    edited.parent.mkdir()
    edited.write_text("my edits")
    archive = _zip(**{"kit/estimator.py": b"the kit's", "kit/problem.py": b"problem"})
    with pytest.raises(BadInputError, match="exist already"):
        extract_zip(archive, tmp_path)
    assert edited.read_text() == "my edits"
    assert not (tmp_path / "kit" / "problem.py").exists()
    extract_zip(archive, tmp_path, overwrite=True)
    assert edited.read_text() == "the kit's"


def test_kit_unzip_refuses_symbolic_links(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("kit/data")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc")
    with pytest.raises(BadInputError, match="symbolic link"):
        extract_zip(buffer.getvalue(), tmp_path)


def test_saved_login_is_private_and_the_environment_overrides_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("DATARUN_URL", raising=False)
    monkeypatch.delenv("DATARUN_TOKEN", raising=False)
    with pytest.raises(AuthError, match="datarun login"):
        Client.from_config()

    path = save_config({"url": "http://a.example", "token": "t1"})
    assert path == tmp_path / "datarun" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["token"] == "t1"
    assert Client.from_config().url == "http://a.example"

    monkeypatch.setenv("DATARUN_URL", "http://b.example/")
    monkeypatch.setenv("DATARUN_TOKEN", "t2")
    assert load_config() == {"url": "http://b.example/", "token": "t2"}
    client = Client.from_config()
    assert (client.url, client.token) == ("http://b.example", "t2")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_submission_sent_while_the_server_restarts_is_stored_once(live_server_process,
                                                                   _workers):
    participant(make_event(EXAMPLES / "iris", "iris-retry"))
    client = Client(live_server_process.url)
    client.login("alice", PASSWORD)
    stop_process(_workers.web.proc)
    restart = threading.Timer(0.5, _workers.restart_web_server)
    restart.start()
    try:
        submitted = client.submit("iris-retry", "during-restart", {
            "estimator.py": (STARTING_KIT / "estimator.py").read_bytes()})
    finally:
        restart.join()
    assert submitted["name"] == "during-restart"
    assert Submission.objects.filter(name="during-restart").count() == 1
