"""A dataset table's profile, computed by DuckDB over Parquet (no Django).

``profile_table`` streams over the materialised table (and, when given, a
split's per-row table) and returns plain JSON-ready data: rows per split and
per cross-validation fold, the target's distribution per split, per column its
DuckDB type, missing values, approximate distinct count, range and mean for
numbers, top values for text, and the first rows as a sample. The table is
never loaded whole in memory: each figure is one aggregate query, and DuckDB
reads only the columns a query names.

A split table has one row per table row: ``row`` (0..n-1, table order),
``split`` ("train", "test" or a named split) and the folds as columns
``train_<k>`` and ``valid_<k>`` (the row's position in fold k's index array,
-1 when not in it, as ``datarun.datasets.splits`` writes them; booleans are
read too), which can store overlapping folds, or as one ``fold`` column (the
fold where the row is in validation, -1 elsewhere: disjoint folds).

Missing means NULL, or NaN in a floating-point column (as ``pandas.isna``).
"""
import datetime
import decimal
import math
import re
from pathlib import Path

# Profiles computed before a change here are stale: callers that cache them key on it.
FORMAT = 1
WHOLE_TABLE = "all"  # the one split of a table profiled without a split table
SAMPLE_ROWS = 20
HISTOGRAM_BINS = 20
TOP_VALUES = 10
MAX_CLASSES = 30  # a categorical target's classes shown; the rest are summed as "(other)"
# A text column with more distinct values than this gets approximate top values.
EXACT_TOP_MAX_DISTINCT = 100_000
CATEGORICAL_INT_MAX_DISTINCT = 20  # an integer target with this few values is a class label
TEXT_SHOWN = 200  # characters of a sample value

_INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOAT = {"FLOAT", "DOUBLE", "REAL"}
_TEXT = {"VARCHAR", "BOOLEAN", "UUID"}
_SPLIT_ORDER = {"train": 0, "test": 1}


class ProfileError(ValueError):
    """The table and what was asked of it do not fit (unknown target, bad split table)."""


def profile_table(table: Path, *, split_table: Path | None = None, target: str | None = None,
                  target_kind: str | None = None, sample_rows: int = SAMPLE_ROWS,
                  connection=None) -> dict:
    """Profile the Parquet ``table``; with ``split_table``, per split and fold.

    Parameters
    ----------
    table : Path
        The materialised dataset version (Parquet).
    split_table : Path, optional
        The split's per-row table (see the module docstring). Without it the
        whole table is one split named "all".
    target : str, optional
        The target column: its distribution is given per split.
    target_kind : {"categorical", "numeric"}, optional
        How to show the target; guessed from its type when not given.
    connection : duckdb.DuckDBPyConnection, optional
        Defaults to ``datarun.datasets.duck.connect()``.

    Returns
    -------
    dict
        ``n_rows``, ``columns``, ``splits``, ``folds``, ``target`` (None
        without a target) and ``sample``.
    """
    owned = connection is None
    if owned:
        from datarun.datasets import duck

        connection = duck.connect()
    try:
        return _profile(connection, table, split_table, target, target_kind, sample_rows)
    finally:
        if owned:
            connection.close()


def _profile(con, table: Path, split_table: Path | None, target: str | None,
             target_kind: str | None, sample_rows: int) -> dict:
    con.execute("SET enable_progress_bar = false")  # no bars in server logs
    con.execute(f"CREATE OR REPLACE TEMP VIEW data AS SELECT * FROM read_parquet({_lit(table)})")
    types = [(name, kind) for name, kind, *_ in con.execute("DESCRIBE data").fetchall()]
    if target and target not in dict(types):
        raise ProfileError(f"the target {target!r} is not a column of the table; its "
                           f"columns are {', '.join(name for name, _ in types)}")
    n_rows = con.execute("SELECT count(*) FROM data").fetchone()[0]
    if split_table is not None:
        _split_views(con, split_table, n_rows)
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW split_rows AS SELECT file_row_number AS row, "
                    f"'{WHOLE_TABLE}' AS split FROM read_parquet({_lit(table)}, "
                    f"file_row_number=true)")
    columns = _columns(con, types, n_rows)
    result = {
        "format": FORMAT,
        "n_rows": n_rows,
        "n_columns": len(types),
        "columns": columns,
        "splits": _splits(con),
        "folds": _folds(con) if split_table is not None else [],
        "target": None,
        "sample": _sample(con, table, sample_rows, with_split=split_table is not None),
    }
    if target:
        if split_table is None:
            rows = f"SELECT {_ident(target)} AS value, '{WHOLE_TABLE}' AS split FROM data"
        else:
            rows = (f"SELECT d.{_ident(target)} AS value, s.split AS split FROM read_parquet("
                    f"{_lit(table)}, file_row_number=true) d JOIN split_rows s "
                    f"ON d.file_row_number = s.row")
        con.execute(f"CREATE OR REPLACE TEMP VIEW target_rows AS {rows}")
        column = next(c for c in columns if c["name"] == target)
        result["target"] = _target_distribution(
            con, "target_rows", name=target,
            kind=target_kind or _guess_kind(column["type"], column["distinct"]),
            is_float=_base_type(column["type"]) in _FLOAT)
    return result


def array_target_distribution(values, *, name: str = "target", split: str = "train",
                              connection=None) -> dict | None:
    """The distribution of the labels ``values`` (one split's), as
    :func:`profile_table` gives a target's: class counts, or a histogram with
    count, mean, std, min and max. None for labels that are not one column
    (multi-output, structured predictions)."""
    import numpy as np
    import pyarrow as pa

    array = np.asarray(values)
    if array.ndim != 1:
        return None
    if array.dtype.kind in "iub":
        distinct = len(np.unique(array))
        kind = "categorical" if distinct <= CATEGORICAL_INT_MAX_DISTINCT else "numeric"
        is_float = False
    elif array.dtype.kind == "f":
        finite = array[np.isfinite(array)]
        integral = bool(np.all(finite == np.round(finite)))
        kind = ("categorical" if integral
                and len(np.unique(finite)) <= CATEGORICAL_INT_MAX_DISTINCT else "numeric")
        is_float = True
    else:
        array = np.array([None if v is None else str(v) for v in array], dtype=object)
        kind, is_float = "categorical", False
    rows = pa.table({"value": pa.array(array, from_pandas=True),
                     "split": pa.array([split] * len(array), pa.string())})
    owned = connection is None
    if owned:
        from datarun.datasets import duck

        connection = duck.connect()
    try:
        connection.register("target_values", rows)
        return _target_distribution(connection, "target_values", name=name, kind=kind,
                                    is_float=is_float)
    finally:
        connection.unregister("target_values")
        if owned:
            connection.close()


def _target_distribution(con, relation: str, *, name: str, kind: str,
                        is_float: bool = False) -> dict:
    """The distribution of ``relation``'s ``value`` per ``split`` (both columns):
    class counts (categorical) or a histogram with the same bins for every
    split plus count, mean, std, min and max of the finite values (numeric)."""
    if kind not in ("categorical", "numeric"):
        raise ProfileError(f"a target is 'categorical' or 'numeric', not {kind!r}")
    missing = f"(value IS NULL{' OR isnan(value)' if is_float else ''})"
    splits = _ordered([s for (s,) in con.execute(
        f"SELECT DISTINCT split FROM {relation}").fetchall()])
    out = {"name": name, "kind": kind, "splits": splits}
    missing_by_split = dict(con.execute(
        f"SELECT split, count_if({missing}) FROM {relation} GROUP BY split").fetchall())
    out["missing"] = {s: missing_by_split.get(s, 0) for s in splits}
    if kind == "categorical":
        rows = con.execute(
            f"SELECT split, value::VARCHAR, count(*) FROM {relation} WHERE NOT {missing} "
            f"GROUP BY ALL").fetchall()
        totals: dict[str, int] = {}
        for _, value, count in rows:
            totals[value] = totals.get(value, 0) + count
        classes = sorted(totals, key=lambda v: (-totals[v], v))
        shown, other = classes[:MAX_CLASSES], set(classes[MAX_CLASSES:])
        counts = {s: dict.fromkeys(shown, 0) for s in splits}
        for split, value, count in rows:
            key = "(other)" if value in other else value
            counts[split][key] = counts[split].get(key, 0) + count
        out["classes"] = shown + (["(other)"] if other else [])
        out["counts"] = {s: [counts[s].get(c, 0) for c in out["classes"]] for s in splits}
        return out
    present = (f"(SELECT split, TRY_CAST(value AS DOUBLE) AS value FROM {relation}) "
               f"WHERE isfinite(value)")
    lo, hi = con.execute(f"SELECT min(value), max(value) FROM {present}").fetchone()
    stats = {split: {"count": count, "mean": mean, "std": std, "min": vmin, "max": vmax}
             for split, count, mean, std, vmin, vmax in con.execute(
                 f"SELECT split, count(*), avg(value), stddev_samp(value), min(value), "
                 f"max(value) FROM {present} GROUP BY split"
             ).fetchall()}
    empty = {"count": 0, "mean": None, "std": None, "min": None, "max": None}
    out["stats"] = {s: {k: v if k == "count" else _json_number(v)
                        for k, v in stats.get(s, empty).items()} for s in splits}
    if lo is None:
        out["bin_edges"], out["histogram"] = [], {s: [] for s in splits}
        return out
    width = (hi - lo) / HISTOGRAM_BINS or 1.0
    n_bins = HISTOGRAM_BINS if hi > lo else 1
    out["bin_edges"] = [lo + i * width for i in range(n_bins)] + [hi if hi > lo else lo + 1.0]
    histogram = {s: [0] * n_bins for s in splits}
    for split, index, count in con.execute(
            f"SELECT split, least(floor((value - ?) / ?)::BIGINT, ?), count(*) "
            f"FROM {present} GROUP BY ALL", [lo, width, n_bins - 1]).fetchall():
        histogram[split][index] += count
    out["histogram"] = histogram
    return out


def fold_sizes(folds) -> list[dict]:
    """Train and validation sizes of ``(train_indices, valid_indices)`` pairs."""
    return [{"fold": k, "train": len(train), "valid": len(valid)}
            for k, (train, valid) in enumerate(folds)]


# --- the parts ----------------------------------------------------------------

def _split_views(con, split_table: Path, n_rows: int) -> None:
    con.execute(f"CREATE OR REPLACE TEMP VIEW split_rows AS SELECT * FROM "
                f"read_parquet({_lit(split_table)})")
    names = {name for name, *_ in con.execute("DESCRIBE split_rows").fetchall()}
    if not {"row", "split"} <= names:
        raise ProfileError(f"the split table {split_table.name} has no 'row' and 'split' "
                           f"columns (it has {', '.join(sorted(names))})")
    rows, lo, hi, distinct = con.execute(
        "SELECT count(*), min(row), max(row), count(DISTINCT row) FROM split_rows").fetchone()
    if rows != n_rows or distinct != n_rows or (n_rows and (lo, hi) != (0, n_rows - 1)):
        raise ProfileError(f"the split table has {rows} rows numbered {lo}..{hi} but the "
                           f"dataset table has {n_rows}: they do not belong together")


def _columns(con, types: list[tuple[str, str]], n_rows: int) -> list[dict]:
    """Every column's figures from one scan (plus one query per text column)."""
    aggregates: list[str] = []
    for i, (name, kind) in enumerate(types):
        col, base = _ident(name), _base_type(kind)
        nan = f" + count_if(isnan({col}))" if base in _FLOAT else ""
        aggregates.append(f"count(*) - count({col}){nan} AS m{i}")
        if _is_scalar(kind):
            aggregates.append(f"approx_count_distinct({col}) AS d{i}")
        if _is_number(base):
            finite = f"CASE WHEN isfinite({col}) THEN {col} END" if base in _FLOAT else col
            aggregates += [f"min({finite}) AS lo{i}", f"max({finite}) AS hi{i}",
                           f"avg({finite}::DOUBLE) AS avg{i}"]
        elif _is_ordered(base):
            aggregates += [f"min({col}) AS lo{i}", f"max({col}) AS hi{i}"]
    row = {}
    if aggregates:
        cursor = con.execute(f"SELECT {', '.join(aggregates)} FROM data")
        row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    columns = []
    for i, (name, kind) in enumerate(types):
        base = _base_type(kind)
        missing = row[f"m{i}"]
        column = {
            "name": name, "type": kind, "missing": missing,
            "missing_pct": round(100 * missing / n_rows, 4) if n_rows else 0.0,
            # HyperLogLog may overshoot; never more values than present rows.
            "distinct": (None if row.get(f"d{i}") is None
                         else min(row[f"d{i}"], n_rows - missing)),
            "min": _json_value(row.get(f"lo{i}")), "max": _json_value(row.get(f"hi{i}")),
            "mean": _json_number(row.get(f"avg{i}")), "top_values": None,
            "top_values_approximate": False,
        }
        if base in _TEXT or kind.startswith("ENUM"):
            column["top_values"], column["top_values_approximate"] = _top_values(
                con, name, column["distinct"] or 0, n_rows - missing)
        columns.append(column)
    return columns


def _top_values(con, name: str, distinct: int, present: int) -> tuple[list[dict], bool]:
    col = _ident(name)
    if present > EXACT_TOP_MAX_DISTINCT and distinct >= 0.9 * present:
        return [], True  # (nearly) every value is distinct: no value is frequent
    if distinct <= EXACT_TOP_MAX_DISTINCT:
        rows = con.execute(
            f"SELECT {col}::VARCHAR, count(*) AS n FROM data WHERE {col} IS NOT NULL "
            f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT {TOP_VALUES}").fetchall()
        return [{"value": v, "count": n} for v, n in rows], False
    # Grouping millions of distinct values costs memory: take DuckDB's sketch of
    # the most frequent ones, then count those exactly.
    (candidates,) = con.execute(
        f"SELECT approx_top_k({col}::VARCHAR, {TOP_VALUES}) FROM data").fetchone()
    candidates = [c for c in candidates or [] if c is not None]
    if not candidates:
        return [], True
    placeholders = ", ".join("?" for _ in candidates)
    rows = con.execute(
        f"SELECT {col}::VARCHAR, count(*) AS n FROM data WHERE {col}::VARCHAR IN "
        f"({placeholders}) GROUP BY 1 ORDER BY n DESC, 1", candidates).fetchall()
    return [{"value": v, "count": n} for v, n in rows], True


def _splits(con) -> list[dict]:
    counts = dict(con.execute("SELECT split, count(*) FROM split_rows GROUP BY split"
                              ).fetchall())
    total = sum(counts.values())
    return [{"name": s, "rows": counts[s],
             "share": round(counts[s] / total, 6) if total else 0.0}
            for s in _ordered(counts)]


def _folds(con) -> list[dict]:
    types = dict((name, kind) for name, kind, *_ in con.execute("DESCRIBE split_rows").fetchall())

    def member(column: str) -> str:
        # Boolean flags, or positions in the fold's index array (-1: not in it).
        col = _ident(column)
        return f"coalesce({col}, false)" if types[column] == "BOOLEAN" else \
            f"coalesce({col} >= 0, false)"

    valid = sorted(int(m.group(1)) for n in types if (m := re.fullmatch(r"valid_(\d+)", n)))
    if valid:
        parts = []
        for k in valid:
            train = (f"count_if({member(f'train_{k}')})" if f"train_{k}" in types
                     else f"count_if(split = 'train' AND NOT {member(f'valid_{k}')})")
            parts.append(f"{train}, count_if({member(f'valid_{k}')})")
        row = con.execute(f"SELECT {', '.join(parts)} FROM split_rows").fetchone()
        return [{"fold": k, "train": row[2 * i], "valid": row[2 * i + 1]}
                for i, k in enumerate(valid)]
    if "fold" in types:
        in_train = con.execute("SELECT count(*) FROM split_rows WHERE split = 'train'"
                               ).fetchone()[0]
        sizes = con.execute("SELECT fold, count(*) FROM split_rows WHERE fold >= 0 "
                            "GROUP BY fold ORDER BY fold").fetchall()
        return [{"fold": int(k), "train": in_train - n, "valid": n} for k, n in sizes]
    return []


def _sample(con, table: Path, n: int, *, with_split: bool) -> dict:
    # The first rows: DuckDB keeps a Parquet file's row order (its default
    # preserve_insertion_order), so LIMIT reads only the first row group.
    names = [name for name, *_ in con.execute("DESCRIBE data").fetchall()]
    split = ", s.split" if with_split else ""
    join = " LEFT JOIN split_rows s ON d.file_row_number = s.row" if with_split else ""
    cursor = con.execute(
        f"SELECT d.* EXCLUDE (file_row_number){split} FROM (SELECT * FROM read_parquet("
        f"{_lit(table)}, file_row_number=true) LIMIT {int(n)}) d{join} "
        f"ORDER BY d.file_row_number")
    return {"columns": names + (["(split)"] if with_split else []),
            "rows": [[_shown(v) for v in row] for row in cursor.fetchall()]}


# --- helpers ------------------------------------------------------------------

def _ordered(splits) -> list[str]:
    return sorted(splits, key=lambda s: (_SPLIT_ORDER.get(s, 2), str(s)))


def _guess_kind(kind: str, distinct: int | None) -> str:
    base = _base_type(kind)
    if base in _FLOAT or base.startswith("DECIMAL"):
        return "numeric"
    if base in _INTEGER:
        return ("categorical" if (distinct or 0) <= CATEGORICAL_INT_MAX_DISTINCT
                else "numeric")
    return "categorical"


def _base_type(kind: str) -> str:
    return kind.split("(")[0].strip().upper()


def _is_number(base: str) -> bool:
    return base in _INTEGER or base in _FLOAT or base == "DECIMAL"


def _is_ordered(base: str) -> bool:
    return base in {"DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S",
                    "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMPTZ", "INTERVAL"}


def _is_scalar(kind: str) -> bool:
    return not (kind.endswith("]") or kind.startswith(("STRUCT", "MAP", "UNION")))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _json_number(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_value(value):
    """A figure as JSON can carry it: numbers stay numbers, dates become ISO text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | decimal.Decimal):
        return _json_number(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _shown(value):
    """A sample value: long text cut, bytes as hex, the rest as ``_json_value``."""
    if isinstance(value, bytes):
        value = value.hex()
    value = _json_value(value)
    if isinstance(value, str) and len(value) > TEXT_SHOWN:
        value = value[:TEXT_SHOWN] + "…"
    return value
