"""Declarative specs on their own, and the RAMP kits they become (no database):
kits are generated from DataFrames and folds made here, imported with the
kit reader and run with ramp-test."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold, StratifiedShuffleSplit

from datarun import declarative, ramp_kits
from datarun.declarative import InvalidProblemSpec, KitProvenance
from tests.conftest import EXAMPLES

RAMP_TEST = str(Path(sys.executable).parent / "ramp-test")
PROVENANCE = KitProvenance(dataset="toy@1", manifest_hash="a" * 64, split_hash="b" * 64)


def spec(**changes) -> dict:
    base = {"name": "toy", "dataset": "toy@1", "target": "label", "task": "multiclass",
            "score_types": ["accuracy"], "split": {"cv": {"method": "kfold"}}}
    return {**base, **changes}


def refused(data, *fragments: str) -> str:
    with pytest.raises(InvalidProblemSpec) as caught:
        declarative.parse_problem_spec(data)
    for fragment in fragments:
        assert fragment in caught.value.message
    return caught.value.message


# --- the spec ------------------------------------------------------------------

def test_a_spec_in_yaml_is_normalised():
    parsed = declarative.parse_problem_spec("""
name: iris-declarative
dataset: iris@1
target: species
ignore: id
task: multiclass
score_types: [acc, {type: negative_log_likelihood, name: NLL, precision: 4}]
split: 12
limits: {wall_time_s: 60, memory_mb: 1024, cpus: 1}
""")
    assert parsed.title == "iris-declarative"
    assert parsed.ignore == ("id",)
    assert parsed.workflow == "estimator"
    assert parsed.split == 12
    assert [(s.type, s.name, s.precision) for s in parsed.score_types] == [
        ("accuracy", "acc", 3), ("nll", "NLL", 4)]
    assert parsed.limits == {"wall_time_s": 60.0, "memory_mb": 1024, "cpus": 1.0}
    assert parsed.as_dict()["score_types"][1] == {"type": "nll", "name": "NLL", "precision": 4}


@pytest.mark.parametrize(("data", "fragments"), [
    ("name: [", ("not valid YAML",)),
    ("- a list", ("must be a mapping",)),
    (spec(tagret="label"), ("unknown field 'tagret'", "target")),
    ({k: v for k, v in spec().items() if k != "split"}, ("has no split",)),
    (spec(name="has space"), ("name: 'has space' may only have",)),
    (spec(task="classification"), ("task: 'classification' is not one of binary, multiclass, "
                                   "regression",)),
    (spec(score_types=["acuracy"]), ("unknown score type 'acuracy'", "accuracy, error, nll")),
    (spec(score_types=[]), ("has no score_types",)),
    (spec(task="regression", score_types=["accuracy"]),
     ("accuracy (accuracy) does not fit a regression task", "rmse")),
    (spec(score_types=["roc_auc"]), ("roc_auc (area under the ROC curve) does not fit a "
                                     "multiclass task",)),
    (spec(score_types=["accuracy", {"type": "balanced_accuracy", "name": "accuracy"}]),
     ("the name 'accuracy' is used twice",)),
    (spec(score_types=[{"type": "nll", "precision": 2.5}]), ("precision must be a whole",)),
    (spec(score_types=[{"type": "nll", "digits": 2}]), ("unknown key 'digits'",)),
    (spec(workflow="classifier"), ("workflow: 'classifier' is not one of estimator, ",)),
    (spec(workflow="feature_extractor_regressor"),
     ("does not fit a multiclass task; use estimator or feature_extractor_classifier",)),
    (spec(ignore=["label"]), ("'label' is the target; it cannot be ignored",)),
    (spec(limits={"wall_time": 10}), ("unknown limit 'wall_time'", "wall_time_s")),
    (spec(limits={"memory_mb": -1}), ("memory_mb must be a positive number",)),
    (spec(split="the usual"), ("split: expected a split spec",)),
])
def test_a_spec_error_names_what_to_fix(data, fragments):
    refused(data, *fragments)


# --- the spec against the data ---------------------------------------------------

IRIS = pd.read_csv(EXAMPLES / "iris" / "data" / "train.csv")


def test_a_missing_column_is_named_with_the_columns_there_are():
    parsed = declarative.parse_problem_spec(spec(target="specie", dataset="iris@1"))
    with pytest.raises(InvalidProblemSpec) as caught:
        declarative.check_columns(parsed, IRIS.columns, dataset="iris@1")
    assert caught.value.message == (
        "the dataset iris@1 has no column 'specie' (the target column); its columns are: "
        "sepal_length, sepal_width, petal_length, petal_width, species")
    parsed = declarative.parse_problem_spec(spec(target="species", ignore=["id"]))
    with pytest.raises(InvalidProblemSpec, match="no column 'id' \\(the ignored column\\)"):
        declarative.check_columns(parsed, IRIS.columns, dataset="iris@1")
    parsed = declarative.parse_problem_spec(spec(
        target="species", ignore=["sepal_length", "sepal_width", "petal_length", "petal_width"]))
    with pytest.raises(InvalidProblemSpec, match="no feature column is left"):
        declarative.check_columns(parsed, IRIS.columns, dataset="iris@1")


@pytest.mark.parametrize(("task", "values", "message"), [
    ("regression", ["setosa", "virginica"], "task regression needs a numeric target; 'y' holds "
                                            "str values (e.g. 'setosa'): use task: binary or "
                                            "multiclass"),
    ("binary", ["a", "b", "c", "a"], "task binary needs a target with 2 classes; 'y' has 3: "
                                     "a, b, c (use task: multiclass)"),
    ("multiclass", ["a", "a"], "task multiclass needs at least 2 classes; 'y' has 1: a"),
    ("multiclass", [0.5, 1.25, 2.0], "task multiclass needs class labels; 'y' holds fractional "
                                     "numbers (3 distinct values): use task: regression"),
    ("binary", ["a", None, "b"], "the target column 'y' has 1 missing value(s) (first rows: 1)"),
])
def test_a_target_that_does_not_fit_the_task_is_refused(task, values, message):
    parsed = declarative.parse_problem_spec(spec(
        target="y", task=task, score_types=["rmse" if task == "regression" else "accuracy"]))
    with pytest.raises(InvalidProblemSpec) as caught:
        declarative.target_labels(parsed, pd.Series(values))
    assert caught.value.message.startswith(message)


def test_class_labels_are_sorted_python_values():
    parsed = declarative.parse_problem_spec(spec(target="y", task="binary"))
    assert declarative.target_labels(parsed, pd.Series(np.array([1, 0, 1]))) == [0, 1]
    assert type(declarative.target_labels(parsed, pd.Series(np.array([1, 0])))[0]) is int
    parsed = declarative.parse_problem_spec(spec(target="species"))
    assert declarative.target_labels(parsed, IRIS["species"]) == [
        "setosa", "versicolor", "virginica"]
    parsed = declarative.parse_problem_spec(spec(target="y", task="regression",
                                                 score_types=["rmse"]))
    assert declarative.target_labels(parsed, pd.Series([1.5, 2.5])) is None


# --- the kit -----------------------------------------------------------------------

def toy_table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps, text whose values look like numbers, dates, an id."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    table = pd.DataFrame({
        "id": np.arange(n),
        "x": x,
        "z": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "code": rng.choice(["007", "010", "100"], size=n),
        "label": np.where(x > 0, "pos", "neg"),
        "amount": 3 * x + rng.normal(scale=0.1, size=n),
        "seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
    })
    return table


def write(tmp_path: Path, table: pd.DataFrame, folds=None, **changes) -> Path:
    parsed = declarative.parse_problem_spec(spec(ignore=["id"], **changes))
    if parsed.task == "regression":
        table = table.drop(columns=["label"])
    labels = declarative.target_labels(parsed, table[parsed.target])
    train, test = np.arange(100), np.arange(100, len(table))
    folds = folds if folds is not None else list(KFold(3).split(train))
    out = tmp_path / parsed.name
    declarative.write_kit(out, spec=parsed, table=table, train_rows=train, test_rows=test,
                          folds=folds, labels=labels, provenance=PROVENANCE)
    return out


def ramp_test(kit: Path) -> pd.DataFrame:
    done = subprocess.run([RAMP_TEST, "--submission", "starting_kit", "--save-output"],
                          cwd=kit, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = kit / "submissions" / "starting_kit" / "training_output"
    return pd.read_csv(out / "bagged_scores.csv", index_col=[0, 1])


def test_the_kit_serves_the_stored_folds_and_keeps_the_data_as_it_was(tmp_path):
    """get_cv returns the folds given, even ones no splitter would make; text
    that looks like numbers stays text; ignored columns are not in the data."""
    rng = np.random.default_rng(1)
    folds = [(np.sort(rng.permutation(100)[:70]), rng.permutation(100)[:30])
             for _ in range(4)]
    table = toy_table()
    kit = write(tmp_path, table, folds=folds)
    problem = ramp_kits.import_problem(kit)
    X, y = problem.get_train_data(str(kit))
    assert list(X.columns) == ["x", "z", "code", "amount", "seen"]
    assert X["code"].tolist() == table["code"].iloc[:100].tolist()
    assert X["seen"].tolist() == table["seen"].iloc[:100].tolist()
    assert X["x"].tolist() == table["x"].iloc[:100].tolist()  # floats exactly
    assert y.tolist() == table["label"].iloc[:100].tolist()
    served = problem.get_cv(X, y)
    assert len(served) == 4
    for (tr, va), (want_tr, want_va) in zip(served, folds, strict=True):
        assert tr.tolist() == want_tr.tolist() and va.tolist() == want_va.tolist()
    with pytest.raises(ValueError, match="folds of 100 training rows, got 99"):
        problem.get_cv(X.iloc[:99], y[:99])

    prepared = ramp_kits.prepare_kit(kit, tmp_path / "prepared")
    assert (prepared.n_train, prepared.n_test, prepared.n_folds) == (100, 20, 4)
    assert prepared.workflow_elements == ["estimator"]
    assert prepared.starting_kit == ["estimator.py"]
    assert prepared.prediction_shape == [2]
    assert (kit / "README.md").read_text().count("test labels") == 1


def test_fold_indices_outside_the_training_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="fold 0's valid indices leave the 100 training rows"):
        write(tmp_path, toy_table(), folds=[(np.arange(90), np.arange(90, 101))])


def test_the_iris_kit_equals_the_example_under_ramp_test(tmp_path):
    """The generated problem.py, data and starting kit score the example's
    folds as the example kit does."""
    train = pd.read_csv(EXAMPLES / "iris" / "data" / "train.csv")
    test = pd.read_csv(EXAMPLES / "iris" / "data" / "test.csv")
    table = pd.concat([train, test], ignore_index=True)
    parsed = declarative.parse_problem_spec(spec(
        name="iris", target="species", score_types=[
            {"type": "accuracy", "name": "acc", "precision": 3},
            {"type": "error", "precision": 3}, {"type": "nll", "precision": 3}]))
    folds = list(StratifiedShuffleSplit(n_splits=5, test_size=0.2, random_state=57)
                 .split(train, train["species"]))
    kit = tmp_path / "iris"
    declarative.write_kit(kit, spec=parsed, table=table, train_rows=np.arange(120),
                          test_rows=np.arange(120, 150), folds=folds,
                          labels=declarative.target_labels(parsed, table["species"]),
                          provenance=PROVENANCE)
    assert ((kit / "submissions" / "starting_kit" / "estimator.py").read_text()
            == (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text())
    example = tmp_path / "example"
    subprocess.run(["cp", "-r", str(EXAMPLES / "iris"), str(example)], check=True)
    assert ramp_test(kit).equals(ramp_test(example))


@pytest.mark.parametrize(("changes", "files"), [
    ({"task": "binary", "score_types": ["roc_auc", "f1", "balanced_accuracy", "nll"]},
     ["estimator.py"]),
    ({"task": "binary", "workflow": "feature_extractor_classifier",
      "score_types": ["accuracy", "f1_above", "macro_averaged_recall"]},
     ["classifier.py", "feature_extractor.py"]),
    ({"task": "regression", "target": "amount", "score_types": ["r2", "mae", "rmse", "mare"]},
     ["estimator.py"]),
    ({"task": "regression", "target": "amount", "workflow": "feature_extractor_regressor",
      "score_types": ["rmse", "normalized_rmse", "relative_rmse"]},
     ["feature_extractor.py", "regressor.py"]),
])
def test_every_workflow_and_score_type_runs_under_ramp_test(tmp_path, changes, files):
    """Mixed columns with gaps: the starting kit imputes and encodes them."""
    kit = write(tmp_path, toy_table(), **changes)
    assert sorted(p.name for p in (kit / "submissions" / "starting_kit").iterdir()) == files
    bagged = ramp_test(kit)
    names = [s if isinstance(s, str) else s["name"] for s in changes["score_types"]]
    assert list(bagged.columns) == names
    assert np.isfinite(bagged.to_numpy()).all()
    if changes["task"] == "regression":
        assert bagged.loc[("test", 2), "rmse"] < 1.0  # amount is 3x plus noise
    else:
        assert bagged.xs("test", level=0).iloc[-1, 0] > 0.8
