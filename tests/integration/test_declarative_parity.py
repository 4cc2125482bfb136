"""A declarative problem equivalent to an example RAMP kit scores a submission
exactly as the kit does, through a real worker, and its exported kit gives
the same scores under ramp-test.

The example's train.csv and test.csv are registered as one dataset file with
a ``part`` column naming the file each row came from; the problem keeps that
labelling (a ``given`` test cut) and declares the kit's CV.
"""
import io
import json
import time
import zipfile

import pytest

from datarun import selectors, services
from datarun.models import Evaluation, Problem
from datarun.services.datasets import dataset_version_create
from datarun.services.declarative import problem_create_declarative, problem_export_kit
from tests.conftest import EXAMPLES
from tests.integration.test_ramp_parity import ramp_test_scores

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SPECS = {
    # datarun/examples/iris/problem.py, declared.
    "iris": {
        "target": "species",
        "task": "multiclass",
        "score_types": [{"type": "accuracy", "name": "acc", "precision": 3},
                        {"type": "error", "name": "error", "precision": 3},
                        {"type": "nll", "name": "nll", "precision": 3}],
        "cv": {"method": "stratified_shuffle", "n_splits": 5, "fraction": 0.2, "seed": 57},
    },
    # datarun/examples/diabetes/problem.py, declared.
    "diabetes": {
        "target": "target",
        "task": "regression",
        "score_types": [{"type": "rmse", "name": "rmse", "precision": 2},
                        {"type": "mare", "name": "mare", "precision": 3}],
        "cv": {"method": "shuffle", "n_splits": 5, "fraction": 0.2, "seed": 57},
    },
}


def register_example_data(kit: str) -> str:
    """The example's train.csv and test.csv, byte for byte, as one file with a
    ``part`` column; returns the version's ref."""
    lines = []
    for part in ("train", "test"):
        header, *rows = (EXAMPLES / kit / "data" / f"{part}.csv").read_text().splitlines()
        lines += [] if lines else [f"{header},part"]
        lines += [f"{row},{part}" for row in rows]
    version, _ = dataset_version_create(dataset=f"{kit}-data",
                                        uploads={f"{kit}.csv": "\n".join(lines).encode() + b"\n"})
    return f"{version.dataset.name}@{version.number}"


def declarative_twin(kit: str) -> Problem:
    declared = SPECS[kit]
    return problem_create_declarative(spec={
        "name": f"{kit}-declarative",
        "title": f"{kit} (declarative)",
        "dataset": register_example_data(kit),
        "target": declared["target"],
        "ignore": ["part"],
        "task": declared["task"],
        "score_types": declared["score_types"],
        "split": {"test": {"method": "given", "column": "part"}, "cv": declared["cv"]},
        "workflow": "estimator",
    })


def evaluate(problem: Problem, files: dict[str, bytes], limits: dict | None = None,
             timeout: float = 120) -> dict:
    evaluation = services.evaluation_create(problem=problem, files=files, limits=limits)
    deadline = time.monotonic() + timeout
    while Evaluation.objects.get(id=evaluation.id).state not in ("scored", "error"):
        assert time.monotonic() < deadline, f"evaluation of {problem.name} did not finish"
        time.sleep(0.2)
    detail = selectors.evaluation_detail(evaluation.id)
    assert detail["state"] == "scored", (detail["error"], detail["error_traceback"])
    return detail


@pytest.mark.parametrize("kit", ["iris", "diabetes"])
def test_declarative_twin_scores_the_starting_kit_like_the_ramp_kit(
        celery_worker_process, kit, tmp_path):
    ramp = services.problem_import_ramp_kit(path=EXAMPLES / kit, name=kit, replace=True)
    declarative = declarative_twin(kit)
    assert declarative.kind == Problem.Kind.DECLARATIVE
    assert (declarative.n_train, declarative.n_test, declarative.n_folds) == (
        ramp.n_train, ramp.n_test, ramp.n_folds)
    # The very same folds, stored once with the split.
    assert declarative.folds_hash == ramp.folds_hash
    assert [(s.name, s.precision, s.is_lower_the_better) for s in declarative.score_types.all()
            ] == [(s.name, s.precision, s.is_lower_the_better) for s in ramp.score_types.all()]

    files = {"estimator.py": (EXAMPLES / kit / "submissions" / "starting_kit" /
                              "estimator.py").read_bytes()}
    by_ramp, by_declarative = evaluate(ramp, files), evaluate(declarative, files)
    assert set(by_ramp["scores"]) == {s["name"] for s in SPECS[kit]["score_types"]}
    assert len(by_declarative["folds"]) == len(by_ramp["folds"]) == 5
    for ours, theirs in zip(by_declarative["folds"], by_ramp["folds"], strict=True):
        assert set(ours["scores"]) == set(theirs["scores"])
        for name, steps in theirs["scores"].items():
            for step in ("train", "valid", "test"):
                assert ours["scores"][name][step] == pytest.approx(
                    steps[step], abs=1e-9, rel=0), (ours["fold"], name, step)
    for name, steps in by_ramp["scores"].items():
        for step in ("valid", "test"):
            for stat in ("mean", "bagged"):
                assert by_declarative["scores"][name][step][stat] == pytest.approx(
                    steps[step][stat], abs=1e-9, rel=0), (name, step, stat)

    # The exported kit gives the server's scores under ramp-test.
    with zipfile.ZipFile(io.BytesIO(problem_export_kit(problem=declarative))) as archive:
        archive.extractall(tmp_path)
    kit_dir = tmp_path / declarative.name
    assert (kit_dir / "data" / "test.csv").is_file()  # the organisers' copy: test labels in
    ref_folds, ref_bagged = ramp_test_scores(kit_dir, "starting_kit")
    assert len(ref_folds) == 5
    for fold, ref in zip(by_declarative["folds"], ref_folds, strict=True):
        for name in ref.columns.drop("time"):
            for step in ("train", "valid", "test"):
                assert fold["scores"][name][step] == pytest.approx(
                    ref.loc[step, name], abs=1e-9, rel=0), (fold["fold"], name, step)
    for name in ref_bagged.columns:
        for step in ("valid", "test"):
            assert by_declarative["scores"][name][step]["bagged"] == pytest.approx(
                ref_bagged.loc[step, name], abs=1e-9, rel=0), (name, step)


def test_generated_starting_kit_runs_on_the_worker(celery_worker_process):
    """The kit's own starting kit, as a participant downloads it, is scored."""
    problem = declarative_twin("iris")
    download = selectors.starting_kit_files(problem.name)
    # get_cv's folds come with train.csv; the test labels stay behind.
    assert {f"{problem.name}/data/train.csv", f"{problem.name}/data/train_folds.npz"} <= set(
        download)
    # Its public test set: training rows (its stored folds need every one),
    # never the private test rows.
    public_test = download[f"{problem.name}/data/test.csv"].decode().splitlines()
    assert set(public_test) <= set(download[f"{problem.name}/data/train.csv"].decode()
                                   .splitlines())
    record = json.loads(download[f"{problem.name}/public_split.json"])
    assert record["source"] == "carved_overlapping" and record["n_test"] == len(public_test) - 1
    prefix = f"{problem.name}/submissions/starting_kit/"
    files = {k.removeprefix(prefix): v for k, v in download.items() if k.startswith(prefix)}
    assert set(files) == {"estimator.py"}
    detail = evaluate(problem, files)
    assert detail["scores"]["acc"]["test"]["bagged"] > 0.8


def test_problem_limits_apply_to_its_evaluations(celery_worker_process):
    """Limits in the spec reach each fold run; an event's own limits win."""
    ref = register_example_data("iris")
    problem = problem_create_declarative(spec={
        "name": "iris-limited", "dataset": ref, "target": "species", "ignore": ["part"],
        "task": "multiclass", "score_types": ["accuracy"],
        "split": {"test": {"method": "given", "column": "part"},
                  "cv": {"method": "stratified_kfold", "n_splits": 2}},
        "limits": {"wall_time_s": 45, "memory_mb": 900},
    })
    files = {"estimator.py": (EXAMPLES / "iris" / "submissions" / "starting_kit" /
                              "estimator.py").read_bytes()}
    detail = evaluate(problem, files)
    assert detail["limits"]["wall_time_s"] == 45 and detail["limits"]["memory_mb"] == 900
    event_limited = evaluate(problem, files, limits={"wall_time_s": 30})
    assert event_limited["limits"]["wall_time_s"] == 30
    assert event_limited["limits"]["memory_mb"] == 900
