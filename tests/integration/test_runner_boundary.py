"""The fold worker needs neither the database nor the storage: it talks to the
platform only through the runner API, and what a runner sends is checked."""
import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import requests
from django.conf import settings

from databoard.models import Event, Submission
from datarun import storage
from datarun.contract import FoldOutcome
from datarun.models import Evaluation, FoldRun
from datarun.services import fold_runs
from tests.conftest import EXAMPLES, ROOT
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()


def _start(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", *args],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def split_workers(_workers, tmp_path):
    """A fold worker (queue ``sandbox``) with no DATABASE_URL, no storage and a
    home of its own, and a trusted worker (queue ``scoring``) with both,
    instead of the session's worker."""
    _workers.stop()
    web = _workers.web_server()
    trusted_env = _workers.env("local")
    fold_env = {k: v for k, v in trusted_env.items()
                if k not in ("DATABASE_URL", "DATARUN_STORAGE_DIR", "DATARUN_HOME",
                             "DATARUN_WORK_DIR")}
    home = tmp_path / "runner-home"
    missing_storage = tmp_path / "no-storage-here"
    fold_env.update(DATARUN_HOME=str(home), DATARUN_STORAGE_DIR=str(missing_storage),
                    DATARUN_API_URL=web.url)
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    procs = []
    try:
        procs.append(_start(["-Q", "scoring", "-c", "1", "-n", "trusted@%h", "-l", "INFO"],
                            trusted_env, tmp_path / "trusted.log"))
        procs.append(_start(["-Q", "sandbox", "-c", "2", "-n", "folds@%h", "-l", "INFO"],
                            fold_env, tmp_path / "folds.log"))
        yield {"home": home, "missing_storage": missing_storage, "web": web,
               "fold_log": tmp_path / "folds.log", "env": fold_env}
    finally:
        for proc in procs:
            _stop(proc)


def _input_downloads(web) -> list[str]:
    return re.findall(r'"GET /api/v1/runner/folds/\d+/inputs/([0-9a-f]{64}) ',
                      web.log_path.read_text(errors="replace"))


def test_a_worker_without_database_or_storage_scores_submissions(split_workers):
    assert "DATABASE_URL" not in split_workers["env"]
    client = signed_up(EXAMPLES / "iris", "iris")
    before = len(_input_downloads(split_workers["web"]))
    first = wait_final(client, submit(client, "iris", "first",
                                      {"estimator.py": STARTING_KIT})["id"])
    assert first["state"] == "scored", first
    first_downloads = _input_downloads(split_workers["web"])[before:]
    # The 5 fold files, the problem's 5 shared inputs (the kit files zip
    # among them) and the submission file: each downloaded once, or twice
    # when the worker's two slots race for it before either has cached it.
    assert len(set(first_downloads)) == 11, first_downloads
    assert max(Counter(first_downloads).values()) <= 2, first_downloads

    # A second submission of the same problem: only its own file is new.
    edited = STARTING_KIT.replace("max_depth=2", "max_depth=3") + "\n# edited\n"
    Event.objects.filter(name="iris").update(min_submission_interval_s=0)
    second = wait_final(client, submit(client, "iris", "second", {"estimator.py": edited})["id"])
    assert second["state"] == "scored", second
    second_downloads = _input_downloads(split_workers["web"])[before + len(first_downloads):]
    assert set(second_downloads) == {hashlib.sha256(edited.encode()).hexdigest()}

    # The worker never opened a database nor the storage: no SQLite file in its
    # home, the storage folder it was given never created.
    home = split_workers["home"]
    assert not list(home.glob("*.sqlite3")), list(home.iterdir())
    assert not split_workers["missing_storage"].exists()
    cached = [p for p in (home / "runner-cache").rglob("*") if p.is_file()]
    assert len(cached) == 5 + 5 + 2
    evaluation_id = Submission.objects.get(id=first["id"]).evaluation_id
    fold_runs = FoldRun.objects.filter(evaluation_id=evaluation_id)
    # Each fold records the runner that ran it, as the runner described itself.
    assert {(fr.environment["sandbox"], fr.environment["python"]) for fr in fold_runs} == {
        ("local", f"{sys.version_info.major}.{sys.version_info.minor}."
                  f"{sys.version_info.micro}")}


# --- what a runner sends is checked ----------------------------------------------

def _claim(web, fold_run_id: int, token: str | None = None) -> requests.Response:
    token = token or settings.DATARUN_RUNNER_TOKEN
    return requests.post(f"{web.url}/api/v1/runner/folds/{fold_run_id}/claim/",
                         json={"host": "test-runner", "sandbox": "local"},
                         headers={"Authorization": f"Runner {token}"}, timeout=30)


@pytest.fixture
def queued_fold(_workers):
    """A submission whose folds nobody runs (no worker), and the web server."""
    _workers.stop()
    web = _workers.web_server()
    client = signed_up(EXAMPLES / "iris", "iris")
    submitted = submit(client, "iris", "waiting", {"estimator.py": STARTING_KIT})
    evaluation = Evaluation.objects.order_by("-id").first()
    fold_run = evaluation.fold_runs.order_by("fold_index").first()
    yield web, fold_run, submitted


def _report(web, ticket: dict, meta: dict, files: dict | None = None, token=None):
    return requests.post(
        f"{web.url}/api/v1/runner/folds/{ticket['fold_run_id']}/outcome/",
        data={"outcome": json.dumps(meta)}, files=files or {},
        headers={"Authorization": f"Fold {token or ticket['token']}"}, timeout=30)


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_runner_api_refuses_bad_tokens_and_reports_and_records_nothing(queued_fold):
    web, fold_run, _ = queued_fold
    wrong = _claim(web, fold_run.id, token="not-the-token")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "the runner token is not valid"
    missing = requests.post(f"{web.url}/api/v1/runner/folds/{fold_run.id}/claim/", json={},
                            timeout=30)
    assert missing.status_code == 401 and "Authorization: Runner" in missing.text
    fold_run.refresh_from_db()
    assert fold_run.state == "queued"

    bad_body = requests.post(
        f"{web.url}/api/v1/runner/folds/{fold_run.id}/claim/", json={"sandbox": "vm"},
        headers={"Authorization": f"Runner {settings.DATARUN_RUNNER_TOKEN}"}, timeout=30)
    assert bad_body.status_code == 400 and bad_body.json()["error"]["code"] == "invalid"

    ticket = _claim(web, fold_run.id).json()
    assert ticket["attempt"] == 1 and set(ticket["inputs"]) == {
        "problem.py", "X_train.pkl", "y_train.pkl", "X_test.pkl", "fold.npz", "kit_files.zip"}
    assert "y_test" not in json.dumps(ticket)
    # Claimed and running elsewhere: nothing to do for a second runner.
    assert _claim(web, fold_run.id).status_code == 204

    # A fold token is only good for its own fold.
    other = fold_run.evaluation.fold_runs.exclude(id=fold_run.id).first()
    crossed = requests.post(f"{web.url}/api/v1/runner/folds/{other.id}/heartbeat/",
                            headers={"Authorization": f"Fold {ticket['token']}"}, timeout=30)
    assert crossed.status_code == 401 and "another fold" in crossed.json()["error"]["message"]
    forged = _report(web, ticket, {}, token=ticket["token"][:-2] + "xx")
    assert forged.status_code == 401
    # Only the inputs its ticket names; a hash it does not name is not served.
    fetch = requests.get(f"{web.url}/api/v1/runner/folds/{fold_run.id}/inputs/"
                         f"{ticket['inputs']['X_train.pkl']}",
                         headers={"Authorization": f"Fold {ticket['token']}"}, timeout=30)
    assert fetch.status_code == 200
    assert hashlib.sha256(fetch.content).hexdigest() == ticket["inputs"]["X_train.pkl"]
    unknown = requests.get(f"{web.url}/api/v1/runner/folds/{fold_run.id}/inputs/{'0' * 64}",
                           headers={"Authorization": f"Fold {ticket['token']}"}, timeout=30)
    assert unknown.status_code == 404

    # Malformed outcomes: refused with what to fix, nothing recorded.
    cases = [
        ({"wall_time": -1}, None, "wall_time must be a non-negative number"),
        ({"wall_time": 1.0, "spam": 1}, None, "unknown fields: spam"),
        ({"wall_time": 1.0}, None, "must carry y_pred_train"),
        ({"wall_time": 1.0}, {"y_pred_train": b"\x93NUMPY not really",
                              "y_pred_test": _npy(np.zeros((30, 3)))},
         "y_pred_train is not a plain numeric .npy array"),
        ({"wall_time": 1.0}, {"y_pred_train": _npy(np.zeros((10**6, 3))),
                              "y_pred_test": _npy(np.zeros((30, 3)))},
         "more than the"),
        ({"error_kind": "nobody", "error": "x"}, None, "error_kind must be"),
    ]
    for meta, files, message in cases:
        response = _report(web, ticket, meta, files)
        assert response.status_code == 400, (meta, response.text)
        assert message in response.json()["error"]["message"], response.json()
    not_json = requests.post(f"{web.url}/api/v1/runner/folds/{fold_run.id}/outcome/",
                             data={"outcome": "{"},
                             headers={"Authorization": f"Fold {ticket['token']}"}, timeout=30)
    assert not_json.status_code == 400
    fold_run.refresh_from_db()
    assert (fold_run.state, fold_run.wall_time) == ("running", None)
    assert not fold_run.scores.exists()

    # Wrong predictions are the participant's error, checked on the trusted side.
    good = _report(web, ticket, {"wall_time": 1.0, "cpu_time": 0.5, "peak_memory": 1000},
                   {"y_pred_train": _npy(np.full((120, 3), 1 / 3)),
                    "y_pred_test": _npy(np.full((30, 3), 1 / 3))})
    assert good.status_code == 200, good.text
    fold_run.refresh_from_db()
    assert fold_run.state == "scored" and fold_run.wall_time == 1.0
    # Reporting again, or after the claim is gone: refused, nothing changes.
    again = _report(web, ticket, {"wall_time": 9.0},
                    {"y_pred_train": _npy(np.full((120, 3), 1 / 3)),
                     "y_pred_test": _npy(np.full((30, 3), 1 / 3))})
    assert again.status_code == 409
    fold_run.refresh_from_db()
    assert fold_run.wall_time == 1.0


def test_a_runner_that_lost_its_claim_is_refused(queued_fold):
    web, fold_run, _ = queued_fold
    first = _claim(web, fold_run.id).json()
    # Its heartbeat went stale: another runner takes the fold over.
    FoldRun.objects.filter(id=fold_run.id).update(heartbeat_at="2000-01-01T00:00:00Z")
    second = _claim(web, fold_run.id).json()
    assert second["attempt"] == first["attempt"] + 1
    beat = requests.post(f"{web.url}/api/v1/runner/folds/{fold_run.id}/heartbeat/",
                         headers={"Authorization": f"Fold {first['token']}"}, timeout=30)
    assert beat.status_code == 409 and "stop running it" in beat.json()["error"]["message"]
    late = _report(web, first, {"error": "too late", "error_kind": "participant"})
    assert late.status_code == 409
    lines = requests.post(f"{web.url}/api/v1/runner/folds/{fold_run.id}/logs/",
                          json={"lines": [["stdout", "from the old attempt"]]},
                          headers={"Authorization": f"Fold {first['token']}"}, timeout=30)
    assert lines.status_code == 200 and lines.json() == {"accepted": False}
    fold_run.refresh_from_db()
    assert (fold_run.state, fold_run.attempt, fold_run.error_message) == ("running", 2, "")


def test_a_superseded_attempt_never_replaces_the_recorded_predictions(queued_fold):
    # The chaos run's case: a fold's heartbeat went stale during a database
    # restart and another runner re-ran and recorded it, while the first
    # runner's report (with, here, different predictions) was being checked:
    # its claim was current when it arrived, superseded by the time it is
    # recorded.
    web, fold_run, _ = queued_fold
    first = _claim(web, fold_run.id).json()
    FoldRun.objects.filter(id=fold_run.id).update(heartbeat_at="2000-01-01T00:00:00Z")
    second = _claim(web, fold_run.id).json()
    recorded = np.full((30, 3), 1 / 3)
    ok = _report(web, second, {"wall_time": 1.0},
                 {"y_pred_train": _npy(np.full((120, 3), 1 / 3)), "y_pred_test": _npy(recorded)})
    assert ok.status_code == 200, ok.text
    fold_run.refresh_from_db()
    spec = dataclasses.replace(fold_runs._ticket(fold_run, fold_run.evaluation),
                               attempt=first["attempt"])
    late = FoldOutcome(wall_time=2.0, y_pred_train=np.tile([1.0, 0.0, 0.0], (120, 1)),
                       y_pred_test=np.tile([1.0, 0.0, 0.0], (30, 1)))
    assert fold_runs.fold_run_finish(spec=spec, outcome=late) is False
    stored = storage.load_predictions(fold_run.evaluation_id, fold_run.fold_index, "test")
    np.testing.assert_array_equal(stored, recorded)
    fold_run.refresh_from_db()
    assert (fold_run.attempt, fold_run.wall_time) == (second["attempt"], 1.0)
