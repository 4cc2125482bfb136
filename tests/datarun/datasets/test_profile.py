"""The DuckDB profile of a table gives the numbers pandas computes on the same data."""
import math

import numpy as np
import pandas as pd
import pytest

from datarun.datasets import profile as profiles
from datarun.datasets import splits
from datarun.datasets.profile import ProfileError, profile_table

N = 503


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame({
        "id": np.arange(N),
        "x": rng.normal(size=N),
        "amount": rng.normal(50, 10, size=N).round(2),
        "species": rng.choice(["setosa", "versicolor", "virginica"], N, p=[0.5, 0.3, 0.2]),
        "note": rng.choice(["ok", "<script>alert(1)</script>", "a, \"quoted\" note"], N),
        "day": pd.date_range("2021-03-01", periods=N, freq="D"),
        "group": rng.integers(0, 40, N),
    })
    df.loc[::9, "x"] = np.nan
    df.loc[::13, "note"] = None
    df.loc[::17, "species"] = None
    return df


@pytest.fixture
def table(tmp_path, frame):
    path = tmp_path / "table.parquet"
    frame.to_parquet(path, index=False)
    return path


def _split_table(tmp_path, frame, spec: dict):
    assigned = splits.assign(frame, splits.parse_split_spec(spec))
    path = tmp_path / "split.parquet"
    assigned.to_parquet(path, index=False)
    return assigned, path


SPEC = {"seed": 3, "test": {"method": "shuffle", "fraction": 0.25},
        "cv": {"method": "kfold", "n_splits": 4}}


def test_rows_per_split_and_fold_equal_the_split_table(tmp_path, frame, table):
    assigned, split_path = _split_table(tmp_path, frame, SPEC)
    result = profile_table(table, split_table=split_path)
    expected = assigned["split"].value_counts()
    assert [(s["name"], s["rows"]) for s in result["splits"]] == [
        ("train", expected["train"]), ("test", expected["test"])]
    assert sum(s["share"] for s in result["splits"]) == pytest.approx(1)
    assert result["folds"] == [
        {"fold": k, "train": int((assigned[f"train_{k}"] >= 0).sum()),
         "valid": int((assigned[f"valid_{k}"] >= 0).sum())} for k in range(4)]
    assert all(f["train"] + f["valid"] == expected["train"] for f in result["folds"])


def test_overlapping_shuffle_folds_and_named_splits(tmp_path, frame, table):
    spec = {"seed": 1, "named": [{"name": "production", "column": "day", "from": "2022-06-01"}],
            "test": {"method": "shuffle", "fraction": 0.2},
            "cv": {"method": "shuffle", "n_splits": 3, "fraction": 0.3}}
    assigned, split_path = _split_table(tmp_path, frame, spec)
    result = profile_table(table, split_table=split_path)
    counts = assigned["split"].value_counts()
    assert [s["name"] for s in result["splits"]] == ["train", "test", "production"]
    assert {s["name"]: s["rows"] for s in result["splits"]} == counts.to_dict()
    for fold in result["folds"]:
        k = fold["fold"]
        assert fold["valid"] == (assigned[f"valid_{k}"] >= 0).sum()
        assert fold["train"] == (assigned[f"train_{k}"] >= 0).sum()


def test_disjoint_folds_as_one_fold_column(tmp_path, table):
    rows = np.arange(N)
    split = pd.DataFrame({"row": rows, "split": np.where(rows < 100, "test", "train"),
                          "fold": np.where(rows < 100, -1, rows % 3)})
    split.to_parquet(tmp_path / "fold.parquet", index=False)
    result = profile_table(table, split_table=tmp_path / "fold.parquet")
    valid = [int(((rows >= 100) & (rows % 3 == k)).sum()) for k in range(3)]
    assert result["folds"] == [{"fold": k, "train": 403 - valid[k], "valid": valid[k]}
                               for k in range(3)]


def test_columns_missing_distinct_range_and_top_values(frame, table):
    result = profile_table(table)
    assert result["n_rows"] == N and result["n_columns"] == frame.shape[1]
    columns = {c["name"]: c for c in result["columns"]}
    for name in frame:
        missing = int(frame[name].isna().sum())
        assert columns[name]["missing"] == missing, name
        assert columns[name]["missing_pct"] == pytest.approx(100 * missing / N, abs=1e-4)
        # HyperLogLog: approximate.
        assert columns[name]["distinct"] == pytest.approx(frame[name].nunique(), rel=0.1)
    assert columns["x"]["type"] == "DOUBLE" and columns["species"]["type"] == "VARCHAR"
    for name in ("x", "amount", "id", "group"):
        assert columns[name]["min"] == pytest.approx(frame[name].min())
        assert columns[name]["max"] == pytest.approx(frame[name].max())
        assert columns[name]["mean"] == pytest.approx(frame[name].mean())
    assert columns["day"]["min"] == "2021-03-01T00:00:00"
    assert columns["day"]["max"] == frame["day"].max().isoformat()
    assert columns["day"]["mean"] is None
    top = frame["note"].value_counts()
    assert [(v["value"], v["count"]) for v in columns["note"]["top_values"]] == list(
        top.items())
    assert columns["x"]["top_values"] is None


def test_nan_counts_as_missing_and_text_top_values_can_be_approximate(
        tmp_path, monkeypatch):
    df = pd.DataFrame({"f": [1.0, np.nan, None, np.inf, 2.0],
                       "t": ["a", "b", "a", "c", "a"]})
    path = tmp_path / "nan.parquet"
    # pyarrow keeps NaN (not null) when asked to: both are missing.
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"f": pa.array(df["f"], from_pandas=False),
                             "t": pa.array(df["t"])}), path)
    monkeypatch.setattr(profiles, "EXACT_TOP_MAX_DISTINCT", 1)
    result = profile_table(path, target="f")
    f, t = result["columns"]
    assert f["missing"] == 2 and f["min"] == 1.0 and f["max"] == 2.0  # inf is no extreme
    assert t["top_values_approximate"] and t["top_values"][0] == {"value": "a", "count": 3}
    assert result["target"]["missing"] == {"all": 2}
    # Infinities are left out of a numeric target's statistics and histogram.
    assert result["target"]["stats"]["all"]["count"] == 2
    assert result["target"]["stats"]["all"]["max"] == 2.0
    assert sum(result["target"]["histogram"]["all"]) == 2


def test_categorical_target_per_split_equals_pandas(tmp_path, frame, table):
    assigned, split_path = _split_table(tmp_path, frame, SPEC)
    result = profile_table(table, split_table=split_path, target="species")
    target = result["target"]
    assert target["kind"] == "categorical" and target["splits"] == ["train", "test"]
    joined = frame.assign(split=assigned["split"])
    for split_name in ("train", "test"):
        part = joined[joined["split"] == split_name]
        counts = part["species"].value_counts()
        assert dict(zip(target["classes"], target["counts"][split_name], strict=True)) == {
            c: counts.get(c, 0) for c in target["classes"]}
        assert target["missing"][split_name] == part["species"].isna().sum()
    assert set(target["classes"]) == {"setosa", "versicolor", "virginica"}


def test_numeric_target_histogram_and_stats_equal_pandas(tmp_path, frame, table):
    assigned, split_path = _split_table(tmp_path, frame, SPEC)
    result = profile_table(table, split_table=split_path, target="amount")
    target = result["target"]
    assert target["kind"] == "numeric"
    values = frame["amount"]
    lo, hi = values.min(), values.max()
    assert target["bin_edges"][0] == pytest.approx(lo)
    assert target["bin_edges"][-1] == pytest.approx(hi)
    width = (hi - lo) / profiles.HISTOGRAM_BINS
    for split_name in ("train", "test"):
        part = values[assigned["split"] == split_name]
        stats = target["stats"][split_name]
        assert stats["count"] == len(part)
        assert stats["mean"] == pytest.approx(part.mean())
        assert stats["std"] == pytest.approx(part.std())  # sample std, as pandas
        assert (stats["min"], stats["max"]) == (part.min(), part.max())
        bins = np.minimum(np.floor((part - lo) / width), profiles.HISTOGRAM_BINS - 1)
        expected = np.bincount(bins.astype(int), minlength=profiles.HISTOGRAM_BINS)
        assert target["histogram"][split_name] == expected.tolist()


def test_integer_target_with_few_values_is_categorical_unless_told(table):
    assert profile_table(table, target="group")["target"]["kind"] == "numeric"  # 40 values
    result = profile_table(table, target="id", target_kind="categorical")
    assert result["target"]["kind"] == "categorical"
    assert len(result["target"]["classes"]) == profiles.MAX_CLASSES + 1
    assert result["target"]["classes"][-1] == "(other)"
    assert sum(result["target"]["counts"]["all"]) == N


def test_without_a_split_the_whole_table_is_one_split(table):
    result = profile_table(table, target="species")
    assert result["splits"] == [{"name": "all", "rows": N, "share": 1.0}]
    assert result["folds"] == []
    assert result["target"]["splits"] == ["all"]


def test_sample_is_the_first_rows_with_their_split(tmp_path, frame, table):
    assigned, split_path = _split_table(tmp_path, frame, SPEC)
    sample = profile_table(table, split_table=split_path)["sample"]
    assert sample["columns"] == list(frame.columns) + ["(split)"]
    assert len(sample["rows"]) == profiles.SAMPLE_ROWS
    for i, row in enumerate(sample["rows"]):
        assert row[0] == i and row[-1] == assigned["split"][i]
        x = frame["x"][i]
        assert (row[1] is None) if math.isnan(x) else row[1] == pytest.approx(x)
        species = frame["species"][i]
        assert row[3] == (None if pd.isna(species) else species)
        assert row[5] == frame["day"][i].isoformat()


def test_an_unknown_target_names_the_columns(table):
    with pytest.raises(ProfileError, match=r"'label' is not a column.*species"):
        profile_table(table, target="label")


def test_a_split_table_of_another_table_is_refused(tmp_path, table):
    pd.DataFrame({"row": range(10), "split": ["train"] * 10}).to_parquet(tmp_path / "s.pq")
    with pytest.raises(ProfileError, match="has 10 rows.*has 503"):
        profile_table(table, split_table=tmp_path / "s.pq")
    pd.DataFrame({"index": range(N)}).to_parquet(tmp_path / "bad.pq")
    with pytest.raises(ProfileError, match="no 'row' and 'split'"):
        profile_table(table, split_table=tmp_path / "bad.pq")


def test_odd_column_names_are_quoted(tmp_path):
    path = tmp_path / "odd.parquet"
    pd.DataFrame({'a "quoted" name': [1, 2, None], "it's": ["x", "y", "x"]}).to_parquet(path)
    result = profile_table(path, target="it's")
    assert [c["missing"] for c in result["columns"]] == [1, 0]
    assert result["target"]["counts"]["all"] == [2, 1]


def test_labels_as_arrays_give_the_same_distribution_as_a_table_target():
    from datarun.datasets.profile import array_target_distribution

    species = np.array(["setosa"] * 3 + ["virginica"] * 1, dtype=object)
    classes = array_target_distribution(species, name="species")
    assert (classes["kind"], classes["classes"], classes["counts"]) == \
        ("categorical", ["setosa", "virginica"], {"train": [3, 1]})
    numbers = array_target_distribution(np.linspace(0.0, 10.0, 101), name="y")
    assert numbers["kind"] == "numeric"
    assert sum(numbers["histogram"]["train"]) == 101
    assert numbers["stats"]["train"]["mean"] == pytest.approx(5.0)
    assert (numbers["bin_edges"][0], numbers["bin_edges"][-1]) == (0.0, 10.0)
    # Few integer values are classes; several outputs per row are not one target.
    assert array_target_distribution(np.array([0, 1, 1]))["classes"] == ["1", "0"]
    assert array_target_distribution(np.zeros((4, 2))) is None
