"""A sensitive-data pool: the problem is prepared on the data owner's machine
(`datarun runner prepare`), its folds run and are scored there, and a marker
planted in the data and the labels appears nowhere on the platform: not in
the database, the storage, the server's logs or any API answer."""
import io
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from databoard.models import Event, Submission
from datarun import services
from datarun.models import EvaluationScore, FoldScore, Problem
from tests.conftest import superuser
from tests.integration.helpers import participant, submit, wait_final
from tests.integration.runners import Runner
from workers.local_runs import run_kit

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MARKER = "ZQX-SECRET-4417"

PROBLEM = f'''
import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import StratifiedKFold

problem_title = "Clinic outcomes (sensitive)"
_target = "outcome"
_prediction_label_names = ["{MARKER}-absent", "{MARKER}-present"]
Predictions = rw.prediction_types.make_multiclass(label_names=_prediction_label_names)
workflow = rw.workflows.Estimator()
score_types = [
    rw.score_types.ROCAUC(name="auc", precision=3),
    rw.score_types.Accuracy(name="acc", precision=3),
]


def get_cv(X, y):
    return StratifiedKFold(n_splits=3, shuffle=True, random_state=7).split(X, y)


def _read(path, name):
    data = pd.read_csv(os.path.join(path, "data", name), parse_dates=["admitted"])
    return data.drop(columns=[_target]), data[_target].to_numpy()


def get_train_data(path="."):
    return _read(path, "train.csv")


def get_test_data(path="."):
    return _read(path, "test.csv")
'''

ESTIMATOR = '''
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class Talkative(LogisticRegression):
    def fit(self, X, y):
        # A participant printing the data: it must not reach the platform.
        print(X[:3], y[:3])
        return super().fit(X, y)


def get_estimator():
    columns = ColumnTransformer([("num", StandardScaler(), ["age", "pressure"])])
    return make_pipeline(columns, Talkative(max_iter=500))
'''

LEAKY_ERROR = '''
def get_estimator():
    class Leak:
        def fit(self, X, y):
            raise ValueError(f"first row: {X.iloc[0].to_dict()} label {y[0]}")
    return Leak()
'''


def write_kit(root: Path) -> Path:
    """A kit as a hospital would write it: a DataFrame with text, dates and a
    patient reference, text labels, and the marker everywhere."""
    rng = np.random.default_rng(0)
    kit = root / "clinic"
    (kit / "data").mkdir(parents=True)
    (kit / "submissions" / "starting_kit").mkdir(parents=True)
    (kit / "problem.py").write_text(textwrap.dedent(PROBLEM))
    (kit / "submissions" / "starting_kit" / "estimator.py").write_text(ESTIMATOR)
    (kit / "README.md").write_text("# Clinic outcomes\n\nPredict the outcome of a stay.\n")
    for name, n in (("train.csv", 90), ("test.csv", 30)):
        age = rng.integers(20, 90, n)
        pressure = rng.normal(120, 15, n).round(1)
        present = (age + rng.normal(0, 15, n)) > 55
        lines = ["patient_ref,admitted,age,pressure,note,outcome"]
        for i in range(n):
            label = f"{MARKER}-{'present' if present[i] else 'absent'}"
            lines.append(f"{MARKER}-{name[:2]}{i},2025-0{1 + i % 9}-1{i % 10},{age[i]},"
                         f"{pressure[i]},\"seen by {MARKER}, ward 3\",{label}")
        (kit / "data" / name).write_text("\n".join(lines) + "\n")
    return kit


def test_a_sensitive_problem_leaves_nothing_but_scores_on_the_platform(
        live_server_process, celery_worker_process, tmp_path):
    web = live_server_process
    kit = write_kit(tmp_path / "owner")
    pool, token = services.pool_create(user=superuser(), name="hospital", sandbox="local")
    home = tmp_path / "owner" / "runner-home"
    env = Runner.clean_env()
    prepared = subprocess.run(
        [str(Path(sys.executable).with_name("datarun")), "runner", "prepare", str(kit),
         "--name", "clinic", "--url", web.url, "--token", token, "--home", str(home)],
        env=env, capture_output=True, text=True, cwd=tmp_path)
    assert prepared.returncode == 0, prepared.stderr + prepared.stdout
    assert "registered clinic: 90 training rows, 30 test rows, 3 folds" in prepared.stdout
    problem = Problem.objects.get(name="clinic")
    assert problem.pool == pool and len(problem.fold_inputs) == 3

    Event.objects.create(name="clinic", title="Clinic", problem_name="clinic",
                         min_submission_interval_s=0)
    alice = participant("alice")
    assert alice.post("/api/v1/events/clinic/signup/").status_code == 201
    runner = Runner(web.url, token, "hospital-1", home)
    try:
        good = submit(alice, "clinic", "good", {"estimator.py": ESTIMATOR})["id"]
        leaky = submit(alice, "clinic", "leaky", {"estimator.py": LEAKY_ERROR})["id"]
        good_detail = wait_final(alice, good, timeout=180)
        leaky_detail = wait_final(alice, leaky, timeout=180)
    finally:
        runner.stop()
    assert good_detail["state"] == "scored", (good_detail, runner.log())
    assert leaky_detail["state"] == "error"
    assert "ValueError while training in fold" in leaky_detail["error"]
    assert "details stay on the data owner's machine" in leaky_detail["error"]

    # The scores are the kit's own, as `datarun test` computes them on the owner's machine.
    local = run_kit(kit)
    evaluation_id = Submission.objects.get(id=good).evaluation_id
    for row in local["folds"]:
        for step, by_name in row["scores"].items():
            for name, value in by_name.items():
                assert FoldScore.objects.get(
                    fold_run__evaluation_id=evaluation_id, fold_run__fold_index=row["fold"],
                    score_type__name=name, step=step).value == value
    bagged = {(s.score_type.name, s.step): s.bagged for s in
              EvaluationScore.objects.filter(evaluation_id=evaluation_id)
              .select_related("score_type")}
    for name, by_step in local["scores"].items():
        for step, values in by_step.items():
            assert bagged[(name, step)] == values["bagged"], (name, step)

    # The marker is nowhere on the platform.
    answers = []
    for sid in (good, leaky):
        answers.append(alice.get(f"/api/v1/submissions/{sid}/").content)
        evaluation = Submission.objects.get(id=sid).evaluation_id
        answers.append(alice.get(f"/api/v1/submissions/{sid}/runs/{evaluation}/").content)
        answers.append(alice.get(f"/api/v1/submissions/{sid}/logs/").content)
    for board in ("public", "private"):
        answers.append(alice.get(f"/api/v1/events/clinic/leaderboard/?board={board}").content)
    answers.append(alice.get("/api/v1/events/clinic/").content)
    kit_zip = alice.get("/api/v1/events/clinic/starting-kit.zip")
    assert kit_zip.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(kit_zip.content)).namelist()
    assert "clinic/submissions/starting_kit/estimator.py" in names
    assert not [n for n in names if "/data/" in n or n.endswith("problem.py")], names
    answers.append(kit_zip.content)
    for answer in answers:
        assert MARKER.encode() not in answer
    dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres",
                           connection.settings_dict["NAME"]], capture_output=True)
    assert dump.returncode == 0 and b"CREATE TABLE" in dump.stdout
    assert MARKER.encode() not in dump.stdout
    stored = [p for p in Path(settings.DATARUN_STORAGE_DIR).rglob("*") if p.is_file()]
    assert stored
    assert not [p for p in stored if MARKER.encode() in p.read_bytes()]
    server_logs = [web.log_path, *Path(settings.DATARUN_HOME).glob("worker-*.log")]
    for path in server_logs:
        assert MARKER not in path.read_text(errors="replace"), path
    # ... while the owner's machine kept what it printed and its predictions.
    assert any(MARKER in p.read_text(errors="replace")
               for p in (home / "problems" / "clinic").rglob("*.csv"))
