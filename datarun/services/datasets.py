"""Datasets: immutable, content-addressed versions described by Croissant.

A version is identified by its manifest hash: the sha256 of the sorted
``name:sha256`` lines of its files followed by the transform SQL. Creating a
version from bytes that are already registered returns that version.
"""
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from datarun import storage
from datarun.datasets import croissant, duck
from datarun.datasets import sources as fetching
from datarun.datasets.sources import FetchedFile
from datarun.errors import InvalidDataset, NotFound
from datarun.models import Dataset, DatasetFile, DatasetVersion, Split

logger = logging.getLogger(__name__)

_DATASET_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


def manifest_hash(files: list[tuple[str, str]], transform_sql: str = "") -> str:
    """sha256 of the sorted ``name:sha256`` lines, then the transform SQL."""
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(files))
    return hashlib.sha256((lines + transform_sql).encode()).hexdigest()


def dataset_version_create(
    *,
    dataset: str,
    sources: list[str] | tuple[str, ...] = (),
    uploads: dict[str, bytes | BinaryIO] | None = None,
    transform_sql: str = "",
    title: str = "",
    description: str = "",
    allowed_paths: list[str] | None = None,
    license: str = "",
    url: str = "",
    cite_as: str = "",
) -> tuple[DatasetVersion, bool]:
    """Register the files (uploads and sources) as a version of ``dataset``.

    Returns ``(version, created)``: the existing version when the same bytes
    (and transform) are already registered. All or nothing: on any error no
    row, table or newly fetched blob is left behind. ``allowed_paths``
    restricts server paths (None: any, for the trusted command line).
    """
    _check_dataset_name(dataset)
    if not sources and not uploads:
        raise InvalidDataset("give at least one source or uploaded file")
    with _new_blobs_removed_on_error() as fetched:
        for name, data in (uploads or {}).items():
            fetched.append(fetching.store_upload(name, data))
        for source in sources:
            fetched.append(fetching.fetch(source, allowed_paths=allowed_paths))
        return _version_from_files(
            dataset=dataset, fetched=fetched, transform_sql=transform_sql, title=title,
            description=description, license=license, url=url, cite_as=cite_as,
        )


def dataset_register_croissant(*, path: Path, dataset: str | None = None
                               ) -> tuple[DatasetVersion, bool]:
    """Register the local files an existing Croissant file lists, checking their hashes.

    The dataset is named ``dataset`` or after the Croissant ``name``. Its
    title, description, licence, url and citation are kept; the version gets
    its own Croissant description (its record sets describe the table
    DuckDB builds from the files).
    """
    described = croissant.read(Path(path))
    name = dataset or slugify(described.name)[:100]
    _check_dataset_name(name)
    with _new_blobs_removed_on_error() as fetched:
        for entry in described.files:
            file = fetching.fetch(str(entry.path), allowed_paths=None)
            fetched.append(file)
            _check_declared_hash(entry, file)
        return _version_from_files(
            dataset=name, fetched=fetched, transform_sql="", title=described.name,
            description=described.description, license=described.license,
            url=described.url, cite_as=described.cite_as,
        )


def dataset_version_get(ref: str) -> DatasetVersion:
    """``name@3``, ``name@latest`` or ``name`` (the latest); ``name@v3``, as
    versions were once named, is still understood."""
    name, _, number = ref.partition("@")
    versions = DatasetVersion.objects.select_related("dataset").filter(dataset__name=name)
    number = number.lower().removeprefix("v")
    if number in ("", "latest"):
        version = versions.order_by("-number").first()
    elif number.isdigit():
        version = versions.filter(number=int(number)).first()
    else:
        raise InvalidDataset(f"{ref!r}: name a version as NAME, NAME@latest or NAME@3")
    if version is None:
        raise NotFound(f"no dataset version {ref!r}")
    return version


def dataset_version_check(*, version: DatasetVersion) -> list[dict]:
    """Re-hash every file of the version and its table against the manifest:
    per file its ``name``, ``expected`` and ``actual`` sha256 (None when the
    file is missing) and ``status`` (``ok``, ``changed`` or ``missing``)."""
    checks = [(f.name, storage.blob_path(f.sha256), f.sha256) for f in version.files.all()]
    checks.append((croissant.TABLE_FILE, storage.resolve(version.table_path),
                   version.table_sha256))
    report = []
    for name, path, expected in checks:
        actual = storage.sha256_file(path) if path.is_file() else None
        status = "missing" if actual is None else "ok" if actual == expected else "changed"
        report.append({"name": name, "path": str(path), "expected": expected,
                       "actual": actual, "status": status})
    return report


def dataset_version_verify(*, version: DatasetVersion) -> None:
    """Re-hash the version's files and table; raise naming the first that changed."""
    for file in dataset_version_check(version=version):
        if file["status"] == "missing":
            raise InvalidDataset(f"{version}: {file['name']} is missing from storage "
                                 f"({file['path']})")
        if file["status"] == "changed":
            raise InvalidDataset(
                f"{version}: {file['name']} changed since it was registered (sha256 "
                f"{file['actual']}, registered {file['expected']}); register the new "
                "content as a new version"
            )


def dataset_version_table(version: DatasetVersion) -> Path:
    """The local path of the version's materialised Parquet table."""
    path = storage.resolve(version.table_path)
    if not path.is_file():
        raise InvalidDataset(f"{version}: its table {version.table_path} is missing "
                             "from storage")
    return path


def dataset_version_croissant(version: DatasetVersion, *, split: Split | None = None) -> dict:
    """The version's Croissant, with a split's names as a ``cr:Split`` record set.

    ``split`` defaults to the version's latest; its per-row table (columns
    ``row``, ``split``, fold positions) is listed as ``split-<id>.parquet``.
    Without a split, the description stored when the version was made.
    """
    split = split or version.splits.order_by("-created_at", "-pk").first()
    if split is None:
        return version.croissant
    path = storage.resolve(split.table_path)
    table = croissant.FileEntry(name=split_file_name(split), sha256=storage.sha256_file(path),
                                size_bytes=path.stat().st_size,
                                encoding_format=croissant.PARQUET)
    # jsonb keeps no key order: train and test first, then the named splits.
    named = sorted(set(split.summary.get("rows", {})) - {"train", "test"})
    names = ["train", "test", *named]
    return croissant.with_splits(version.croissant, names, table=table)


def split_file_name(split: Split) -> str:
    """The name a split's per-row table has in Croissant descriptions and downloads."""
    return f"split-{split.pk}.parquet"


# --- creating a version ---------------------------------------------------------

def _version_from_files(*, dataset: str, fetched: list[FetchedFile], transform_sql: str,
                        title: str, description: str, license: str, url: str,
                        cite_as: str) -> tuple[DatasetVersion, bool]:
    _check_file_names(fetched)
    manifest = manifest_hash([(f.name, f.sha256) for f in fetched], transform_sql)
    existing = DatasetVersion.objects.filter(dataset__name=dataset,
                                             manifest_hash=manifest).first()
    if existing is not None:
        return existing, False
    staging = Path(tempfile.mkdtemp(prefix="dataset-", dir=_ensure(storage.root() / "tmp")))
    table_relative = f"datasets/{dataset}/{manifest}/{croissant.TABLE_FILE}"
    table_final = storage.resolve(table_relative)
    placed = False
    try:
        table = staging / croissant.TABLE_FILE
        info = duck.materialise({f.name: f.path for f in fetched},
                                transform_sql=transform_sql, out=table,
                                temp_dir=staging / "duckdb")
        table_entry = croissant.FileEntry(
            name=croissant.TABLE_FILE, sha256=storage.sha256_file(table),
            size_bytes=table.stat().st_size, encoding_format=croissant.PARQUET)
        files_dir = _linked_files(staging / "files", fetched, table)
        with transaction.atomic():
            record, _ = Dataset.objects.get_or_create(name=dataset)
            record = Dataset.objects.select_for_update().get(pk=record.pk)
            existing = record.versions.filter(manifest_hash=manifest).first()
            if existing is not None:
                return existing, False
            record.title = title or record.title
            record.description = description or record.description
            record.save(update_fields=["title", "description"])
            number = (record.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            doc = croissant.build(croissant.VersionDescription(
                dataset=dataset, number=number, title=record.title,
                description=record.description, license=license, url=url, cite_as=cite_as,
                date_published=timezone.now().date().isoformat(),
                files=[croissant.FileEntry(f.name, f.sha256, f.size_bytes, f.encoding_format)
                       for f in fetched],
                table=table_entry, schema=info.schema,
            ))
            croissant.validate(doc, files_dir=files_dir)
            version = DatasetVersion.objects.create(
                dataset=record, number=number, manifest_hash=manifest,
                table_path=table_relative, table_sha256=table_entry.sha256,
                n_rows=info.n_rows, size_bytes=sum(f.size_bytes for f in fetched),
                schema=info.schema, transform_sql=transform_sql,
                sources=[{"name": f.name, "source": f.source} for f in fetched],
                croissant=doc,
            )
            DatasetFile.objects.bulk_create(
                DatasetFile(version=version, name=f.name, sha256=f.sha256,
                            size_bytes=f.size_bytes, source=f.source,
                            encoding_format=f.encoding_format)
                for f in fetched
            )
            table_final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(table, table_final)
            placed = True
        logger.info("dataset %s: version %s created (%s rows, manifest %s)",
                    dataset, number, info.n_rows, manifest[:12])
        return version, True
    except BaseException:
        if placed:
            shutil.rmtree(table_final.parent, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _new_blobs_removed_on_error() -> Iterator[list[FetchedFile]]:
    """Collects fetched files; on error, removes the blobs this call added."""
    fetched: list[FetchedFile] = []
    try:
        yield fetched
    except BaseException:
        for file in fetched:
            if file.created:
                _remove_unused_blob(file)
        raise


def _remove_unused_blob(file: FetchedFile) -> None:
    try:
        # Another version may have registered the same bytes meanwhile.
        if DatasetFile.objects.filter(sha256=file.sha256).exists():
            return
    except DatabaseError:
        logger.exception("cannot tell whether blob %s is used; kept", file.sha256)
        return
    file.path.unlink(missing_ok=True)
    with suppress(OSError):
        file.path.parent.rmdir()  # only when empty


def _linked_files(folder: Path, fetched: list[FetchedFile], table: Path) -> Path:
    """A folder where the Croissant's contentUrls resolve (links to the blobs)."""
    folder.mkdir()
    for file in fetched:
        (folder / file.name).symlink_to(file.path)
    (folder / croissant.TABLE_FILE).symlink_to(table)
    return folder


def _check_declared_hash(entry: croissant.CroissantFile, file: FetchedFile) -> None:
    if entry.sha256:
        if entry.sha256.lower() != file.sha256:
            raise InvalidDataset(f"{entry.path}: sha256 is {file.sha256}, but the Croissant "
                                 f"file says {entry.sha256}")
        return
    if entry.md5:
        md5 = hashlib.md5(usedforsecurity=False)
        with open(file.path, "rb") as f:
            for chunk in iter(lambda: f.read(fetching.CHUNK), b""):
                md5.update(chunk)
        if md5.hexdigest() != entry.md5.lower():
            raise InvalidDataset(f"{entry.path}: md5 is {md5.hexdigest()}, but the Croissant "
                                 f"file says {entry.md5}")
        return
    raise InvalidDataset(f"{entry.path}: the Croissant file gives no sha256 (or md5) for it")


def _check_dataset_name(name: str) -> None:
    if not _DATASET_NAME.fullmatch(name or ""):
        raise InvalidDataset(f"dataset name {name!r} may only have letters, digits, '_' "
                             "and '-' (at most 100)")


def _check_file_names(fetched: list[FetchedFile]) -> None:
    seen = set()
    for file in fetched:
        if file.name == croissant.TABLE_FILE:
            raise InvalidDataset(f"{file.name}: this name is kept for the built table; "
                                 "rename the file")
        if file.name in seen:
            raise InvalidDataset(f"two files are named {file.name}; file names must differ")
        seen.add(file.name)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
