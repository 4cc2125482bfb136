"""split_create / split_table against PostgreSQL and real Parquet files in storage."""
import numpy as np
import pandas as pd
import pytest

from datarun import storage
from datarun.datasets import splits
from datarun.errors import InvalidDataset
from datarun.models import Dataset, DatasetVersion, Split
from datarun.services.splits import split_create, split_table
from tests.datarun.datasets.test_splits import patients

pytestmark = pytest.mark.django_db

GROUPED = {"seed": 11,
           "named": [{"name": "staging", "column": "batch", "values": ["b8"]}],
           "test": {"method": "group", "fraction": 0.2, "column": "patient_id"},
           "cv": {"method": "group_shuffle", "n_splits": 4, "column": "patient_id"}}


def make_version(df: pd.DataFrame, name: str = "visits") -> DatasetVersion:
    """A version whose materialised table is ``df``, written to storage as Parquet."""
    relative = f"tables/{name}.parquet"
    path = storage.resolve(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    dataset, _ = Dataset.objects.get_or_create(name=name)
    return DatasetVersion.objects.create(
        dataset=dataset, number=dataset.versions.count() + 1,
        manifest_hash=storage.sha256_file(path), table_path=relative,
        table_sha256=storage.sha256_file(path), n_rows=len(df),
        size_bytes=path.stat().st_size,
        schema=[{"name": c, "type": str(t), "nullable": True} for c, t in df.dtypes.items()],
        croissant={})


def split_files() -> set[str]:
    folder = storage.root() / "splits"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_a_split_is_made_once_and_read_back():
    df = patients()
    version = make_version(df)
    split, created = split_create(version=version, spec=GROUPED)
    assert created
    assert split.table_path == f"splits/{split.split_hash}.parquet"
    assert storage.resolve(split.table_path).is_file()

    table = split_table(split)
    expected = splits.assign(df, splits.parse_split_spec(GROUPED))
    assert splits.table_hash(table) == splits.table_hash(expected) == split.split_hash
    train_rows, test_rows = splits.train_test_rows(table)
    groups = df["patient_id"].to_numpy()
    assert not set(groups[train_rows]) & set(groups[test_rows])

    summary = split.summary
    staging = int(df["batch"].eq("b8").sum())
    assert summary["rows"] == {"train": len(train_rows), "test": len(test_rows),
                               "staging": staging}
    assert sum(summary["rows"].values()) == 200
    assert len(summary["folds"]) == 4
    for fold, (tr, va) in zip(summary["folds"], splits.folds_from_table(table), strict=True):
        assert fold == {"train": len(tr), "valid": len(va)}
    assert summary["groups"]["patient_id"]["test"] == len(set(groups[test_rows]))
    assert split.spec == splits.parse_split_spec(GROUPED).to_dict()


def test_the_same_spec_returns_the_stored_split_without_recomputing(monkeypatch):
    version = make_version(patients())
    first, _ = split_create(version=version, spec=GROUPED)

    def changed_scikit_learn(df, spec):
        raise AssertionError("a stored split must not be recomputed")

    monkeypatch.setattr(splits, "assign", changed_scikit_learn)
    # Written differently, the same normalised spec.
    again, created = split_create(version=version, spec={
        **GROUPED, "cv": {**GROUPED["cv"], "seed": 11, "fraction": 0.2}})
    assert (again.pk, created) == (first.pk, False)
    assert Split.objects.filter(version=version).count() == 1


def test_another_seed_or_version_makes_another_split():
    df = patients()
    version = make_version(df)
    first, _ = split_create(version=version, spec=GROUPED)
    other_seed, created = split_create(version=version, spec={**GROUPED, "seed": 12})
    assert created and other_seed.split_hash != first.split_hash
    assert other_seed.spec_hash != first.spec_hash
    # Same rows in another version: its own Split row, the same table file.
    other_version = make_version(df, name="visits-copy")
    copy, created = split_create(version=other_version, spec=GROUPED)
    assert created and copy.pk != first.pk
    assert (copy.split_hash, copy.table_path) == (first.split_hash, first.table_path)


def test_a_spec_needing_no_column_reads_only_the_row_count():
    version = make_version(patients())
    split, _ = split_create(version=version, spec={
        "test": {"method": "shuffle", "seed": 42},
        "cv": {"method": "shuffle", "n_splits": 5, "fraction": 0.2, "seed": 57}})
    assert split.summary["rows"] == {"train": 160, "test": 40}
    assert split.summary["folds"] == [{"train": 128, "valid": 32}] * 5


def test_a_group_column_with_nulls_leaves_no_split_and_no_file():
    df = patients()
    df["patient_id"] = df["patient_id"].astype(object)
    df.loc[[3, 30, 130], "patient_id"] = None
    version = make_version(df)
    before = split_files()
    with pytest.raises(InvalidDataset) as caught:
        split_create(version=version, spec=GROUPED)
    assert caught.value.message == (
        "cannot split visits@1: the group column 'patient_id' has 3 null values; "
        "fill or drop them first (split.test.column)")
    assert not Split.objects.exists()
    assert split_files() == before


@pytest.mark.parametrize(("spec", "message"), [
    ({"test": {"method": "random"}}, "split.test.method 'random' is not one of"),
    ({"cv": {"method": "kfold", "n_splits": 1}}, "split.cv.n_splits must be a whole number"),
    ({"test": {"method": "stratified", "column": "species"}},
     "cannot split visits@1: the split spec names 'species', not a column of the table "
     "(columns: patient_id, label, day, batch, x)"),
])
def test_a_bad_spec_names_the_field_and_leaves_nothing(spec, message):
    version = make_version(patients())
    before = split_files()
    with pytest.raises(InvalidDataset) as caught:
        split_create(version=version, spec=spec)
    assert message in caught.value.message
    assert caught.value.code == "invalid_dataset"
    assert not Split.objects.exists()
    assert split_files() == before


def test_a_version_whose_table_changed_is_not_split():
    version = make_version(patients())
    path = storage.resolve(version.table_path)
    patients(seed=5).to_parquet(path, index=False)
    with pytest.raises(InvalidDataset) as caught:
        split_create(version=version, spec=GROUPED)
    assert caught.value.message.startswith(
        f"visits@1: its table {version.table_path} changed since the version was made")
    assert not Split.objects.exists()


def test_a_failure_after_the_table_is_written_removes_it(monkeypatch):
    version = make_version(patients())
    before = split_files()

    def refused(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Split.objects, "create", refused)
    with pytest.raises(RuntimeError):
        split_create(version=version, spec=GROUPED)
    assert split_files() == before


def test_a_changed_or_missing_table_file_is_named():
    version = make_version(patients())
    split, _ = split_create(version=version, spec=GROUPED)
    path = storage.resolve(split.table_path)
    table = pd.read_parquet(path)
    table.loc[0, "split"] = "test" if table.loc[0, "split"] == "train" else "train"
    table.to_parquet(path, index=False)
    with pytest.raises(InvalidDataset) as caught:
        split_table(split)
    assert caught.value.message.startswith(
        f"the table {split.table_path} of split {split.pk} (visits@1) changed since the "
        "split was made")

    path.write_bytes(b"not parquet")
    with pytest.raises(InvalidDataset, match="cannot be read"):
        split_table(split)
    path.unlink()
    with pytest.raises(InvalidDataset, match=f"{split.table_path} .* is missing from storage"):
        split_table(split)
    # Asking again re-creates nothing: the stored split stands, its file must be restored.
    again, created = split_create(version=version, spec=GROUPED)
    assert (again.pk, created) == (split.pk, False)


def test_folds_from_the_stored_table_equal_scikit_learns():
    from sklearn.model_selection import StratifiedShuffleSplit

    df = patients()
    version = make_version(df)
    split, _ = split_create(version=version, spec={
        "test": {"method": "stratified", "column": "label", "seed": 42},
        "cv": {"method": "stratified_shuffle", "n_splits": 5, "fraction": 0.2,
               "column": "label", "seed": 57}})
    table = split_table(split)
    train_rows, _ = splits.train_test_rows(table)
    y = df["label"].to_numpy()[train_rows]
    expected = StratifiedShuffleSplit(5, test_size=0.2, random_state=57).split(y, y)
    for (tr, va), (etr, eva) in zip(splits.folds_from_table(table), expected, strict=True):
        np.testing.assert_array_equal(tr, etr)
        np.testing.assert_array_equal(va, eva)


def test_a_registered_kit_is_split_as_its_get_cv_does():
    """The iris kit's files registered as a version: the given test cut and
    stratified_shuffle folds are exactly the kit's test.csv and get_cv."""
    from sklearn.model_selection import StratifiedShuffleSplit

    from datarun.services.datasets import dataset_version_create, dataset_version_table
    from tests.conftest import EXAMPLES

    data = EXAMPLES / "iris" / "data"
    version, _ = dataset_version_create(
        dataset="iris-files",
        uploads={name: (data / name).read_bytes() for name in ("train.csv", "test.csv")},
        transform_sql="SELECT *, 'train' AS part FROM train "
                      "UNION ALL SELECT *, 'test' AS part FROM test")
    split, _ = split_create(version=version, spec={
        "seed": 57, "test": {"method": "given", "column": "part"},
        "cv": {"method": "stratified_shuffle", "n_splits": 5, "fraction": 0.2,
               "column": "species"}})
    table = split_table(split)
    rows = pd.read_parquet(dataset_version_table(version))
    train = pd.read_csv(data / "train.csv")
    train_rows, _ = splits.train_test_rows(table)
    pd.testing.assert_frame_equal(rows.iloc[train_rows].drop(columns="part")
                                  .reset_index(drop=True), train, check_dtype=False)
    expected = StratifiedShuffleSplit(n_splits=5, test_size=0.2, random_state=57).split(
        train.drop(columns="species"), train["species"].to_numpy())
    for (tr, va), (etr, eva) in zip(splits.folds_from_table(table), expected, strict=True):
        np.testing.assert_array_equal(tr, etr)
        np.testing.assert_array_equal(va, eva)


def test_duckdb_dates_split_by_time_and_named_range(tmp_path):
    import duckdb

    version = make_version(patients(), name="dated")
    path = storage.resolve(version.table_path)
    duckdb.sql(f"COPY (SELECT *, DATE '2024-05-01' + CAST(day AS INTEGER) AS date "
               f"FROM read_parquet('{path}')) TO '{tmp_path / 't.parquet'}' (FORMAT parquet)")
    path.write_bytes((tmp_path / "t.parquet").read_bytes())
    version.table_sha256 = storage.sha256_file(path)
    version.save()
    split, _ = split_create(version=version, spec={
        "named": [{"name": "production", "column": "date", "from": "2024-06-20"}],
        "test": {"method": "time", "column": "date"},
        "cv": {"method": "time_series", "n_splits": 3, "column": "date"}})
    table = split_table(split)
    dates = pd.read_parquet(path)["date"].to_numpy()
    production = split.summary["rows"]["production"]
    assert production == (pd.Series(dates) >= pd.Timestamp("2024-06-20").date()).sum() > 0
    train_rows, test_rows = splits.train_test_rows(table)
    assert max(dates[train_rows]) < min(dates[test_rows]) < pd.Timestamp("2024-06-20").date()
