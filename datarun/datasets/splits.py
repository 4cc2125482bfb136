"""Leakage-free splits: a declared test cut, CV folds and named splits,
assigned once to every row of a table.

No Django here: numpy, pandas and scikit-learn only, unit-tested on frames.

The spec (the ``split:`` section of a dataset or problem YAML)::

    seed: 42                      # default for every section below (default 0)
    named:                        # set aside first, in this order; never in train/test/folds
      - {name: production, column: date, from: 2024-06-01}     # from inclusive, until exclusive
      - {name: staging, column: batch, values: [b7, b8]}
      - {name: canary, fraction: 0.05, group: patient_id}      # group optional
    test:                         # cut from the rows left; omitted: no test rows
      method: shuffle | stratified | group | time | given
      fraction: 0.2               # of rows (of groups for ``group``); default 0.2
      column: species             # stratify / group / time column, or the ``given`` label column
      values: [test]              # given only: labels that mean test (default [test])
    cv:                           # folds over the training rows; omitted: no folds
      method: kfold | stratified_kfold | group_kfold | stratified_group_kfold
            | shuffle | stratified_shuffle | group_shuffle | time_series
      n_splits: 5
      fraction: 0.2               # shuffle methods: validation fraction
      column: species             # stratify / group / time column
      stratify: species           # stratified_group_kfold: the class column (column = groups)
      shuffle: true               # k-fold methods (default true; false ignores the seed)

Each section may set its own ``seed``. Methods map to scikit-learn's
splitters, given the seed as ``random_state``: the test cut is the first split
of ``ShuffleSplit`` / ``StratifiedShuffleSplit`` / ``GroupShuffleSplit`` with
``n_splits=1`` (so its test rows are those of ``train_test_split``), and the
folds are ``splitter.split(X_train, y_train, groups)`` over the training rows
in table order, exactly what a RAMP kit's ``get_cv`` returns for the same
``train.csv``. ``time`` and ``time_series`` cut between distinct time values
(rows with equal times stay on one side): the test cut keeps the latest
``fraction`` of rows, ties at the cut going to test; ``TimeSeriesSplit`` runs
over the sorted distinct times. ``given`` keeps a labelling that already
exists (e.g. the file a row came from), so an existing kit's train.csv and
test.csv are reproduced exactly. Named ``values`` / ``from`` / ``until`` rules
match nothing on null cells; an empty named split is allowed (its data may
not have arrived yet). A group-aware test cut needs a group-aware CV, and a
group-aware CV a group or time test cut: otherwise groups would cross.

The per-row table (:func:`assign`) has the columns ``row`` (0..n-1, table
order), ``split`` ("train", "test" or a named split) and, for each fold
``k``, ``train_<k>`` and ``valid_<k>``: the row's position in that fold's
train (valid) index array, -1 when it is not in it. Indices are relative to
the training rows in table order; positions keep scikit-learn's index order
(ShuffleSplit's are shuffled, and a model's fit can depend on row order).
Folds may overlap: a row can be in the validation set of several folds.
"""
import datetime
import decimal
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn import model_selection as ms


class SplitSpecError(ValueError):
    """A split spec that cannot be applied; the message names the field to fix."""


TEST_METHODS = {
    "shuffle": {"fraction", "seed"},
    "stratified": {"fraction", "column", "seed"},
    "group": {"fraction", "column", "seed"},
    "time": {"fraction", "column"},
    "given": {"column", "values"},
}
CV_METHODS = {
    "kfold": {"n_splits", "shuffle", "seed"},
    "stratified_kfold": {"n_splits", "column", "shuffle", "seed"},
    "group_kfold": {"n_splits", "column", "shuffle", "seed"},
    "stratified_group_kfold": {"n_splits", "column", "stratify", "shuffle", "seed"},
    "shuffle": {"n_splits", "fraction", "seed"},
    "stratified_shuffle": {"n_splits", "fraction", "column", "seed"},
    "group_shuffle": {"n_splits", "fraction", "column", "seed"},
    "time_series": {"n_splits", "column"},
}
GROUP_CV = {"group_kfold", "stratified_group_kfold", "group_shuffle"}
_COLUMN_ROLE = {"stratified": "class", "group": "group", "time": "time", "given": "label",
                "stratified_kfold": "class", "group_kfold": "group", "stratified_shuffle": "class",
                "group_shuffle": "group", "stratified_group_kfold": "group",
                "time_series": "time"}
DEFAULT_FRACTION = 0.2
RESERVED = {"train", "test"}


@dataclass(frozen=True)
class TestCut:
    __test__ = False  # not a pytest test class

    method: str
    fraction: float | None = None
    column: str | None = None
    values: tuple = ()
    seed: int | None = None


@dataclass(frozen=True)
class CrossValidation:
    method: str
    n_splits: int
    fraction: float | None = None
    column: str | None = None
    stratify: str | None = None
    shuffle: bool | None = None
    seed: int | None = None


@dataclass(frozen=True)
class NamedSplit:
    name: str
    column: str | None = None
    values: tuple = ()
    start: Any = None  # "from" in the spec
    until: Any = None
    fraction: float | None = None
    group: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class SplitSpec:
    test: TestCut | None = None
    cv: CrossValidation | None = None
    named: tuple[NamedSplit, ...] = ()

    def to_dict(self) -> dict:
        """The normalised spec: defaults filled in, unused fields left out."""
        def clean(section):
            d = {("from" if k == "start" else k): (list(v) if isinstance(v, tuple) else v)
                 for k, v in asdict(section).items()}
            return {k: v for k, v in d.items() if v is not None and v != []}
        out = {}
        if self.named:
            out["named"] = [clean(n) for n in self.named]
        if self.test:
            out["test"] = clean(self.test)
        if self.cv:
            out["cv"] = clean(self.cv)
        return out

    def columns(self) -> list[str]:
        """Every column the spec reads, in first-use order."""
        cols = [n.column or n.group for n in self.named]
        for section in (self.test, self.cv):
            if section:
                cols += [section.column, getattr(section, "stratify", None)]
        return list(dict.fromkeys(c for c in cols if c))


def spec_hash(spec: SplitSpec) -> str:
    """sha256 of the normalised spec as canonical JSON."""
    text = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --- parsing ---------------------------------------------------------------

def parse_split_spec(d: dict) -> SplitSpec:
    """Check a spec dict (see the module docstring) and fill in its defaults."""
    d = _mapping(d, "split", {"seed", "test", "cv", "named"})
    seed = _seed(d.get("seed", 0), "split.seed")
    named = d.get("named") or []
    if not isinstance(named, list):
        raise SplitSpecError("split.named must be a list of {name, ...} entries")
    named = tuple(_named(n, f"split.named[{i}]", seed) for i, n in enumerate(named))
    names = [n.name for n in named]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SplitSpecError(f"split.named has {', '.join(map(repr, twice))} more than once")
    test = _test(d["test"], seed) if d.get("test") is not None else None
    cv = _cv(d["cv"], seed) if d.get("cv") is not None else None
    if test and cv:
        if test.method == "group" and cv.method not in GROUP_CV:
            raise SplitSpecError(
                f"split.test keeps the groups of {test.column!r} out of the training rows, "
                f"but split.cv.method {cv.method!r} would put one group in both training and "
                "validation: use group_kfold, stratified_group_kfold or group_shuffle")
        if cv.method in GROUP_CV and test.method in ("shuffle", "stratified"):
            raise SplitSpecError(
                f"split.cv keeps the groups of {cv.column!r} together, but split.test.method "
                f"{test.method!r} would put one group in both train and test: "
                "use test.method 'group'")
    return SplitSpec(test=test, cv=cv, named=named)


def _test(d, seed) -> TestCut:
    method = _method(d, "split.test", TEST_METHODS)
    d = _mapping(d, "split.test", TEST_METHODS[method] | {"method"}, method)
    kw = {}
    if "fraction" in TEST_METHODS[method]:
        kw["fraction"] = _fraction(d.get("fraction", DEFAULT_FRACTION), "split.test.fraction")
    if "column" in TEST_METHODS[method]:
        kw["column"] = _column(d.get("column"), "split.test.column")
    if method == "given":
        kw["values"] = _values(d.get("values", ["test"]), "split.test.values")
    if "seed" in TEST_METHODS[method]:
        kw["seed"] = _seed(d.get("seed", seed), "split.test.seed")
    return TestCut(method=method, **kw)


def _cv(d, seed) -> CrossValidation:
    method = _method(d, "split.cv", CV_METHODS)
    allowed = CV_METHODS[method]
    d = _mapping(d, "split.cv", allowed | {"method"}, method)
    n_splits = d.get("n_splits", 5)
    least = 1 if "fraction" in allowed else 2
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < least:
        raise SplitSpecError(f"split.cv.n_splits must be a whole number of at least {least} "
                             f"for method {method!r}, not {n_splits!r}")
    kw = {}
    if "fraction" in allowed:
        kw["fraction"] = _fraction(d.get("fraction", DEFAULT_FRACTION), "split.cv.fraction")
    if "column" in allowed:
        kw["column"] = _column(d.get("column"), "split.cv.column")
    if "stratify" in allowed:
        kw["stratify"] = _column(d.get("stratify"), "split.cv.stratify")
    if "shuffle" in allowed:
        kw["shuffle"] = d.get("shuffle", True)
        if not isinstance(kw["shuffle"], bool):
            raise SplitSpecError(f"split.cv.shuffle must be true or false, not {kw['shuffle']!r}")
    if "seed" in allowed and kw.get("shuffle", True):
        kw["seed"] = _seed(d.get("seed", seed), "split.cv.seed")
    return CrossValidation(method=method, n_splits=n_splits, **kw)


def _named(d, where, seed) -> NamedSplit:
    d = _mapping(d, where, {"name", "column", "values", "from", "until", "fraction", "group",
                            "seed"})
    name = d.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum() \
            or not name.isascii() or name.lower() in RESERVED:
        raise SplitSpecError(f"{where}.name must be a name of letters, digits, '_' or '-' "
                             f"other than train and test, not {name!r}")
    if "fraction" in d:
        _only(d, where, {"name", "fraction", "group", "seed"}, "fraction")
        group = _column(d["group"], f"{where}.group") if "group" in d else None
        return NamedSplit(name=name, fraction=_fraction(d["fraction"], f"{where}.fraction"),
                          group=group, seed=_seed(d.get("seed", seed), f"{where}.seed"))
    column = _column(d.get("column"), f"{where}.column")
    if "values" in d:
        _only(d, where, {"name", "column", "values"}, "values")
        values = _values(d["values"], f"{where}.values")
        return NamedSplit(name=name, column=column, values=values)
    if "from" not in d and "until" not in d:
        raise SplitSpecError(f"{where} needs values, from/until or fraction to say which rows "
                             f"go to {name!r}")
    _only(d, where, {"name", "column", "from", "until"}, "from/until")
    bounds = [_scalar(d.get(k), f"{where}.{k}") if d.get(k) is not None else None
              for k in ("from", "until")]
    return NamedSplit(name=name, column=column, start=bounds[0], until=bounds[1])


def _mapping(d, where, allowed, method=None) -> dict:
    if not isinstance(d, dict):
        raise SplitSpecError(f"{where} must be a mapping, not {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        used = f" by method {method!r}" if method else ""
        raise SplitSpecError(f"{where} has fields not used{used}: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(allowed))})")
    return d


def _only(d, where, allowed, form):
    extra = sorted(set(d) - allowed)
    if extra:
        raise SplitSpecError(f"{where} selects rows by {form}; remove {', '.join(extra)}")


def _method(d, where, methods) -> str:
    if not isinstance(d, dict):
        raise SplitSpecError(f"{where} must be a mapping, not {type(d).__name__}")
    method = d.get("method")
    if method not in methods:
        raise SplitSpecError(f"{where}.method {method!r} is not one of: "
                             f"{', '.join(sorted(methods))}")
    return method


def _fraction(x, where) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x < 1:
        raise SplitSpecError(f"{where} must be a number strictly between 0 and 1, not {x!r}")
    return float(x)


def _seed(x, where) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < 2**32:
        raise SplitSpecError(f"{where} must be a whole number from 0 to 2**32 - 1, not {x!r}")
    return x


def _column(x, where) -> str:
    if not isinstance(x, str) or not x:
        raise SplitSpecError(f"{where} must name a column, not {x!r}")
    return x


def _scalar(x, where):
    # YAML reads an unquoted 2024-06-01 as a date: keep its ISO text, JSON-safe.
    if isinstance(x, datetime.date):
        return x.isoformat()
    if isinstance(x, float) and not math.isfinite(x) \
            or not isinstance(x, str | int | float | bool):
        raise SplitSpecError(f"{where} must be a string, number, boolean or date, not {x!r}")
    return x


def _values(xs, where) -> tuple:
    if not isinstance(xs, list) or not xs:
        raise SplitSpecError(f"{where} must be a non-empty list of values")
    return tuple(_scalar(x, where) for x in xs)


# --- assigning -------------------------------------------------------------

def assign(df: pd.DataFrame, spec: SplitSpec) -> pd.DataFrame:
    """The per-row table of ``df`` under ``spec`` (layout in the module docstring)."""
    check_columns(spec, list(df.columns))
    n = len(df)
    split = np.full(n, "train", dtype=object)
    free = np.ones(n, dtype=bool)
    for i, named in enumerate(spec.named):
        chosen = _named_rows(df, named, free, f"split.named[{i}]")
        split[chosen] = named.name
        free[chosen] = False
    pool = np.flatnonzero(free)
    if spec.test:
        test = _test_rows(df.iloc[pool], spec.test)
        split[pool[test]] = "test"
    train = np.flatnonzero(split == "train")
    if len(train) == 0:
        raise SplitSpecError("the split spec leaves no training rows")
    table = pd.DataFrame({"row": np.arange(n, dtype=np.int64), "split": split})
    folds = _folds(df.iloc[train], spec.cv) if spec.cv else []
    for k, (tr, va) in enumerate(folds):
        for kind, idx in (("train", tr), ("valid", va)):
            position = np.full(n, -1, dtype=np.int64)
            position[train[idx]] = np.arange(len(idx))
            table[f"{kind}_{k}"] = position
    return table


def check_columns(spec: SplitSpec, columns: list[str]) -> None:
    """Refuse a spec that names a column not in ``columns``."""
    missing = [c for c in spec.columns() if c not in columns]
    if missing:
        shown = ", ".join(map(str, columns[:30])) + (", ..." if len(columns) > 30 else "")
        raise SplitSpecError(f"the split spec names {', '.join(map(repr, missing))}, not a "
                             f"column of the table (columns: {shown})")


def _named_rows(df, named: NamedSplit, free, where) -> np.ndarray:
    if named.fraction is not None:
        pool = np.flatnonzero(free)
        groups = _no_nulls(df, named.group, pool, f"{where}.group", "group") \
            if named.group else None
        splitter = (ms.GroupShuffleSplit if groups is not None else ms.ShuffleSplit)(
            n_splits=1, test_size=named.fraction, random_state=named.seed)
        _, chosen = _first(splitter.split(np.zeros((len(pool), 1)), groups=groups), where)
        return pool[np.sort(chosen)]
    col = df[named.column]
    if named.values:
        mask = col.isin([_like(col, v, where) for v in named.values]).to_numpy()
    else:
        mask = col.notna()
        try:
            if named.start is not None:
                mask &= (col >= _like(col, named.start, where)).fillna(False)
            if named.until is not None:
                mask &= (col < _like(col, named.until, where)).fillna(False)
        except TypeError as exc:
            raise SplitSpecError(f"{where}: cannot compare column {named.column!r} "
                                 f"({col.dtype}) with from/until: {exc}") from exc
        mask = mask.to_numpy(dtype=bool)
    return np.flatnonzero(mask & free)


def _like(col: pd.Series, value, where):
    """``value`` as the type of ``col``, so that YAML 2023 matches a "2023" cell."""
    if pd.api.types.is_datetime64_any_dtype(col):
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError) as exc:
            raise SplitSpecError(f"{where}: {value!r} is not a date or time") from exc
        tz = getattr(col.dtype, "tz", None)
        return stamp.tz_localize(tz) if tz is not None and stamp.tzinfo is None else stamp
    if pd.api.types.is_bool_dtype(col):
        if not isinstance(value, bool):
            raise SplitSpecError(f"{where}: column {col.name!r} holds true/false, not {value!r}")
        return value
    # Object columns from Parquet may hold dates or decimals (DuckDB DATE, DECIMAL).
    cells = col.dropna()
    cell = cells.iloc[0] if col.dtype == object and len(cells) else None
    if isinstance(cell, datetime.date) and not isinstance(cell, datetime.datetime):
        try:
            return pd.Timestamp(value).date()
        except (TypeError, ValueError) as exc:
            raise SplitSpecError(f"{where}: {value!r} is not a date") from exc
    if pd.api.types.is_numeric_dtype(col) or isinstance(cell, decimal.Decimal):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SplitSpecError(f"{where}: column {col.name!r} holds numbers, not {value!r}")
        return decimal.Decimal(str(value)) if cell is not None else value
    return value if isinstance(value, str) else str(value)


def _no_nulls(df, column, rows, where, role) -> np.ndarray:
    values = df[column].iloc[rows]
    nulls = int(values.isna().sum())
    if nulls:
        raise SplitSpecError(f"the {role} column {column!r} has {nulls} null value"
                             f"{'s' if nulls > 1 else ''}; fill or drop them first ({where})")
    return values.to_numpy()


def _first(splits: Iterator, where):
    try:
        return next(iter(splits))
    except ValueError as exc:
        raise SplitSpecError(f"{where}: {exc}") from exc


def _test_rows(df, test: TestCut) -> np.ndarray:
    """Positions (in ``df``) of the test rows, ascending."""
    rows = np.arange(len(df))
    values = (_no_nulls(df, test.column, rows, "split.test.column", _COLUMN_ROLE[test.method])
              if test.column else None)
    X = np.zeros((len(df), 1))
    if test.method == "given":
        labels = pd.Series(values)
        chosen = np.flatnonzero(labels.isin([_like(df[test.column], v, "split.test.values")
                                             for v in test.values]))
        if len(chosen) == 0:
            seen = ", ".join(map(str, labels.drop_duplicates().head(10)))
            raise SplitSpecError(f"split.test.values {list(test.values)} match no row of column "
                                 f"{test.column!r} (its values include: {seen})")
        return chosen
    if test.method == "time":
        ranks = _time_ranks(values, test.column)
        n_test = math.ceil(test.fraction * len(df))
        if n_test == 0 or n_test >= len(df):
            raise SplitSpecError(f"split.test.fraction {test.fraction} of {len(df)} rows "
                                 "leaves no training or no test rows")
        cut = np.sort(ranks)[len(df) - n_test]
        if cut == 0:
            raise SplitSpecError(f"the time column {test.column!r} has too few distinct values "
                                 "to keep any training rows before the test rows")
        return np.flatnonzero(ranks >= cut)
    if test.method == "shuffle":
        splits = ms.ShuffleSplit(1, test_size=test.fraction, random_state=test.seed).split(X)
    elif test.method == "stratified":
        splits = ms.StratifiedShuffleSplit(
            1, test_size=test.fraction, random_state=test.seed).split(X, values)
    else:
        splits = ms.GroupShuffleSplit(
            1, test_size=test.fraction, random_state=test.seed).split(X, groups=values)
    _, chosen = _first(splits, f"split.test ({test.method})")
    return np.sort(chosen)


def _time_ranks(values, column) -> np.ndarray:
    """Each row's rank among the distinct times."""
    # pandas would order text and numbers (numbers first) without a word.
    mixed = values.dtype == object and len({isinstance(v, str) for v in values}) > 1
    try:
        if mixed:
            raise TypeError("text and other values")
        codes, _ = pd.factorize(pd.Series(values), sort=True)
    except TypeError as exc:
        raise SplitSpecError(f"the time column {column!r} mixes values that cannot be "
                             f"ordered: {exc}") from exc
    return codes


def _folds(df, cv: CrossValidation) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, valid) positions in ``df``, as scikit-learn returns them."""
    rows = np.arange(len(df))
    where = f"split.cv ({cv.method})"
    column = (_no_nulls(df, cv.column, rows, "split.cv.column", _COLUMN_ROLE[cv.method])
              if cv.column else None)
    stratify = (_no_nulls(df, cv.stratify, rows, "split.cv.stratify", "class")
                if cv.stratify else None)
    X = np.zeros((len(df), 1))
    m, k = cv.method, cv.n_splits
    if m == "time_series":
        ranks = _time_ranks(column, cv.column)
        n_times = ranks.max() + 1
        if n_times <= k:
            raise SplitSpecError(f"the time column {cv.column!r} has {n_times} distinct values "
                                 f"among the training rows; time_series needs more than "
                                 f"n_splits={k}")
        return [(np.flatnonzero(np.isin(ranks, tr)), np.flatnonzero(np.isin(ranks, va)))
                for tr, va in ms.TimeSeriesSplit(k).split(np.arange(n_times))]
    seed = cv.seed if cv.shuffle is not False else None
    y, groups = None, None
    if m == "kfold":
        splitter = ms.KFold(k, shuffle=cv.shuffle, random_state=seed)
    elif m == "stratified_kfold":
        splitter, y = ms.StratifiedKFold(k, shuffle=cv.shuffle, random_state=seed), column
    elif m == "group_kfold":
        splitter, groups = ms.GroupKFold(k, shuffle=cv.shuffle, random_state=seed), column
    elif m == "stratified_group_kfold":
        splitter = ms.StratifiedGroupKFold(k, shuffle=cv.shuffle, random_state=seed)
        y, groups = stratify, column
    elif m == "shuffle":
        splitter = ms.ShuffleSplit(k, test_size=cv.fraction, random_state=seed)
    elif m == "stratified_shuffle":
        splitter, y = ms.StratifiedShuffleSplit(k, test_size=cv.fraction,
                                                random_state=seed), column
    else:
        splitter, groups = ms.GroupShuffleSplit(k, test_size=cv.fraction,
                                                random_state=seed), column
    try:
        return [(np.asarray(tr), np.asarray(va)) for tr, va in splitter.split(X, y, groups)]
    except ValueError as exc:
        raise SplitSpecError(f"{where}: {exc}") from exc


# --- reading the table -----------------------------------------------------

def n_folds(table: pd.DataFrame) -> int:
    return sum(1 for c in table.columns if str(c).startswith("valid_"))


def split_rows(table: pd.DataFrame, name: str) -> np.ndarray:
    """Row numbers of the rows in split ``name``, ascending."""
    return np.sort(table["row"].to_numpy()[(table["split"] == name).to_numpy()])


def train_test_rows(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return split_rows(table, "train"), split_rows(table, "test")


def folds_from_table(table: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train_idx, valid_idx), ...]``, indices into the training rows in table
    order, in the order the splitter gave them."""
    train = table.sort_values("row").loc[lambda t: t["split"] == "train"]
    folds = []
    for k in range(n_folds(table)):
        pair = []
        for kind in ("train", "valid"):
            position = train[f"{kind}_{k}"].to_numpy()
            members = np.flatnonzero(position >= 0)
            pair.append(members[np.argsort(position[members], kind="stable")].astype(np.int64))
        folds.append(tuple(pair))
    return folds


def table_hash(table: pd.DataFrame) -> str:
    """sha256 of the table's column names and values, independent of pandas,
    pyarrow and Parquet: integers as little-endian int64, booleans as bytes,
    strings as their sorted distinct values (JSON) plus int64 codes."""
    h = hashlib.sha256(b"datarun split table v1\n")
    h.update(len(table).to_bytes(8, "little"))
    for name in table.columns:
        col = table[name]
        if col.isna().any():
            raise ValueError(f"column {name!r} of a split table has nulls")
        if pd.api.types.is_bool_dtype(col):
            tag, data = b"b", col.to_numpy(dtype=np.uint8).tobytes()
        elif pd.api.types.is_integer_dtype(col):
            tag, data = b"i", col.to_numpy(dtype="<i8").tobytes()
        elif pd.api.types.is_string_dtype(col) or pd.api.types.is_object_dtype(col):
            codes, uniques = pd.factorize(col.astype(str), sort=True)
            tag = b"s"
            data = (json.dumps([str(u) for u in uniques], ensure_ascii=False).encode() + b"\n"
                    + codes.astype("<i8").tobytes())
        else:
            raise ValueError(f"column {name!r} of a split table has type {col.dtype}")
        for part in (str(name).encode(), tag, data):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return h.hexdigest()


def summarise(table: pd.DataFrame, df: pd.DataFrame, spec: SplitSpec) -> dict:
    """Rows per split, train/valid sizes per fold, groups per split and the
    scikit-learn that made the table."""
    names = ["train", "test", *(n.name for n in spec.named)]
    split = table["split"].to_numpy()
    summary = {
        "rows": {name: int((split == name).sum()) for name in names},
        "folds": [{"train": int((table[f"train_{k}"] >= 0).sum()),
                   "valid": int((table[f"valid_{k}"] >= 0).sum())}
                  for k in range(n_folds(table))],
        "scikit_learn": sklearn.__version__,
    }
    group_columns = [s.column for s in (spec.test, spec.cv) if s and s.method in
                     GROUP_CV | {"group"}] + [n.group for n in spec.named if n.group]
    if group_columns:
        summary["groups"] = {
            col: {name: int(df[col][split == name].nunique()) for name in names}
            for col in dict.fromkeys(group_columns)}
    return summary


__all__ = [
    "CrossValidation", "NamedSplit", "SplitSpec", "SplitSpecError", "TestCut", "assign",
    "check_columns",
    "folds_from_table", "n_folds", "parse_split_spec", "spec_hash", "split_rows",
    "summarise", "table_hash", "train_test_rows",
]
