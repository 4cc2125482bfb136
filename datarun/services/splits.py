"""Splits: a dataset version's rows assigned once to train/test, CV folds and
named splits, stored as a per-row Parquet table with its own hash.

A split is made once per (version, normalised spec) and never recomputed:
scikit-learn's splitters may change between releases, so asking again for the
same spec returns the stored table, and reading it back checks its hash.
"""
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.db import transaction

from datarun import storage
from datarun.datasets import splits
from datarun.errors import InvalidDataset
from datarun.models import DatasetVersion, Split
from datarun.services.datasets import dataset_version_table


def split_create(*, version: DatasetVersion, spec: dict) -> tuple[Split, bool]:
    """The split of ``version`` under ``spec`` and whether it was made now.

    All or nothing: a spec or data that cannot be split raises
    :class:`InvalidDataset` and leaves no row and no file.
    """
    try:
        parsed = splits.parse_split_spec(spec)
    except splits.SplitSpecError as exc:
        raise InvalidDataset(str(exc)) from exc
    spec_hash = splits.spec_hash(parsed)
    written = None
    try:
        with transaction.atomic():
            # One maker per version at a time, so that the same spec is split once.
            DatasetVersion.objects.select_for_update().get(pk=version.pk)
            existing = Split.objects.filter(version=version, spec_hash=spec_hash).first()
            if existing:
                return existing, False
            df = _read_columns(version, parsed)
            try:
                table = splits.assign(df, parsed)
            except splits.SplitSpecError as exc:
                raise InvalidDataset(f"cannot split {version}: {exc}") from exc
            split_hash = splits.table_hash(table)
            relative = f"splits/{split_hash}.parquet"
            path = storage.resolve(relative)
            if not path.exists():
                written = path
            _write_parquet(table, path)
            split = Split.objects.create(
                version=version, spec=parsed.to_dict(), spec_hash=spec_hash,
                table_path=relative, split_hash=split_hash,
                summary=splits.summarise(table, df, parsed))
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)
        raise
    return split, True


def split_table(split: Split) -> pd.DataFrame:
    """The split's per-row table, checked against its hash."""
    path = storage.resolve(split.table_path)
    where = f"the table {split.table_path} of split {split.pk} ({split.version})"
    try:
        table = pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise InvalidDataset(f"{where} is missing from storage") from exc
    except (OSError, pa.ArrowException) as exc:
        raise InvalidDataset(f"{where} cannot be read: {exc}") from exc
    try:
        digest = splits.table_hash(table)
    except ValueError as exc:
        raise InvalidDataset(f"{where} is not a split table any more: {exc}") from exc
    if digest != split.split_hash:
        raise InvalidDataset(f"{where} changed since the split was made: its hash is {digest}, "
                             f"not {split.split_hash}; restore the file (the split is never "
                             "recomputed)")
    return table


def _read_columns(version: DatasetVersion, spec: splits.SplitSpec) -> pd.DataFrame:
    """Only the columns the spec reads, from the version's Parquet table, once
    its sha256 is checked: a split is made once, so never from changed bytes."""
    path = dataset_version_table(version)
    digest = storage.sha256_file(path)
    if digest != version.table_sha256:
        raise InvalidDataset(f"{version}: its table {version.table_path} changed since the "
                             f"version was made (sha256 {digest}, registered "
                             f"{version.table_sha256}); register the data as a new version")
    parquet = pq.ParquetFile(path)
    try:
        splits.check_columns(spec, parquet.schema_arrow.names)
    except splits.SplitSpecError as exc:
        raise InvalidDataset(f"cannot split {version}: {exc}") from exc
    columns = spec.columns()
    if not columns:
        return pd.DataFrame(index=pd.RangeIndex(parquet.metadata.num_rows))
    return parquet.read(columns=columns).to_pandas(date_as_object=False)


def _write_parquet(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        # Rename into place, so that a reader never sees half a table.
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
