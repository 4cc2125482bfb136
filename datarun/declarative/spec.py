"""A declarative problem's spec, checked on its own and against the dataset's table."""
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from datarun import environments
from datarun.errors import ApplicationError

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})
ALL_TASKS = CLASSIFICATION | REGRESSION
DEFAULT_PRECISION = 3
LIMITS = {"wall_time_s": float, "memory_mb": int, "cpus": float}
FIELDS = ("name", "title", "description", "dataset", "target", "ignore", "task",
          "score_types", "split", "workflow", "limits", "environment")
REQUIRED = ("name", "dataset", "target", "task", "score_types", "split")
NAME_PATTERN = r"[A-Za-z0-9_-]{1,100}"


class InvalidProblemSpec(ApplicationError):
    code = "invalid_problem"


@dataclass(frozen=True)
class ScoreTypeKind:
    """A score type a spec may name: the expression that builds it in
    ``problem.py`` and the tasks it makes sense for."""

    constructor: str
    tasks: frozenset
    what: str


# rampwf's score types, plus three it lacks (defined in the generated problem.py).
SCORE_TYPES = {
    "accuracy": ScoreTypeKind("rw.score_types.Accuracy", CLASSIFICATION, "accuracy"),
    "error": ScoreTypeKind("rw.score_types.ClassificationError", CLASSIFICATION,
                           "classification error"),
    "nll": ScoreTypeKind("rw.score_types.NegativeLogLikelihood", CLASSIFICATION,
                         "negative log-likelihood"),
    "roc_auc": ScoreTypeKind("rw.score_types.ROCAUC", frozenset({"binary"}),
                             "area under the ROC curve"),
    "balanced_accuracy": ScoreTypeKind("rw.score_types.BalancedAccuracy", CLASSIFICATION,
                                       "balanced accuracy"),
    "macro_averaged_recall": ScoreTypeKind("rw.score_types.MacroAveragedRecall",
                                           CLASSIFICATION, "macro-averaged recall"),
    "f1_above": ScoreTypeKind("rw.score_types.F1Above", CLASSIFICATION,
                              "share of classes whose F1 is above 0.5"),
    "f1": ScoreTypeKind("MacroF1", CLASSIFICATION, "macro-averaged F1"),
    "rmse": ScoreTypeKind("rw.score_types.RMSE", REGRESSION, "root mean squared error"),
    "mare": ScoreTypeKind("rw.score_types.MARE", REGRESSION, "mean absolute relative error"),
    "normalized_rmse": ScoreTypeKind("rw.score_types.NormalizedRMSE", REGRESSION,
                                     "RMSE over the target's standard deviation"),
    "relative_rmse": ScoreTypeKind("rw.score_types.RelativeRMSE", REGRESSION,
                                   "RMSE of the relative error"),
    "mae": ScoreTypeKind("MeanAbsoluteError", REGRESSION, "mean absolute error"),
    "r2": ScoreTypeKind("R2", REGRESSION, "coefficient of determination"),
}
SCORE_TYPE_ALIASES = {
    "acc": "accuracy", "classification_error": "error", "negative_log_likelihood": "nll",
    "auc": "roc_auc", "macro_f1": "f1",
}


@dataclass(frozen=True)
class WorkflowKind:
    constructor: str
    elements: tuple[str, ...]
    tasks: frozenset


WORKFLOWS = {
    "estimator": WorkflowKind("rw.workflows.Estimator()", ("estimator",), ALL_TASKS),
    "feature_extractor_classifier": WorkflowKind(
        "rw.workflows.FeatureExtractorClassifier()", ("feature_extractor", "classifier"),
        CLASSIFICATION),
    "feature_extractor_regressor": WorkflowKind(
        "rw.workflows.FeatureExtractorRegressor()", ("feature_extractor", "regressor"),
        REGRESSION),
}


@dataclass(frozen=True)
class ScoreTypeSpec:
    type: str
    name: str
    precision: int


@dataclass(frozen=True)
class ProblemSpec:
    name: str
    title: str
    description: str
    dataset: str
    target: str
    ignore: tuple[str, ...]
    task: str
    score_types: tuple[ScoreTypeSpec, ...]
    split: dict | int
    workflow: str
    limits: dict
    # The packages of the problem's own environment (empty: the shared runtime).
    packages: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """The spec in its normal form (what a Problem stores)."""
        out = asdict(self)
        out["ignore"] = list(self.ignore)
        out["score_types"] = [asdict(s) for s in self.score_types]
        del out["packages"]
        if self.packages:
            out["environment"] = {"packages": list(self.packages)}
        return out

    @property
    def requirements(self) -> str:
        """The packages as a requirements file."""
        return "".join(f"{line}\n" for line in self.packages)


def _one_of(value, choices, field: str) -> str:
    if value not in choices:
        raise InvalidProblemSpec(f"{field}: {value!r} is not one of {', '.join(choices)}")
    return value


def _text(data: dict, field: str, default: str | None = None) -> str:
    value = data.get(field, default)
    if not isinstance(value, str) or not value.strip():
        raise InvalidProblemSpec(f"{field}: expected a non-empty text, got {value!r}")
    return value.strip()


def parse_problem_spec(data: dict | str) -> ProblemSpec:
    """Check a spec (a dict, or YAML/JSON text) on its own; raises
    :class:`InvalidProblemSpec` naming the field to fix."""
    if isinstance(data, str):
        import yaml

        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise InvalidProblemSpec(f"the spec is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidProblemSpec("the spec must be a mapping of fields "
                                 f"({', '.join(FIELDS)})")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidProblemSpec(f"unknown field {unknown[0]!r}; the fields are "
                                 f"{', '.join(FIELDS)}")
    missing = [f for f in REQUIRED if data.get(f) in (None, "", [])]
    if missing:
        raise InvalidProblemSpec(f"the spec has no {', '.join(missing)}")
    name = _text(data, "name")
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidProblemSpec(f"name: {name!r} may only have letters, digits, '_' and '-' "
                                 "(at most 100)")
    task = _one_of(data["task"], TASKS, "task")
    target = _text(data, "target")
    ignore = data.get("ignore") or []
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, list) or not all(isinstance(c, str) and c for c in ignore):
        raise InvalidProblemSpec(f"ignore: expected a list of column names, got {ignore!r}")
    if target in ignore:
        raise InvalidProblemSpec(f"ignore: {target!r} is the target; it cannot be ignored")
    workflow = _one_of(data.get("workflow") or "estimator", tuple(WORKFLOWS), "workflow")
    if task not in WORKFLOWS[workflow].tasks:
        fits = [w for w, kind in WORKFLOWS.items() if task in kind.tasks]
        raise InvalidProblemSpec(f"workflow: {workflow} does not fit a {task} task; "
                                 f"use {' or '.join(fits)}")
    split = data["split"]
    if isinstance(split, str) and split.isdigit():
        split = int(split)
    if not isinstance(split, dict | int) or isinstance(split, bool):
        raise InvalidProblemSpec("split: expected a split spec (test cut and CV) or the id "
                                 f"of an existing split, got {split!r}")
    return ProblemSpec(
        name=name,
        title=_text(data, "title", name),
        description=str(data.get("description") or ""),
        dataset=_text(data, "dataset"),
        target=target,
        ignore=tuple(dict.fromkeys(ignore)),
        task=task,
        score_types=_parse_score_types(data["score_types"], task),
        split=split,
        workflow=workflow,
        limits=_parse_limits(data.get("limits") or {}),
        packages=_parse_environment(data.get("environment")),
    )


def _parse_environment(environment) -> tuple[str, ...]:
    """``environment: {packages: [...]}``: requirement lines as in a
    ``requirements.txt`` (``pandas==2.2.3``, ``xgboost>=2``)."""
    if environment in (None, {}):
        return ()
    if not isinstance(environment, dict):
        raise InvalidProblemSpec("environment: expected {packages: [requirement, ...]}, got "
                                 f"{environment!r}")
    extra = sorted(set(environment) - {"packages"})
    if extra:
        raise InvalidProblemSpec(f"environment: unknown key {extra[0]!r} (packages)")
    packages = environment.get("packages") or []
    if isinstance(packages, str):
        packages = [packages]
    if not isinstance(packages, list):
        raise InvalidProblemSpec(f"environment.packages: expected a list of requirements "
                                 f"such as 'pandas==2.2.3', got {packages!r}")
    out = []
    for i, entry in enumerate(packages):
        where = f"environment.packages[{i}]"
        if not isinstance(entry, str) or not entry.strip() or "\n" in entry:
            raise InvalidProblemSpec(f"{where}: expected one requirement such as "
                                     f"'pandas==2.2.3', got {entry!r}")
        problem = environments.requirement_problem(entry.strip())
        if problem:
            raise InvalidProblemSpec(f"{where} ({entry.strip()!r}) {problem}")
        out.append(entry.strip())
    return tuple(dict.fromkeys(out))


def _parse_score_types(entries, task: str) -> tuple[ScoreTypeSpec, ...]:
    if isinstance(entries, str | dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise InvalidProblemSpec(f"score_types: expected a list, got {entries!r}")
    known = ", ".join(k for k, v in SCORE_TYPES.items() if task in v.tasks)
    out = []
    for i, entry in enumerate(entries):
        where = f"score_types[{i}]"
        if isinstance(entry, str):
            entry = {"type": entry}
        if not isinstance(entry, dict):
            raise InvalidProblemSpec(f"{where}: expected a name or {{type, name, precision}}, "
                                     f"got {entry!r}")
        extra = sorted(set(entry) - {"type", "name", "precision"})
        if extra:
            raise InvalidProblemSpec(f"{where}: unknown key {extra[0]!r} (type, name, precision)")
        written = entry.get("type") or entry.get("name")
        key = SCORE_TYPE_ALIASES.get(written, written)
        if key not in SCORE_TYPES:
            raise InvalidProblemSpec(f"{where}: unknown score type {written!r}; for a {task} "
                                     f"task the score types are {known}")
        if task not in SCORE_TYPES[key].tasks:
            raise InvalidProblemSpec(f"{where}: {written} ({SCORE_TYPES[key].what}) does not "
                                     f"fit a {task} task; use one of {known}")
        name = entry.get("name") or written
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_ .-]{1,100}", name):
            raise InvalidProblemSpec(f"{where}: name {name!r} may only have letters, digits, "
                                     "spaces, '_', '.' and '-'")
        precision = entry.get("precision", DEFAULT_PRECISION)
        if not isinstance(precision, int) or isinstance(precision, bool) \
                or not 0 <= precision <= 12:
            raise InvalidProblemSpec(f"{where}: precision must be a whole number of digits "
                                     f"from 0 to 12, got {precision!r}")
        out.append(ScoreTypeSpec(type=key, name=name, precision=precision))
    if not out:
        raise InvalidProblemSpec("score_types: give at least one (the first is official)")
    names = [s.name for s in out]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidProblemSpec(f"score_types: the name {duplicated[0]!r} is used twice; "
                                 "give each score type its own name")
    return tuple(out)


def _parse_limits(limits) -> dict:
    if not isinstance(limits, dict):
        raise InvalidProblemSpec(f"limits: expected a mapping, got {limits!r}")
    out = {}
    for key, value in limits.items():
        if key not in LIMITS:
            raise InvalidProblemSpec(f"limits: unknown limit {key!r}; the limits are "
                                     f"{', '.join(LIMITS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidProblemSpec(f"limits: {key} must be a positive number, got {value!r}")
        out[key] = LIMITS[key](value)
    return out


# --- Checks against the dataset's table -------------------------------------

def _listing(names: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_columns(spec: ProblemSpec, columns: Sequence[str], *, dataset: str) -> None:
    """The target and the ignored columns exist in the dataset ``dataset``."""
    columns = list(columns)
    for column, role in [(spec.target, "target"), *((c, "ignored") for c in spec.ignore)]:
        if column not in columns:
            raise InvalidProblemSpec(
                f"the dataset {dataset} has no column {column!r} (the {role} column); "
                f"its columns are: {_listing(columns)}")
    if not feature_columns(spec, columns):
        raise InvalidProblemSpec("no feature column is left once the target and the ignored "
                                 "columns are set aside")


def feature_columns(spec: ProblemSpec, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c != spec.target and c not in spec.ignore]


def _python(value):
    return value.item() if isinstance(value, np.generic) else value


def target_labels(spec: ProblemSpec, y: pd.Series) -> list | None:
    """The sorted class labels (None for regression); refuses a target that
    does not fit the task."""
    missing = int(y.isna().sum())
    if missing:
        rows = np.flatnonzero(y.isna().to_numpy())[:5].tolist()
        raise InvalidProblemSpec(
            f"the target column {spec.target!r} has {missing} missing value(s) (first rows: "
            f"{', '.join(map(str, rows))}); drop those rows in the dataset's transform")
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if spec.task == "regression":
        if not numeric:
            example = y.iloc[0] if len(y) else ""
            raise InvalidProblemSpec(
                f"task regression needs a numeric target; {spec.target!r} holds "
                f"{y.dtype} values (e.g. {_python(example)!r}): use task: binary or multiclass")
        return None
    values = pd.unique(y)
    if numeric and pd.api.types.is_float_dtype(y) and not np.all(np.mod(values, 1) == 0):
        raise InvalidProblemSpec(
            f"task {spec.task} needs class labels; {spec.target!r} holds fractional numbers "
            f"({len(values)} distinct values): use task: regression")
    labels = sorted(_python(v) for v in values)
    shown = _listing([str(v) for v in labels], 10)
    if spec.task == "binary" and len(labels) != 2:
        raise InvalidProblemSpec(
            f"task binary needs a target with 2 classes; {spec.target!r} has {len(labels)}: "
            f"{shown}" + (" (use task: multiclass)" if len(labels) > 2 else ""))
    if len(labels) < 2:
        raise InvalidProblemSpec(f"task {spec.task} needs at least 2 classes; "
                                 f"{spec.target!r} has {len(labels)}: {shown}")
    return labels
