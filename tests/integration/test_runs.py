"""Tracked runs through a real worker: log lines arrive while a fold runs,
every run keeps its metadata, metrics and artifacts, older runs stay
readable after a re-run, and a reproduction of a deterministic submission
gives identical predictions."""
import io
import time

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from databoard.models import Event
from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()

# Prints, waits, prints: the first line must be readable while the fold runs.
TALKATIVE = '''
import sys
import time

from sklearn.linear_model import LogisticRegression


class Talkative(LogisticRegression):
    def fit(self, X, y):
        print("first line: fitting", len(X), "rows", flush=True)
        print("a warning on stderr", file=sys.stderr, flush=True)
        time.sleep(SLEEP)
        print("second line: done", flush=True)
        return super().fit(X, y)


def get_estimator():
    return Talkative(max_iter=1000)
'''


def _admin(event_name: str) -> APIClient:
    user = get_user_model().objects.create_user("organiser", password="pw-organiser-1234")
    Event.objects.get(name=event_name).admins.add(user)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_log_lines_are_readable_while_the_fold_is_still_running(sandbox_worker, sandbox_kind,
                                                                kit_copy):
    client = signed_up(kit_copy("iris"), "runs-live")
    sub = submit(client, "runs-live", "talkative",
                 {"estimator.py": TALKATIVE.replace("SLEEP", "5")})
    base = f"/api/v1/submissions/{sub['id']}"
    deadline = time.monotonic() + 90
    seen_first_while_running = False
    after, lines = 0, []
    while time.monotonic() < deadline:
        page = client.get(f"{base}/logs/", {"after": after}).json()
        lines += page["lines"]
        after = page["next"]
        firsts = [line for line in lines if line["text"].startswith("first line")]
        if firsts:
            fold = firsts[0]["fold"]
            folds = client.get(f"{base}/").json()["folds"]
            # Still running: its second line is seconds away.
            assert folds[fold]["state"] == "running", folds
            assert not any(line["text"].startswith("second line") and line["fold"] == fold
                           for line in lines)
            seen_first_while_running = True
            break
        time.sleep(0.2)
    assert seen_first_while_running, f"no log line while the fold ran: {lines}"
    detail = wait_final(client, sub["id"])
    assert detail["state"] == "scored", detail
    while True:
        page = client.get(f"{base}/logs/", {"after": after}).json()
        lines += page["lines"]
        after = page["next"]
        if page["finished"]:
            break
    fold0 = [(line["stream"], line["text"]) for line in lines if line["fold"] == 0]
    stdout = [text for stream, text in fold0 if stream == "stdout"]
    assert stdout[:2] == ["first line: fitting 96 rows", "second line: done"]
    assert ("stderr", "a warning on stderr") in fold0
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Asking again from the start gives the same lines (nothing is lost or repeated).
    again = client.get(f"{base}/logs/").json()
    assert [line["seq"] for line in again["lines"]] == seqs
    run = client.get(f"{base}/runs/{sub['evaluation_id']}/").json()
    # The worker says which sandbox ran each fold (and, for Docker, the image).
    assert {f["environment"]["sandbox"] for f in run["folds"]} == {sandbox_kind}
    if sandbox_kind == "docker":
        assert all("@sha256:" in f["runtime_image"] or "sha256:" in f["runtime_image"]
                   for f in run["folds"]), [f["runtime_image"] for f in run["folds"]]


def test_a_run_records_metadata_metrics_and_artifacts(celery_worker_process, kit_copy):
    client = signed_up(kit_copy("iris"), "runs-meta")
    sub = submit(client, "runs-meta", "starting", {"estimator.py": STARTING_KIT})
    assert wait_final(client, sub["id"])["state"] == "scored"
    runs = client.get(f"/api/v1/submissions/{sub['id']}/runs/").json()["results"]
    assert [(r["kind"], r["current"], r["started_by"]) for r in runs] == [
        ("run", True, "alice")]
    run = client.get(f"/api/v1/submissions/{sub['id']}/runs/{runs[0]['id']}/").json()
    meta = run["metadata"]
    assert meta["code_hash"] == run["code_hash"] and len(meta["code_hash"]) == 64
    assert len(meta["data_hash"]) == 64 and len(meta["folds_hash"]) == 64
    assert meta["sandbox"]["backend"] == "local"
    assert meta["server"]["packages"]["scikit-learn"]
    assert meta["limits"]["wall_time_s"] > 0
    for fold in run["folds"]:
        assert fold["worker_host"] and fold["environment"]["packages"]["numpy"]
    keys = {(m["key"], m["step"]) for m in run["metrics"]}
    for k in range(5):
        assert {("valid/acc", k), ("train/acc", k), ("cpu_time", k),
                ("peak_memory", k)} <= keys
    assert ("bagged/valid/acc", 0) in keys
    # A participant does not see test scores before the event closes.
    assert not any("test" in m["key"].split("/") for m in run["metrics"])
    bagged = next(m["value"] for m in run["metrics"] if m["key"] == "bagged/valid/acc")
    assert bagged == run["scores"]["acc"]["valid"]["bagged"]
    names = {a["name"] for a in run["artifacts"]}
    assert {"submission/estimator.py", "fold_0/y_pred_train.npy",
            "fold_4/y_pred_test.npy"} <= names
    source = client.get(next(a["url"] for a in run["artifacts"]
                             if a["name"] == "submission/estimator.py"))
    assert source.status_code == 200 and source.content.decode() == STARTING_KIT
    preds = client.get(next(a["url"] for a in run["artifacts"]
                            if a["name"] == "fold_0/y_pred_test.npy"))
    array = np.load(io.BytesIO(preds.content), allow_pickle=False)
    assert array.shape == (30, 3)
    missing = client.get(f"/api/v1/submissions/{sub['id']}/runs/{runs[0]['id']}/"
                         "artifacts/fold_9/y_pred_test.npy")
    assert missing.status_code == 404


def test_a_reproduction_of_a_deterministic_submission_has_identical_predictions(
        celery_worker_process, kit_copy):
    client = signed_up(kit_copy("iris"), "runs-repro")
    sub = submit(client, "runs-repro", "starting", {"estimator.py": STARTING_KIT})
    assert wait_final(client, sub["id"])["state"] == "scored"
    # Participants cannot ask for a reproduction.
    refused = client.post(f"/api/v1/submissions/{sub['id']}/reproduce/")
    assert refused.status_code == 403, refused.json()
    admin = _admin("runs-repro")
    response = admin.post(f"/api/v1/submissions/{sub['id']}/reproduce/")
    assert response.status_code == 202, response.json()
    repro = response.json()
    assert repro["kind"] == "reproduction" and repro["reproduces"] == sub["evaluation_id"]
    assert repro["started_by"] == "organiser" and not repro["current"]
    # Generous: on a loaded 2-core machine five folds can take minutes.
    deadline = time.monotonic() + 240
    while True:
        run = admin.get(f"/api/v1/submissions/{sub['id']}/runs/{repro['id']}/").json()
        if run["state"] in ("scored", "error", "cancelled"):
            break
        assert time.monotonic() < deadline, ("reproduction still", run["state"], run["folds"])
        time.sleep(0.2)
    assert run["state"] == "scored", run
    report = run["reproduction"]
    assert report["state"] == "identical", report
    assert len(report["folds"]) == 5
    assert all(f["train"]["identical"] and f["test"]["identical"]
               and f["test"]["max_abs_diff"] == 0.0 for f in report["folds"])
    assert all(row["same"] for row in report["inputs"])
    # The leaderboard still shows the original run.
    assert client.get(f"/api/v1/submissions/{sub['id']}/").json()["evaluation_id"] == \
        sub["evaluation_id"]


def test_older_runs_stay_readable_after_a_rerun(celery_worker_process, kit_copy):
    client = signed_up(kit_copy("iris"), "runs-rerun")
    sub = submit(client, "runs-rerun", "talk", {"estimator.py": TALKATIVE.replace("SLEEP", "0")})
    first = wait_final(client, sub["id"])
    admin = _admin("runs-rerun")
    assert admin.post(f"/api/v1/submissions/{sub['id']}/rerun/").status_code == 202
    wait_final(client, sub["id"])
    runs = client.get(f"/api/v1/submissions/{sub['id']}/runs/").json()["results"]
    assert [(r["kind"], r["current"]) for r in runs] == [("rerun", True), ("run", False)]
    assert runs[1]["id"] == first["evaluation_id"] and runs[0]["started_by"] == "organiser"
    old = client.get(f"/api/v1/submissions/{sub['id']}/runs/{runs[1]['id']}/").json()
    assert old["state"] == "scored"
    assert old["scores"]["acc"]["valid"]["bagged"] == first["scores"]["acc"]["valid"]["bagged"]
    old_log = client.get(f"/api/v1/submissions/{sub['id']}/runs/{runs[1]['id']}/logs/").json()
    assert sum(line["text"].startswith("first line") for line in old_log["lines"]) == 5
    # Another team's member sees none of it.
    other = APIClient()
    other.force_authenticate(get_user_model().objects.create_user("mallory"))
    for url in (f"/api/v1/submissions/{sub['id']}/runs/",
                f"/api/v1/submissions/{sub['id']}/runs/{runs[1]['id']}/logs/",
                f"/api/v1/submissions/{sub['id']}/runs/{runs[1]['id']}/artifacts/"
                "submission/estimator.py"):
        assert other.get(url).status_code == 404, url
    # A run of another submission is not reachable through this one.
    assert client.get(f"/api/v1/submissions/{sub['id']}/runs/999999/").status_code == 404


FLOOD = '''
import sys

from sklearn.linear_model import LogisticRegression


class Flood(LogisticRegression):
    def fit(self, X, y):
        for i in range(4000):
            print(f"line {i} \\x00 " + "x" * 60)
        sys.stdout.write("\\xff no newline at the end")
        return super().fit(X, y)


def get_estimator():
    return Flood(max_iter=1000)
'''


def test_a_run_that_floods_its_log_is_cut_with_a_note_and_still_scored(celery_worker_process,
                                                                      kit_copy):
    client = signed_up(kit_copy("iris"), "runs-flood")
    sub = submit(client, "runs-flood", "flood", {"estimator.py": FLOOD})
    assert wait_final(client, sub["id"])["state"] == "scored"
    log = {"lines": [], "next": 0}
    while True:
        page = client.get(f"/api/v1/submissions/{sub['id']}/logs/",
                          {"after": log["next"]}).json()
        log["lines"] += page["lines"]
        log["next"] = page["next"]
        if page["finished"]:
            break
    assert page["truncated"]
    kept = sum(len(line["text"].encode()) + 1 for line in log["lines"]
               if line["stream"] != "note")
    assert 900 * 1024 < kept <= 1024 * 1024  # 5 folds x 280 KB printed, 1 MiB kept
    notes = [line["text"] for line in log["lines"] if line["stream"] == "note"]
    assert len(notes) == 1 and notes[0].startswith("log cut: this run printed more than 1024 KiB")
    assert log["lines"][0]["text"].startswith("line 0 \ufffd ")
