"""``datarun test`` and :func:`workers.local_runs.run_kit`: a kit's submission
run on this machine in the server's sandbox, with no server and no Django
settings."""
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from datarun.errors import InvalidKit, InvalidSubmission
from workers.local_runs import run_kit

DATARUN = str(Path(sys.executable).parent / "datarun")


def datarun_test(*args: str) -> subprocess.CompletedProcess:
    """The installed command, with Django settings that cannot be imported: a
    command that read them would fail."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "no_such_settings_module"}
    return subprocess.run([DATARUN, "test", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def forkservers() -> set[psutil.Process]:
    """Fork servers under this process (a session's Celery worker has its own)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "workers.harness.forkserver" in " ".join(child.cmdline()):
                found.add(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """A temporary folder for run_kit's own temporary files, to see them go."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_run_kit_scores_every_fold_and_leaves_nothing_behind(kit_copy, own_tmp):
    before = forkservers()
    report = run_kit(kit_copy("iris"))

    assert report["state"] == "scored" and report["error"] is None
    assert report["problem"] == "Iris species classification"
    assert [st["name"] for st in report["score_types"]] == ["acc", "error", "nll"]
    assert [st["official"] for st in report["score_types"]] == [True, False, False]
    assert [row["fold"] for row in report["folds"]] == [0, 1, 2, 3, 4]
    for row in report["folds"]:
        for step in ("train", "valid", "test"):
            assert set(row["scores"][step]) == {"acc", "error", "nll"}
            assert all(math.isfinite(v) for v in row["scores"][step].values())
        assert row["wall_time"] > 0 and row["cpu_time"] > 0 and row["peak_memory"] > 2**20
    for name in ("acc", "error", "nll"):
        assert report["scores"][name]["train"]["bagged"] is None
        for step in ("valid", "test"):
            assert math.isfinite(report["scores"][name][step]["bagged"])
        valid = [row["scores"]["valid"][name] for row in report["folds"]]
        assert report["scores"][name]["valid"]["mean"] == pytest.approx(sum(valid) / 5)
    assert report["scores"]["acc"]["test"]["bagged"] > 0.8
    # The prepared kit, the work dirs and the fork server are gone.
    assert list(own_tmp.iterdir()) == []
    assert forkservers() <= before


def test_run_kit_reports_the_failing_fold_with_the_participants_traceback(kit_copy, own_tmp):
    before = forkservers()
    report = run_kit(kit_copy("iris"), "error_in_fit")

    assert report["state"] == "error"
    assert report["error"]["fold"] == 0 and report["error"]["kind"] == "participant"
    assert report["error"]["message"] == (
        "ValueError while training in fold 0: this estimator always fails in fit")
    assert 'File "estimator.py", line 8, in fit' in report["error"]["traceback"]
    assert len(report["folds"]) == 1  # as on the server, the first failure stops the run
    assert list(own_tmp.iterdir()) == []
    assert forkservers() <= before


def test_run_kit_refuses_a_missing_submission_file(kit_copy):
    kit = kit_copy("iris")
    (kit / "submissions" / "empty").mkdir()
    with pytest.raises(InvalidSubmission, match="submissions/empty lacks estimator.py"):
        run_kit(kit, "empty")


def test_run_kit_refuses_a_broken_problem(kit_copy):
    kit = kit_copy("iris")
    (kit / "problem.py").write_text("import no_such_module\n")
    with pytest.raises(InvalidKit, match="problem.py failed to import: ModuleNotFoundError"):
        run_kit(kit)


def test_command_prints_scores_and_json(kit_copy):
    kit = kit_copy("diabetes")
    shown = datarun_test(str(kit))
    assert shown.returncode == 0, shown.stderr
    assert "[5/5] fold 4 scored" in shown.stderr
    assert "Bagged scores" in shown.stdout and "Mean ± std over 5 folds" in shown.stdout

    as_json = datarun_test(str(kit), "--submission", "starting_kit", "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)  # nothing but JSON on stdout
    assert report["state"] == "scored" and report["submission"] == "starting_kit"
    rmse = report["scores"]["rmse"]["valid"]["bagged"]
    assert 30 < rmse < 100
    # rmse's precision is 2: the table shows the full-precision value rounded to it.
    bagged_table = shown.stdout.split("Bagged scores", 1)[1]
    assert f"{rmse:.2f}" in bagged_table


def test_command_exits_1_with_the_error_when_the_submission_fails(kit_copy):
    result = datarun_test(str(kit_copy("breast_cancer")), "--submission", "error_in_fit")
    assert result.returncode == 1
    assert "The submission failed: ValueError while training in fold 0" in result.stderr
    assert 'File "estimator.py"' in result.stderr


def test_command_applies_the_time_limit(kit_copy):
    kit = kit_copy("iris")
    slow = kit / "submissions" / "slow"
    slow.mkdir()
    (slow / "estimator.py").write_text(
        "import time\n\nfrom sklearn.linear_model import LogisticRegression\n\n\n"
        "class Slow(LogisticRegression):\n"
        "    def fit(self, X, y):\n"
        "        time.sleep(60)\n\n\n"
        "def get_estimator():\n"
        "    return Slow()\n")
    result = datarun_test(str(kit), "--submission", "slow", "--time-limit", "1", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["message"] == (
        "exceeded the time limit of 1 s in fold 0")


def test_command_exits_2_when_the_kit_is_missing(tmp_path):
    result = datarun_test(str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "is not a folder: give the path of a RAMP kit" in result.stderr
    as_json = datarun_test(str(tmp_path / "nowhere"), "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"]["code"] == "invalid_kit"
    assert "is not a folder" in json.loads(as_json.stdout)["error"]["message"]


def test_command_exits_2_and_lists_the_submissions_when_one_is_missing(kit_copy):
    result = datarun_test(str(kit_copy("iris")), "--submission", "nope")
    assert result.returncode == 2
    assert ("the kit has no submission 'nope' (no folder submissions/nope); its submissions "
            "are: error_in_fit, random_forest, starting_kit") in result.stderr


SLOW_ESTIMATOR = (
    "import time\n\nfrom sklearn.linear_model import LogisticRegression\n\n\n"
    "class Slow(LogisticRegression):\n"
    "    def fit(self, X, y):\n"
    "        time.sleep(60)\n"
    "        return self\n\n\n"
    "def get_estimator():\n"
    "    return Slow()\n"
)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_stopping_the_command_stops_the_fold_and_removes_its_files(kit_copy, tmp_path, stop):
    """Ctrl-C (or a kill) while a fold trains: no process or folder is left,
    even without bubblewrap, where a fold outlives its fork server."""
    kit = kit_copy("iris")
    (kit / "submissions" / "slow").mkdir()
    (kit / "submissions" / "slow" / "estimator.py").write_text(SLOW_ESTIMATOR)
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(own_tmp), "DATARUN_LOCAL_BWRAP": "off"}
    command = subprocess.Popen([DATARUN, "test", str(kit), "--submission", "slow"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while True:  # until the fork server has forked the fold
        started = psutil.Process(command.pid).children(recursive=True)
        if any(p.ppid() != command.pid for p in started):
            break
        assert time.monotonic() < deadline, "the fold did not start"
        time.sleep(0.1)
    command.send_signal(stop)
    assert command.wait(timeout=30) == 128 + stop
    assert psutil.wait_procs(started, timeout=5)[1] == []
    assert list(own_tmp.iterdir()) == []
