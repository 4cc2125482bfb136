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
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def gunicorn(up_pid: int, other_than: int | None = None) -> int:
    """The web server's (gunicorn's master) pid, once up has started one."""
    deadline = time.monotonic() + 30
    while True:
        for pid in children(up_pid):
            try:
                if pid != other_than and b"gunicorn" in cmdline(pid):
                    return pid
            except OSError:
                pass
        assert time.monotonic() < deadline, "no web server under up"
        time.sleep(0.1)


def stat(pid) -> list[str]:
    """A process's /proc stat fields after its name: state, ppid, pgrp, session, ..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def ppid(pid: int) -> int:
    return int(stat(pid)[1])


def alive_in_session(sid: int) -> list[int]:
    """Processes of the session up was started in (start_new_session), zombies aside."""
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = stat(entry)
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                alive.append(int(entry))
    return alive


def wait_said(log: Path, text: str, timeout: float = 60) -> None:
    """Until up's log says ``text``."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def wait_scored(base: str, token: str, submission_id: int) -> None:
    deadline = time.monotonic() + 120
    while (detail := call(base, f"/submissions/{submission_id}/", token))["state"] not in (
        "scored", "error"
    ):
        assert time.monotonic() < deadline, detail
        time.sleep(0.2)
    assert detail["state"] == "scored", detail["error"]


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
        wait_scored(base, token, created["id"])
        board = call(base, "/events/iris/leaderboard/")
        assert [r["submission"] for r in board["rows"]] == ["first"]
        assert board["rows"][0]["scores"]["acc"]["valid"]["bagged"] > 0.9
        # Flower, on the embedded filesystem broker, sees both workers and the
        # tasks they ran (task events, -E; they reach it within a poll or two):
        # the folds, and on the scorer the contributivity the new score asks
        # for or beat's reaper (a starting kit's scores are computed with its
        # last fold's report, not by a scoring task).
        deadline = time.monotonic() + 60
        workers, names = {}, set()
        scorer_tasks = {"databoard.tasks.update_contributivity",
                        "datarun.tasks.reap_stale_fold_runs"}
        while not ({f"folds@{host}", f"scorer@{host}"} <= set(workers)
                   and "workers.tasks.run_fold" in names and names & scorer_tasks):
            assert time.monotonic() < deadline, (workers, names)
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(flower_url + "api/workers?refresh=1",
                                            timeout=30) as answer:
                    workers = json.loads(answer.read())
                with urllib.request.urlopen(flower_url + "api/tasks", timeout=30) as answer:
                    names = {task["name"] for task in json.loads(answer.read()).values()}
            except OSError as exc:
                # What up printed says which process stopped, if one did.
                pytest.fail(f"Flower did not answer ({exc!r}); up.log ends with:\n"
                            + (tmp_path / "up.log").read_text()[-5000:])

        # A process that stops by itself is started again, and up says which
        # and how it stopped: the fold worker, killed, comes back and the
        # next submission is scored.
        folds = next(pid for pid in children(proc.pid) if b"folds@" in cmdline(pid))
        os.kill(folds, signal.SIGKILL)
        wait_said(tmp_path / "up.log", "The fold worker stopped (killed by SIGKILL; see its "
                                       "log above): starting it again.")
        created = call(base, "/events/iris/submissions/", token, data={"name": "second"},
                       files={"estimator.py": code + b"\n# again\n"})
        wait_scored(base, token, created["id"])

        # So is the web server.
        web = gunicorn(proc.pid)
        os.kill(web, signal.SIGKILL)
        wait_said(tmp_path / "up.log", "The web server stopped (killed by SIGKILL; see its "
                                       "log above): starting it again.")
        deadline = time.monotonic() + 60
        # The new one answers (the killed one's workers stop serving within a
        # second or two).
        web = gunicorn(proc.pid, other_than=web)
        while True:
            try:
                assert call(base, "/health/", token)["status"] == "ok"
                if not any(b"gunicorn" in cmdline(pid) for pid in alive_in_session(proc.pid)
                           if pid != web and ppid(pid) != web):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.5)
        assert proc.poll() is None
        # One that keeps stopping (four times within a minute) stops the
        # rest, and up exits 1: nothing is left running half-way.
        for i in range(3):
            os.kill(web, signal.SIGKILL)
            if i < 2:
                web = gunicorn(proc.pid, other_than=web)
        assert proc.wait(timeout=90) == 1
        output = (tmp_path / "up.log").read_text()
        assert ("The web server stopped (killed by SIGKILL; see its log above), 4 times "
                "within 60 s: stopping the rest.") in output, output[-3000:]
        # The web server's own workers see their parent gone within a second or two.
        deadline = time.monotonic() + 30
        while left := alive_in_session(proc.pid):
            assert time.monotonic() < deadline, (
                [cmdline(pid) for pid in left], output[-3000:])
            time.sleep(0.2)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        except ProcessLookupError:
            pass  # all gone already
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
