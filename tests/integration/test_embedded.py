"""`make run` (manage.py up) on the embedded defaults: SQLite, the filesystem
broker, the local sandbox, example events; a starting kit submitted over HTTP
gets scored and reaches the leaderboard."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, path, token=None, data=None, files=None):
    headers = {"Authorization": f"Token {token}"} if token else {}
    body = None
    if files is not None:
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in (data or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"'
                         f"\r\n\r\n{value}\r\n".encode())
        for name, content in files.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                         f'filename="{name}"\r\nContent-Type: text/x-python\r\n\r\n'.encode()
                         + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif data is not None:
        body = b""
    req = urllib.request.Request(base + path, data=body, headers=headers,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_run_command_scores_a_starting_kit(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DATARUN_STORAGE_DIR",
                        "DATARUN_WORK_DIR", "DJANGO_SETTINGS_MODULE")}
    env["DATARUN_HOME"] = str(tmp_path / "home")
    # Flower's API answers without credentials (its pages do anyway): only tests set this.
    env["FLOWER_UNAUTHENTICATED_API"] = "true"
    log = open(tmp_path / "up.log", "w+")
    flower_port = free_port()
    proc = subprocess.Popen([sys.executable, "manage.py", "up", "--port", str(port),
                             "--flower-port", str(flower_port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            try:
                health = call(base, "/health/")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()[-3000:]
                time.sleep(0.5)
        assert health == {"status": "ok"}
        # "Datarun is running" comes once both workers are ready (folds, and
        # scoring with beat), with Flower's address and the login printed
        # again under their banners: wait for that last line, the second token.
        token_line = re.compile(r"Admin API token: \w+\n")
        while len(token_line.findall(output := (tmp_path / "up.log").read_text())) < 2:
            assert time.monotonic() < deadline, output[-3000:]
            time.sleep(0.5)
        host = socket.gethostname()
        for node in ("folds", "scorer"):
            # celery's line
            assert output.index("Datarun is running") > output.index(f"{node}@{host} ready.")
        assert re.search(r"\.> sandbox +exchange", output.split("Datarun is running")[0])
        assert re.search(r"\.> scoring +exchange", output.split("Datarun is running")[0])
        tokens = re.findall(r"Admin API token: (\w+)", output)
        assert len(tokens) == 2 and tokens[0] == tokens[1]
        assert output.index("Datarun is running") < output.rindex("Admin API token")
        # Flower runs on the same embedded broker; where it is comes with the
        # rest, below the banner, and the token comes last.
        flower_url = f"http://127.0.0.1:{flower_port}/"
        flower_line = output.index(f"Flower (workers, queues, every task): {flower_url}")
        assert output.index("Datarun is running") < flower_line < output.rindex("Admin API token")
        with urllib.request.urlopen(flower_url + "healthcheck", timeout=10) as answer:
            assert answer.read() == b"OK"
        token = tokens[0]
        # Signed in, the health check says what it runs on.
        assert call(base, "/health/", token) == {
            "status": "ok", "database": "sqlite", "broker": "filesystem", "sandbox": "local"}
        assert "user 'admin'" in output
        events = {e["name"] for e in call(base, "/events/")["results"]}
        assert {"iris", "breast_cancer", "diabetes"} <= events

        call(base, "/events/iris/signup/", token, data={})
        code = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()
        created = call(base, "/events/iris/submissions/", token, data={"name": "first"},
                       files={"estimator.py": code})
        deadline = time.monotonic() + 120
        while (detail := call(base, f"/submissions/{created['id']}/", token))["state"] not in (
            "scored", "error"
        ):
            assert time.monotonic() < deadline, detail
            time.sleep(0.2)
        assert detail["state"] == "scored", detail["error"]
        board = call(base, "/events/iris/leaderboard/")
        assert [r["submission"] for r in board["rows"]] == ["first"]
        assert board["rows"][0]["scores"]["acc"]["valid"]["bagged"] > 0.9
        # Flower, on the embedded filesystem broker, sees both workers and the
        # tasks they ran (task events, -E; they reach it within a poll or two).
        deadline = time.monotonic() + 60
        workers, names = {}, set()
        while not ({f"folds@{host}", f"scorer@{host}"} <= set(workers)
                   and {"workers.tasks.run_fold", "datarun.tasks.score_evaluation"} <= names):
            assert time.monotonic() < deadline, (workers, names)
            time.sleep(0.5)
            with urllib.request.urlopen(flower_url + "api/workers?refresh=1",
                                        timeout=30) as answer:
                workers = json.loads(answer.read())
            with urllib.request.urlopen(flower_url + "api/tasks", timeout=30) as answer:
                names = {task["name"] for task in json.loads(answer.read()).values()}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
