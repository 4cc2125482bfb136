"""Leakage-free splits on frames: groups never cross, strata and time order hold,
named splits stay out, the table hash is stable, and folds equal the RAMP
kits' own ``get_cv``."""
import datetime
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import model_selection as ms
from sklearn.datasets import load_diabetes, load_iris

from datarun.datasets.splits import (
    SplitSpecError,
    assign,
    folds_from_table,
    parse_split_spec,
    spec_hash,
    split_rows,
    summarise,
    table_hash,
    train_test_rows,
)
from tests.conftest import EXAMPLES, ROOT


def patients(n_groups=37, n_rows=200, seed=0) -> pd.DataFrame:
    """Rows of patients with 1 to 9 visits each (one with 20), in shuffled order."""
    sizes = [i % 9 + 1 for i in range(n_groups)]
    sizes[-1] += n_rows - sum(sizes)
    rng = np.random.default_rng(seed)
    patient = np.repeat([f"p{i:02d}" for i in range(n_groups)], sizes)
    df = pd.DataFrame({
        "patient_id": patient,
        "label": rng.choice(["a", "b", "c"], size=n_rows, p=[0.5, 0.3, 0.2]),
        "day": rng.integers(0, 60, size=n_rows),  # repeated days: ties across the cut
        "batch": rng.choice(["b1", "b2", "b3", "b7", "b8"], size=n_rows),
        "x": rng.normal(size=n_rows),
    })
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


def make(df, spec: dict) -> pd.DataFrame:
    return assign(df, parse_split_spec(spec))


def groups_of(df, table, split, column="patient_id") -> set:
    return set(df[column].to_numpy()[(table["split"] == split).to_numpy()])


def fold_groups(df, table, column="patient_id"):
    """For each fold, the groups of its training rows and of its validation rows."""
    train = df.iloc[split_rows(table, "train")][column].to_numpy()
    return [(set(train[tr]), set(train[va])) for tr, va in folds_from_table(table)]


# --- groups ----------------------------------------------------------------

@pytest.mark.parametrize("cv", [
    {"method": "group_kfold", "n_splits": 5, "column": "patient_id"},
    {"method": "group_kfold", "n_splits": 4, "column": "patient_id", "shuffle": False},
    {"method": "group_shuffle", "n_splits": 6, "fraction": 0.25, "column": "patient_id"},
    {"method": "stratified_group_kfold", "n_splits": 3, "column": "patient_id",
     "stratify": "label"},
])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_no_group_crosses_test_or_any_fold(cv, seed):
    df = patients(seed=seed)
    spec = {"seed": seed, "test": {"method": "group", "fraction": 0.2, "column": "patient_id"},
            "cv": cv}
    table = make(df, spec)

    train, test = groups_of(df, table, "train"), groups_of(df, table, "test")
    assert train and test and not train & test
    assert len(train | test) == 37
    folds = fold_groups(df, table)
    assert len(folds) == cv["n_splits"]
    for fold_train, fold_valid in folds:
        assert fold_train and fold_valid
        assert not fold_train & fold_valid
        assert not fold_valid & test
    summary = summarise(table, df, parse_split_spec(spec))
    assert summary["groups"]["patient_id"] == {"train": len(train), "test": len(test)}
    assert summary["rows"]["train"] + summary["rows"]["test"] == 200


def test_group_test_fraction_counts_groups():
    df = patients()
    table = make(df, {"test": {"method": "group", "fraction": 0.2, "column": "patient_id"}})
    assert len(groups_of(df, table, "test")) == 8  # ceil(0.2 * 37), whatever their sizes


def test_named_fraction_by_group_keeps_groups_whole():
    df = patients()
    table = make(df, {
        "named": [{"name": "canary", "fraction": 0.1, "group": "patient_id"}],
        "test": {"method": "group", "column": "patient_id"},
        "cv": {"method": "group_kfold", "column": "patient_id"}})
    canary, train, test = (groups_of(df, table, s) for s in ("canary", "train", "test"))
    assert len(canary) == 4
    assert not canary & train and not canary & test and not train & test


# --- strata ----------------------------------------------------------------

def test_stratified_cut_and_folds_keep_class_proportions():
    df = patients()
    table = make(df, {"seed": 3,
                      "test": {"method": "stratified", "fraction": 0.25, "column": "label"},
                      "cv": {"method": "stratified_kfold", "n_splits": 4, "column": "label"}})
    train_rows, test_rows = train_test_rows(table)
    counts = df["label"].value_counts()
    test_counts = df["label"].iloc[test_rows].value_counts()
    for label, n in counts.items():
        assert abs(test_counts.get(label, 0) - 0.25 * n) <= 1, label
    train_labels = df["label"].iloc[train_rows].to_numpy()
    train_counts = pd.Series(train_labels).value_counts()
    for _, valid in folds_from_table(table):
        valid_counts = pd.Series(train_labels[valid]).value_counts()
        for label, n in train_counts.items():
            assert abs(valid_counts.get(label, 0) - n / 4) <= 1, label


# --- time ------------------------------------------------------------------

def test_time_cut_and_folds_only_look_back():
    df = patients()
    table = make(df, {"test": {"method": "time", "fraction": 0.2, "column": "day"},
                      "cv": {"method": "time_series", "n_splits": 4, "column": "day"}})
    train_rows, test_rows = train_test_rows(table)
    day = df["day"].to_numpy()
    assert day[test_rows].min() > day[train_rows].max()  # ties at the cut all went to test
    assert len(test_rows) >= 40
    train_days = day[train_rows]
    folds = folds_from_table(table)
    assert len(folds) == 4
    for tr, va in folds:
        assert train_days[va].min() > train_days[tr].max()
    # Each fold trains on everything before what it validates on.
    assert [len(tr) for tr, _ in folds] == sorted(len(tr) for tr, _ in folds)


def test_time_series_on_distinct_times_equals_time_series_split():
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=50, freq="D")})
    table = make(df, {"cv": {"method": "time_series", "n_splits": 5, "column": "t"}})
    expected = list(ms.TimeSeriesSplit(5).split(df))
    for (tr, va), (etr, eva) in zip(folds_from_table(table), expected, strict=True):
        np.testing.assert_array_equal(tr, etr)
        np.testing.assert_array_equal(va, eva)


# --- named splits ----------------------------------------------------------

def test_named_splits_are_set_aside_before_everything_else():
    df = patients()
    df["date"] = pd.Timestamp("2024-05-01") + pd.to_timedelta(df["day"], unit="D")
    spec = parse_split_spec({
        "named": [{"name": "production", "column": "date", "from": datetime.date(2024, 6, 15)},
                  {"name": "staging", "column": "batch", "values": ["b7", "b8"]},
                  {"name": "later", "column": "day", "from": 1000}],
        "test": {"method": "shuffle", "fraction": 0.2},
        "cv": {"method": "shuffle", "n_splits": 5, "fraction": 0.3}})
    table = assign(df, spec)
    production = (df["date"] >= "2024-06-15").to_numpy()
    staging = df["batch"].isin(["b7", "b8"]).to_numpy() & ~production
    np.testing.assert_array_equal(table["split"] == "production", production)
    np.testing.assert_array_equal(table["split"] == "staging", staging)
    set_aside = production | staging
    assert set(table["split"][~set_aside]) == {"train", "test"}
    fold_columns = [c for c in table.columns if c.startswith(("train_", "valid_"))]
    assert (table.loc[set_aside, fold_columns] == -1).all().all()
    summary = summarise(table, df, spec)
    assert summary["rows"]["later"] == 0  # data that has not arrived yet
    assert summary["rows"]["production"] == production.sum()
    assert spec.to_dict()["named"][0] == {"name": "production", "column": "date",
                                          "from": "2024-06-15"}


def test_named_range_on_text_and_numbers():
    df = pd.DataFrame({"d": ["2024-01-05", "2024-02-01", None, "2024-03-01"],
                       "n": [1, 2, 3, 4]})
    table = make(df, {"named": [{"name": "feb", "column": "d", "from": "2024-02-01",
                                 "until": "2024-03-01"},
                                {"name": "big", "column": "n", "from": 4}]})
    assert list(table["split"]) == ["train", "feb", "train", "big"]


def test_named_rules_on_date_and_decimal_cells():
    import decimal

    df = pd.DataFrame({"d": [datetime.date(2024, 5, 31), datetime.date(2024, 6, 1), None],
                       "price": [decimal.Decimal("1.50"), decimal.Decimal("2.25"), None]})
    table = make(df, {"named": [{"name": "june", "column": "d", "from": "2024-06-01"},
                                {"name": "cheap", "column": "price", "values": [1.5]}]})
    assert list(table["split"]) == ["cheap", "june", "train"]


# --- the RAMP kits' own folds ---------------------------------------------

def assert_same_folds(folds, expected):
    assert len(folds) == len(expected)
    for (tr, va), (etr, eva) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(tr, etr)  # same rows in the same order
        np.testing.assert_array_equal(va, eva)


def test_iris_kit_reproduced_from_its_files():
    train = pd.read_csv(EXAMPLES / "iris" / "data" / "train.csv")
    test = pd.read_csv(EXAMPLES / "iris" / "data" / "test.csv")
    df = pd.concat([train.assign(source="train.csv"), test.assign(source="test.csv")],
                   ignore_index=True)
    table = make(df, {"seed": 57,
                      "test": {"method": "given", "column": "source", "values": ["test.csv"]},
                      "cv": {"method": "stratified_shuffle", "n_splits": 5, "fraction": 0.2,
                             "column": "species"}})
    train_rows, test_rows = train_test_rows(table)
    np.testing.assert_array_equal(train_rows, np.arange(len(train)))
    np.testing.assert_array_equal(test_rows, np.arange(len(train), len(df)))
    X, y = train.drop(columns="species"), train["species"].to_numpy()
    expected = ms.StratifiedShuffleSplit(n_splits=5, test_size=0.2, random_state=57).split(X, y)
    assert_same_folds(folds_from_table(table), list(expected))


def test_iris_stratified_cut_is_train_test_split_and_folds_are_get_cv():
    data = load_iris(as_frame=True)
    df = data.data.assign(species=data.target_names[data.target.to_numpy()])
    table = make(df, {"test": {"method": "stratified", "fraction": 0.2, "column": "species",
                               "seed": 42},
                      "cv": {"method": "stratified_shuffle", "n_splits": 5, "fraction": 0.2,
                             "column": "species", "seed": 57}})
    _, kit_test = ms.train_test_split(np.arange(len(df)), test_size=0.2, random_state=42,
                                      stratify=df["species"])
    train_rows, test_rows = train_test_rows(table)
    np.testing.assert_array_equal(test_rows, np.sort(kit_test))
    X_train = df.iloc[train_rows].drop(columns="species")
    y_train = df["species"].iloc[train_rows].to_numpy()
    expected = ms.StratifiedShuffleSplit(n_splits=5, test_size=0.2,
                                         random_state=57).split(X_train, y_train)
    assert_same_folds(folds_from_table(table), list(expected))


def test_diabetes_shuffle_cut_is_train_test_split_and_folds_are_get_cv():
    data = load_diabetes(as_frame=True)
    df = data.frame
    table = make(df, {"test": {"method": "shuffle", "fraction": 0.2, "seed": 42},
                      "cv": {"method": "shuffle", "n_splits": 5, "fraction": 0.2, "seed": 57}})
    _, kit_test = ms.train_test_split(df, test_size=0.2, random_state=42)
    train_rows, test_rows = train_test_rows(table)
    np.testing.assert_array_equal(test_rows, np.sort(kit_test.index.to_numpy()))
    expected = ms.ShuffleSplit(n_splits=5, test_size=0.2, random_state=57).split(
        df.iloc[train_rows])
    folds = folds_from_table(table)
    assert_same_folds(folds, list(expected))
    valid_sets = [set(va) for _, va in folds]
    assert valid_sets[0] & valid_sets[1]  # ShuffleSplit's folds overlap, and the table keeps it


@pytest.mark.parametrize(("cv", "splitter", "needs"), [
    ({"method": "kfold", "n_splits": 4, "seed": 9},
     ms.KFold(4, shuffle=True, random_state=9), ()),
    ({"method": "kfold", "n_splits": 3, "shuffle": False}, ms.KFold(3), ()),
    ({"method": "stratified_kfold", "n_splits": 4, "column": "label", "seed": 9},
     ms.StratifiedKFold(4, shuffle=True, random_state=9), ("y",)),
    ({"method": "group_kfold", "n_splits": 4, "column": "patient_id", "seed": 9},
     ms.GroupKFold(4, shuffle=True, random_state=9), ("groups",)),
    ({"method": "stratified_group_kfold", "n_splits": 3, "column": "patient_id",
      "stratify": "label", "seed": 9},
     ms.StratifiedGroupKFold(3, shuffle=True, random_state=9), ("y", "groups")),
    ({"method": "group_shuffle", "n_splits": 4, "fraction": 0.3, "column": "patient_id",
      "seed": 9}, ms.GroupShuffleSplit(4, test_size=0.3, random_state=9), ("groups",)),
])
def test_every_cv_method_is_its_scikit_learn_splitter_over_the_training_rows(cv, splitter,
                                                                             needs):
    df = patients()
    test = {"method": "group", "column": "patient_id", "seed": 4} if "groups" in needs \
        else {"method": "shuffle", "seed": 4}
    table = make(df, {"test": test, "cv": cv})
    train = df.iloc[split_rows(table, "train")]
    y = train["label"].to_numpy() if "y" in needs else None
    groups = train["patient_id"].to_numpy() if "groups" in needs else None
    assert_same_folds(folds_from_table(table), list(splitter.split(train, y, groups)))


def test_folds_do_not_depend_on_the_tables_row_order():
    df = patients()
    table = make(df, {"test": {"method": "shuffle"},
                      "cv": {"method": "shuffle", "n_splits": 3}})
    shuffled = table.sample(frac=1, random_state=1)
    assert_same_folds(folds_from_table(shuffled), folds_from_table(table))


# --- hashes ----------------------------------------------------------------

SPEC = {"seed": 7, "named": [{"name": "staging", "column": "batch", "values": ["b8"]}],
        "test": {"method": "group", "column": "patient_id"},
        "cv": {"method": "group_shuffle", "n_splits": 5, "column": "patient_id"}}

HASH_IN_A_FRESH_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.datarun.datasets.test_splits import SPEC, make, patients
from datarun.datasets.splits import table_hash
print(table_hash(make(patients(), SPEC)))
"""


def test_same_spec_same_data_gives_the_same_hash_across_runs_and_parquet(tmp_path):
    table = make(patients(), SPEC)
    digest = table_hash(table)
    assert table_hash(make(patients(), SPEC)) == digest
    fresh = subprocess.run([sys.executable, "-c", HASH_IN_A_FRESH_PROCESS, str(ROOT)],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert fresh.stdout.strip() == digest
    table.to_parquet(tmp_path / "split.parquet", index=False)
    assert table_hash(pd.read_parquet(tmp_path / "split.parquet")) == digest


def test_a_different_seed_gives_different_hashes():
    other = {**SPEC, "seed": 8}
    assert spec_hash(parse_split_spec(other)) != spec_hash(parse_split_spec(SPEC))
    assert table_hash(make(patients(), other)) != table_hash(make(patients(), SPEC))


def test_the_spec_hash_is_that_of_the_normalised_spec():
    spec = parse_split_spec(SPEC)
    assert parse_split_spec(spec.to_dict()) == spec
    assert spec_hash(parse_split_spec({**SPEC, "cv": {**SPEC["cv"], "seed": 7}})) == \
        spec_hash(spec)
    no_shuffle = parse_split_spec({"seed": 3, "cv": {"method": "kfold", "shuffle": False}})
    assert no_shuffle.to_dict() == {"cv": {"method": "kfold", "n_splits": 5, "shuffle": False}}


def test_table_hash_sees_every_value():
    table = make(patients(), SPEC)
    changed = table.copy()
    changed.loc[3, "valid_2"] = 99
    renamed = table.rename(columns={"valid_2": "valid_9"})
    digests = {table_hash(t) for t in (table, changed, renamed)}
    assert len(digests) == 3


# --- what users get wrong --------------------------------------------------

@pytest.mark.parametrize(("spec", "message"), [
    ({"test": {"method": "random"}},
     "split.test.method 'random' is not one of: given, group, shuffle, stratified, time"),
    ({"cv": {"method": "kfolds"}},
     "split.cv.method 'kfolds' is not one of: group_kfold, group_shuffle, kfold, shuffle, "
     "stratified_group_kfold, stratified_kfold, stratified_shuffle, time_series"),
    ({"test": {"method": "shuffle", "fraction": 1.5}},
     "split.test.fraction must be a number strictly between 0 and 1, not 1.5"),
    ({"test": {"method": "shuffle", "fraction": 0}}, "split.test.fraction must be a number"),
    ({"cv": {"method": "shuffle", "fraction": "0.2"}},
     "split.cv.fraction must be a number strictly between 0 and 1, not '0.2'"),
    ({"cv": {"method": "kfold", "n_splits": 1}},
     "split.cv.n_splits must be a whole number of at least 2 for method 'kfold', not 1"),
    ({"cv": {"method": "shuffle", "n_splits": 0}},
     "split.cv.n_splits must be a whole number of at least 1 for method 'shuffle', not 0"),
    ({"cv": {"method": "group_kfold"}}, "split.cv.column must name a column, not None"),
    ({"cv": {"method": "kfold", "n_split": 3}},
     "split.cv has fields not used by method 'kfold': n_split"),
    ({"test": {"method": "shuffle", "column": "label"}},
     "split.test has fields not used by method 'shuffle': column"),
    ({"cv": {"method": "kfold", "shuffle": "yes"}}, "split.cv.shuffle must be true or false"),
    ({"seed": -1}, "split.seed must be a whole number from 0 to 2**32 - 1, not -1"),
    ({"split": {"seed": 1}}, "split has fields not used: split"),
    ({"test": "shuffle"}, "split.test must be a mapping, not str"),
    ({"named": [{"name": "test", "fraction": 0.1}]},
     "split.named[0].name must be a name of letters, digits, '_' or '-' other than train"),
    ({"named": [{"name": "a", "fraction": 0.1}, {"name": "a", "fraction": 0.1}]},
     "split.named has 'a' more than once"),
    ({"named": [{"name": "later", "column": "day"}]},
     "split.named[0] needs values, from/until or fraction to say which rows go to 'later'"),
    ({"named": [{"name": "s", "column": "day", "values": [1], "from": 3}]},
     "split.named[0] selects rows by values; remove from"),
    ({"named": [{"name": "s", "column": "day", "values": []}]},
     "split.named[0].values must be a non-empty list of values"),
    ({"test": {"method": "group", "column": "patient_id"}, "cv": {"method": "kfold"}},
     "split.test keeps the groups of 'patient_id' out of the training rows, but "
     "split.cv.method 'kfold' would put one group in both training and validation"),
    ({"test": {"method": "shuffle"}, "cv": {"method": "group_kfold", "column": "patient_id"}},
     "split.test.method 'shuffle' would put one group in both train and test: "
     "use test.method 'group'"),
])
def test_a_malformed_spec_names_the_field(spec, message):
    with pytest.raises(SplitSpecError) as caught:
        parse_split_spec(spec)
    assert message in str(caught.value)


def with_nulls(column, n=3):
    df = patients()
    df[column] = df[column].astype(object)
    df.loc[[5, 50, 150][:n], column] = None
    return df


@pytest.mark.parametrize(("df", "spec", "message"), [
    (with_nulls("patient_id"),
     {"test": {"method": "group", "column": "patient_id"}},
     "the group column 'patient_id' has 3 null values; fill or drop them first "
     "(split.test.column)"),
    (with_nulls("patient_id", 1),
     {"cv": {"method": "group_kfold", "column": "patient_id"}},
     "the group column 'patient_id' has 1 null value; fill or drop them first "
     "(split.cv.column)"),
    (with_nulls("day"), {"test": {"method": "time", "column": "day"}},
     "the time column 'day' has 3 null values"),
    (with_nulls("label"), {"cv": {"method": "stratified_kfold", "column": "label"}},
     "the class column 'label' has 3 null values"),
    (patients(), {"test": {"method": "group", "column": "patient"},
                  "cv": {"method": "group_kfold", "column": "patient"}},
     "the split spec names 'patient', not a column of the table (columns: patient_id, label"),
    (patients().assign(label=["only"] + ["a"] * 199),
     {"test": {"method": "stratified", "column": "label"}},
     "split.test (stratified): The least populated classes in y have only 1 member"),
    (patients(), {"cv": {"method": "group_kfold", "n_splits": 40, "column": "patient_id"}},
     "split.cv (group_kfold): Cannot have number of splits n_splits=40 greater than the "
     "number of groups: 37"),
    (patients().assign(day=1), {"test": {"method": "time", "column": "day"}},
     "the time column 'day' has too few distinct values"),
    (patients(), {"cv": {"method": "time_series", "n_splits": 60, "column": "day"}},
     "the time column 'day' has 58 distinct values among the training rows; time_series "
     "needs more than n_splits=60"),
    (patients(), {"named": [{"name": "s", "column": "day", "values": ["monday"]}]},
     "split.named[0]: column 'day' holds numbers, not 'monday'"),
    (patients(), {"test": {"method": "given", "column": "batch", "values": ["b9", "B1"]}},
     "split.test.values ['b9', 'B1'] match no row of column 'batch' (its values include: "),
    (patients().assign(day=[1, "2"] * 100), {"test": {"method": "time", "column": "day"}},
     "the time column 'day' mixes values that cannot be ordered"),
    (patients(), {"named": [{"name": "all", "column": "day", "from": 0}]},
     "the split spec leaves no training rows"),
])
def test_data_that_cannot_be_split_names_the_column(df, spec, message):
    with pytest.raises(SplitSpecError) as caught:
        make(df, spec)
    assert message in str(caught.value)


def test_nulls_in_rows_already_set_aside_do_not_matter():
    df = with_nulls("patient_id")
    df["late"] = False
    df.loc[[5, 50, 150], "late"] = True
    table = make(df, {"named": [{"name": "late", "column": "late", "values": [True]}],
                      "test": {"method": "group", "column": "patient_id"}})
    assert (table["split"] == "late").sum() == 3
