"""Declarative problems (no Django): the spec, its checks, and the RAMP kit it becomes.

An organiser describes a problem instead of writing ``problem.py``::

    name: iris-declarative
    title: Iris (declarative)
    dataset: iris@1                 # a dataset version
    target: species
    ignore: [id]                    # columns that are not features
    task: multiclass                # binary | multiclass | regression
    score_types: [accuracy, error, {type: nll, name: nll, precision: 3}]
    split: {test: ..., cv: ...}     # a split spec, or the id of an existing split
    workflow: estimator             # | feature_extractor_classifier | _regressor
    limits: {wall_time_s: 60, memory_mb: 1024, cpus: 1}

:func:`parse_problem_spec` checks the spec alone, :func:`check_columns` and
:func:`target_labels` check it against the dataset's table, and
:func:`write_kit` writes the RAMP kit: ``problem.py`` whose ``get_cv`` returns
the folds stored in ``data/train_folds.npz`` (materialised once with the
split, never recomputed), ``data/train.csv`` and ``data/test.csv`` (features
and target only), a starting kit and a README. The kit is then imported like any
RAMP kit, so a declarative problem runs through the same worker path.
"""
import pprint
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datarun.errors import ApplicationError

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})
ALL_TASKS = CLASSIFICATION | REGRESSION
DEFAULT_PRECISION = 3
LIMITS = {"wall_time_s": float, "memory_mb": int, "cpus": float}
FIELDS = ("name", "title", "description", "dataset", "target", "ignore", "task",
          "score_types", "split", "workflow", "limits")
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
CUSTOM_SCORE_CLASSES = {
    "MacroF1": '''
class MacroF1(ClassifierBaseScoreType):
    """Macro-averaged F1 of the predicted labels."""
    is_lower_the_better = False
    minimum = 0.0
    maximum = 1.0

    def __init__(self, name='f1', precision=3):
        self.name = name
        self.precision = precision

    def __call__(self, y_true_label_index, y_pred_label_index):
        return f1_score(y_true_label_index, y_pred_label_index, average='macro')
''',
    "MeanAbsoluteError": '''
class MeanAbsoluteError(BaseScoreType):
    is_lower_the_better = True
    minimum = 0.0
    maximum = float('inf')

    def __init__(self, name='mae', precision=3):
        self.name = name
        self.precision = precision

    def __call__(self, y_true, y_pred):
        return float(np.mean(np.abs(y_true - y_pred)))
''',
    "R2": '''
class R2(BaseScoreType):
    is_lower_the_better = False
    minimum = float('-inf')
    maximum = 1.0

    def __init__(self, name='r2', precision=3):
        self.name = name
        self.precision = precision

    def __call__(self, y_true, y_pred):
        return float(r2_score(y_true, y_pred))
''',
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

    def as_dict(self) -> dict:
        """The spec in its normal form (what a Problem stores)."""
        out = asdict(self)
        out["ignore"] = list(self.ignore)
        out["score_types"] = [asdict(s) for s in self.score_types]
        return out


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
    )


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


# --- The RAMP kit ------------------------------------------------------------

@dataclass(frozen=True)
class KitProvenance:
    """Where a kit's data and folds came from, written into problem.py and the README."""

    dataset: str          # e.g. "iris@1"
    manifest_hash: str
    split_hash: str


def write_kit(out_dir: Path, *, spec: ProblemSpec, table: pd.DataFrame,
              train_rows: np.ndarray, test_rows: np.ndarray,
              folds: Sequence[tuple[np.ndarray, np.ndarray]], labels: list | None,
              provenance: KitProvenance) -> None:
    """Write the RAMP kit of ``spec`` to ``out_dir`` (which must not exist).

    ``train_rows`` and ``test_rows`` are row positions in ``table`` (in the
    order the kit keeps them); each fold is a pair of index arrays into the
    training rows, as ``get_cv`` returns them.
    """
    out_dir = Path(out_dir)
    n_train = len(train_rows)
    for k, (tr, va) in enumerate(folds):
        for part, idx in (("train", tr), ("valid", va)):
            idx = np.asarray(idx)
            if len(idx) and (idx.min() < 0 or idx.max() >= n_train):
                raise ValueError(f"fold {k}'s {part} indices leave the {n_train} training rows")
    columns = [*feature_columns(spec, list(table.columns)), spec.target]
    data = table[columns]
    (out_dir / "data").mkdir(parents=True)
    data.iloc[np.asarray(train_rows)].to_csv(out_dir / "data" / "train.csv", index=False)
    data.iloc[np.asarray(test_rows)].to_csv(out_dir / "data" / "test.csv", index=False)
    np.savez(out_dir / "data" / "train_folds.npz", **{
        f"{part}_{k}": np.asarray(idx, dtype=np.int64)
        for k, pair in enumerate(folds) for part, idx in zip(("train", "valid"), pair,
                                                             strict=True)
    })
    features = table[feature_columns(spec, list(table.columns))]
    (out_dir / "problem.py").write_text(problem_py(
        spec, labels=labels, n_train=n_train, provenance=provenance,
        text_columns=[c for c in columns
                      if pd.api.types.is_string_dtype(table[c])
                      or pd.api.types.is_object_dtype(table[c])],
        date_columns=list(table[columns].select_dtypes(include=["datetime", "datetimetz"])),
    ))
    starting_kit = out_dir / "submissions" / "starting_kit"
    starting_kit.mkdir(parents=True)
    for file_name, text in starting_kit_files(spec, features).items():
        (starting_kit / file_name).write_text(text)
    (out_dir / "README.md").write_text(kit_readme(
        spec, n_train=n_train, n_test=len(test_rows), n_folds=len(folds), labels=labels,
        provenance=provenance))


PROBLEM_PY = '''\
"""{title}

Generated by Datarun from a declarative spec: dataset {dataset} (manifest
{manifest_hash}), split {split_hash}. The cross-validation folds are the
ones materialised with that split, stored in data/train_folds.npz: get_cv
reads them and never recomputes them.
"""
import os

import numpy as np
import pandas as pd
import rampwf as rw
{imports}
problem_title = {title!r}
# The declarative spec this kit was generated from.
spec = {spec}

_target_column_name = {target!r}
# Read as text whatever they look like ("007" stays "007"), and as dates.
_text_columns = {text_columns!r}
_date_columns = {date_columns!r}
_n_train = {n_train}
{labels}
# A type (class) which will be used to create wrapper objects for y_pred
Predictions = {predictions}
# An object implementing the workflow (submission files: {elements})
workflow = {workflow}
{custom}
score_types = [
{score_types}
]

# Row indices into train.csv; they ship with it in the participants' kit.
_FOLDS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                           'train_folds.npz')


def get_cv(X, y):
    if len(y) != _n_train:
        raise ValueError('data/train_folds.npz holds folds of %d training rows, got %d'
                         % (_n_train, len(y)))
    with np.load(_FOLDS_FILE, allow_pickle=False) as folds:
        n_folds = len(folds.files) // 2
        return [(folds['train_%d' % k], folds['valid_%d' % k]) for k in range(n_folds)]


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name),
                       dtype={{c: str for c in _text_columns}}, parse_dates=_date_columns)
    y_array = data[_target_column_name].to_numpy({y_dtype})
    X_df = data.drop(columns=[_target_column_name])
    return X_df, y_array


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
'''


def problem_py(spec: ProblemSpec, *, labels: list | None, n_train: int,
               provenance: KitProvenance, text_columns: list[str],
               date_columns: list[str]) -> str:
    """The text of the kit's ``problem.py``."""
    kinds = [SCORE_TYPES[s.type] for s in spec.score_types]
    custom = sorted({k.constructor for k in kinds if k.constructor in CUSTOM_SCORE_CLASSES})
    imports = []
    if "MacroF1" in custom:
        imports += ["from rampwf.score_types.classifier_base import ClassifierBaseScoreType",
                    "from sklearn.metrics import f1_score"]
    if {"MeanAbsoluteError", "R2"} & set(custom):
        imports.append("from rampwf.score_types.base import BaseScoreType")
    if "R2" in custom:
        imports.append("from sklearn.metrics import r2_score")
    if labels is None:
        predictions, labels_block = "rw.prediction_types.make_regression()", ""
    else:
        predictions = ("rw.prediction_types.make_multiclass(\n"
                       "    label_names=_prediction_label_names)")
        labels_block = ("# Sorted, so that the columns of predict_proba (ordered like the sorted\n"
                        "# classes_ of a scikit-learn classifier) match the label names.\n"
                        f"_prediction_label_names = {labels!r}\n")
    workflow = WORKFLOWS[spec.workflow]
    return PROBLEM_PY.format(
        title=spec.title,
        dataset=provenance.dataset,
        manifest_hash=provenance.manifest_hash[:16],
        split_hash=provenance.split_hash[:16],
        imports="\n".join(sorted(imports)) + ("\n" if imports else ""),
        spec=pprint.pformat(spec.as_dict(), width=80),
        target=spec.target,
        text_columns=text_columns,
        date_columns=date_columns,
        n_train=n_train,
        labels=labels_block,
        predictions=predictions,
        elements=", ".join(f"{e}.py" for e in workflow.elements),
        workflow=workflow.constructor,
        custom="".join("\n" + CUSTOM_SCORE_CLASSES[c] for c in custom),
        score_types="\n".join(
            f"    {SCORE_TYPES[s.type].constructor}(name={s.name!r}, precision={s.precision}),"
            for s in spec.score_types),
        y_dtype="dtype=float" if labels is None else "",
    )




def _models(task: str) -> tuple[str, str]:
    """The starting kit's model: its import and its constructor."""
    if task == "regression":
        return "from sklearn.linear_model import Ridge", "Ridge(alpha=1.0)"
    return ("from sklearn.linear_model import LogisticRegression",
            "LogisticRegression(max_iter=1000)")


PREPROCESS = '''\
    # Numbers: gaps filled with the median, then standardised; text and
    # booleans: gaps filled with the most frequent value, then one-hot encoded.
    return make_column_transformer(
        (make_pipeline(SimpleImputer(strategy='median'), StandardScaler()),
         make_column_selector(dtype_include='number')),
        (make_pipeline(SimpleImputer(strategy='most_frequent'),
                       OneHotEncoder(handle_unknown='ignore', sparse_output=False)),
         make_column_selector(dtype_include=['object', 'string', 'bool', 'category'])),
    )
'''
PREPROCESS_IMPORTS = '''\
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
'''


def starting_kit_files(spec: ProblemSpec, features: pd.DataFrame) -> dict[str, str]:
    """A simple scikit-learn submission for the workflow: file name -> text."""
    model_import, model = _models(spec.task)
    if spec.workflow == "estimator":
        numbers_only = (features.select_dtypes(include="number").shape[1] == features.shape[1]
                        and not features.isna().any().any())
        if numbers_only:
            # The same as the example kits' starting kits.
            return {"estimator.py": (
                f"{model_import}\nfrom sklearn.pipeline import make_pipeline\n"
                "from sklearn.preprocessing import StandardScaler\n\n\n"
                "def get_estimator():\n"
                f"    return make_pipeline(StandardScaler(), {model})\n")}
        return {"estimator.py": (
            f"{PREPROCESS_IMPORTS}{model_import}\n\n\n"
            f"def _features():\n{PREPROCESS}\n\n"
            "def get_estimator():\n"
            f"    return make_pipeline(_features(), {model})\n")}
    feature_extractor = (
        f"{PREPROCESS_IMPORTS}\n\n"
        f"def _features():\n{PREPROCESS}\n\n"
        "class FeatureExtractor:\n"
        "    def fit(self, X_df, y):\n"
        "        self.features = _features().fit(X_df)\n"
        "        return self\n\n"
        "    def transform(self, X_df):\n"
        "        return self.features.transform(X_df)\n")
    element, method = (("regressor", "predict") if spec.task == "regression"
                       else ("classifier", "predict_proba"))
    model_file = (
        f"from sklearn.base import BaseEstimator\n{model_import}\n\n\n"
        f"class {element.capitalize()}(BaseEstimator):\n"
        "    def __init__(self):\n"
        f"        self.model = {model}\n\n"
        "    def fit(self, X, y):\n"
        "        self.model.fit(X, y)\n"
        "        return self\n\n"
        f"    def {method}(self, X):\n"
        f"        return self.model.{method}(X)\n")
    return {"feature_extractor.py": feature_extractor, f"{element}.py": model_file}


def kit_readme(spec: ProblemSpec, *, n_train: int, n_test: int, n_folds: int,
               labels: list | None, provenance: KitProvenance) -> str:
    elements = ", ".join(f"`{e}.py`" for e in WORKFLOWS[spec.workflow].elements)
    target = (f"regression of `{spec.target}`" if labels is None else
              f"{spec.task} classification of `{spec.target}` "
              f"({', '.join(f'`{v}`' for v in labels[:20])}{', ...' if len(labels) > 20 else ''})")
    scores = ", ".join(f"{s.name} ({SCORE_TYPES[s.type].what}, {s.precision} digits)"
                       for s in spec.score_types)
    description = f"\n{spec.description.strip()}\n" if spec.description.strip() else ""
    return f"""# {spec.title}
{description}
A RAMP kit generated by Datarun from the declarative problem `{spec.name}`:
{target} on the dataset version `{provenance.dataset}` (manifest
`{provenance.manifest_hash}`), split `{provenance.split_hash}`.

- `data/train.csv` ({n_train} rows) and `data/test.csv` ({n_test} rows): the
  features and the target{', without the ignored columns ' if spec.ignore else ''}\
{', '.join(f'`{c}`' for c in spec.ignore)}.
- `data/train_folds.npz`: the {n_folds} cross-validation folds (`train_<k>`,
  `valid_<k>` row indices into `train.csv`), materialised once with the split;
  `get_cv` in `problem.py` reads them.
- Scores, the first official: {scores}.
- Submissions provide {elements}; `submissions/starting_kit/` is a simple
  scikit-learn one.

Run `ramp-test --submission starting_kit` in this folder.

This export is the organisers' copy: `data/test.csv` holds the test labels.
Give participants a kit without them.
"""
