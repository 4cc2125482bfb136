"""Croissant 1.1 JSON-LD for dataset versions: build, validate, read.

No Django here. mlcroissant is slow to import, so only :func:`validate`
imports it, when a version is created. Validation is offline: the
``@context`` is written inline (Croissant's standard context, as mlcroissant
1.1 writes it), so no JSON-LD processor ever fetches one, and mlcroissant is
given the description itself, never a URL.

A version's description lists every source file and the materialised table
(``table.parquet``) as FileObjects with their sha256, and one RecordSet,
``records``, whose fields are the table's columns with Croissant types taken
from DuckDB's. :func:`with_splits` adds the split names as a ``cr:Split``
RecordSet (and, when given, the per-row split table).
"""
import copy
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from datarun.errors import InvalidDataset

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
TABLE_FILE = "table.parquet"
RECORDS = "records"
SPLITS = "splits"
PARQUET = "application/x-parquet"

CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

# Croissant's standard split URLs; other split names keep their own name.
_SPLIT_URLS = {"train": "cr:TrainingSplit", "training": "cr:TrainingSplit",
               "valid": "cr:ValidationSplit", "validation": "cr:ValidationSplit",
               "test": "cr:TestSplit"}


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size_bytes: int
    encoding_format: str


@dataclass(frozen=True)
class VersionDescription:
    """What a version's Croissant says (a DatasetVersion's data, before it exists)."""

    dataset: str
    number: int
    files: list[FileEntry]
    table: FileEntry
    schema: list[dict]
    title: str = ""
    description: str = ""
    license: str = ""
    url: str = ""
    cite_as: str = ""
    date_published: str = ""


@dataclass(frozen=True)
class CroissantFile:
    """A FileObject of an existing Croissant file, resolved to a local path."""

    name: str
    path: Path
    encoding_format: str
    sha256: str = ""
    md5: str = ""


@dataclass(frozen=True)
class CroissantDataset:
    name: str
    description: str
    files: list[CroissantFile]
    license: str = ""
    url: str = ""
    cite_as: str = ""
    doc: dict = field(default_factory=dict, repr=False)


def data_type(duckdb_type: str) -> str:
    """The Croissant (schema.org) data type of a DuckDB column type."""
    t = duckdb_type.upper()
    if t == "BOOLEAN":
        return "sc:Boolean"
    if t.endswith("INT") or t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"):
        return "sc:Integer"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "sc:Float"
    if t == "DATE":
        return "sc:Date"
    if t.startswith("TIMESTAMP"):
        return "sc:DateTime"
    if t.startswith("TIME"):
        return "sc:Time"
    return "sc:Text"


def build(version: VersionDescription) -> dict:
    """The Croissant JSON-LD of one dataset version."""
    doc = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": version.dataset,
        "description": version.description or version.title
        or f"Dataset {version.dataset}, version {version.number}.",
        "version": f"{version.number}.0.0",
    }
    if version.title and version.title != version.dataset:
        doc["alternateName"] = version.title
    for key, value in [("datePublished", version.date_published), ("license", version.license),
                       ("url", version.url), ("citeAs", version.cite_as)]:
        if value:
            doc[key] = value
    doc["distribution"] = [_file_object(f) for f in [*version.files, version.table]]
    doc["recordSet"] = [{
        "@type": "cr:RecordSet",
        "@id": RECORDS,
        "name": RECORDS,
        "description": f"The rows of {TABLE_FILE}: the table built from the source files.",
        "field": [_field(RECORDS, column["name"], data_type(column["type"]),
                         TABLE_FILE, f"DuckDB type {column['type']}")
                  for column in version.schema],
    }]
    return doc


def with_splits(doc: dict, split_names: list[str], *, table: FileEntry | None = None) -> dict:
    """``doc`` plus a ``cr:Split`` RecordSet naming ``split_names``.

    With ``table`` (a Parquet file with columns ``row`` and ``split``), it is
    added as a FileObject with a RecordSet ``split_assignment`` whose
    ``split`` field references the split names.
    """
    doc = copy.deepcopy(doc)
    record_sets = [rs for rs in doc.get("recordSet", [])
                   if rs.get("@id") not in (SPLITS, "split_assignment")]
    record_sets.append({
        "@type": "cr:RecordSet",
        "@id": SPLITS,
        "name": SPLITS,
        "dataType": "cr:Split",
        "key": {"@id": f"{SPLITS}/name"},
        "field": [
            {"@type": "cr:Field", "@id": f"{SPLITS}/name", "name": "name",
             "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": f"{SPLITS}/url", "name": "url",
             "dataType": "sc:URL"},
        ],
        "data": [{f"{SPLITS}/name": name, f"{SPLITS}/url": _SPLIT_URLS.get(name, name)}
                 for name in split_names],
    })
    if table is not None:
        doc["distribution"] = [f for f in doc.get("distribution", [])
                               if f.get("@id") != table.name] + [_file_object(table)]
        split_field = _field("split_assignment", "split", "sc:Text", table.name,
                             "the split this row belongs to")
        split_field["references"] = {"field": {"@id": f"{SPLITS}/name"}}
        record_sets.append({
            "@type": "cr:RecordSet",
            "@id": "split_assignment",
            "name": "split_assignment",
            "description": f"The split of each row of {TABLE_FILE}, by row number.",
            "field": [_field("split_assignment", "row", "sc:Integer", table.name,
                             "row number in the table, from 0"), split_field],
        })
    doc["recordSet"] = record_sets
    return doc


def validate(doc: dict, *, files_dir: Path | None = None) -> None:
    """Check ``doc`` with mlcroissant (offline) and that its local files exist.

    Raises
    ------
    InvalidDataset
        With mlcroissant's errors (its warnings, e.g. a missing licence, pass),
        or naming a FileObject whose file is not in ``files_dir``.
    """
    import mlcroissant as mlc  # slow to import: only when a version is made

    if not isinstance(doc.get("@context"), dict):
        # A context given by URL would be fetched: refuse rather than go online.
        raise InvalidDataset("the Croissant @context must be written inline (a JSON "
                             "object), as Croissant's own examples do, not a URL")
    from absl import logging as absl_logging

    # mlcroissant logs its warnings (no licence, no citation) on every call;
    # they are recommendations, not errors: keep them out of the logs.
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        mlc.Dataset(jsonld=json.loads(json.dumps(doc)))
    except mlc.ValidationError as exc:
        # Its message lists the errors, then the warnings (left out here).
        lines = str(exc).splitlines()
        cut = next((i for i, line in enumerate(lines) if i and "warning(s)" in line), None)
        errors = "\n".join(lines[:cut])
        raise InvalidDataset(f"the Croissant description is not valid: {errors}") from exc
    finally:
        absl_logging.set_verbosity(verbosity)
    if files_dir is not None:
        for entry in _file_objects(doc):
            url = entry.get("contentUrl", "")
            if _is_local(url) and not (Path(files_dir) / urllib.parse.unquote(url)).is_file():
                raise InvalidDataset(f"{url}: listed in the Croissant description, "
                                     f"but not found in {files_dir}")


def read(path: Path) -> CroissantDataset:
    """Read an existing Croissant file whose FileObjects are local files.

    ``contentUrl`` values are relative to the JSON file's folder. FileSets,
    files inside archives and remote URLs are refused with a message.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidDataset(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(doc, dict):
        raise InvalidDataset(f"{path}: a Croissant file holds one JSON object")
    validate(doc, files_dir=path.parent)
    files = []
    for entry in doc.get("distribution", []):
        kind = _type_of(entry)
        label = entry.get("@id") or entry.get("name") or "?"
        if kind.endswith("FileSet"):
            raise InvalidDataset(f"{label}: FileSets are not supported; list each file as a "
                                 "FileObject with its contentUrl and sha256")
        if entry.get("containedIn"):
            raise InvalidDataset(f"{label}: files inside archives are not supported; "
                                 "extract them and list each as a FileObject")
        url = entry.get("contentUrl", "")
        if not _is_local(url):
            raise InvalidDataset(f"{label}: contentUrl {url!r} is not a local file; "
                                 "give a path relative to the Croissant file")
        local = (path.parent / urllib.parse.unquote(url)).resolve()
        files.append(CroissantFile(
            name=local.name, path=local,
            encoding_format=_first(entry.get("encodingFormat")) or "",
            sha256=entry.get("sha256", ""), md5=entry.get("md5", ""),
        ))
    if not files:
        raise InvalidDataset(f"{path}: the Croissant description lists no FileObject")
    return CroissantDataset(
        name=_text(doc.get("name")), description=_text(doc.get("description")),
        license=_text(_first(doc.get("license"))), url=_text(doc.get("url")),
        cite_as=_text(doc.get("citeAs")), files=files, doc=doc,
    )


def _file_object(entry: FileEntry) -> dict:
    return {
        "@type": "cr:FileObject",
        "@id": entry.name,
        "name": entry.name,
        "contentUrl": urllib.parse.quote(entry.name),
        "contentSize": f"{entry.size_bytes} B",
        "encodingFormat": entry.encoding_format,
        "sha256": entry.sha256,
    }


def _field(record_set: str, column: str, data_type_: str, file_id: str,
           description: str) -> dict:
    return {
        "@type": "cr:Field",
        # Ids may not hold spaces: quote the column name in the id only.
        "@id": f"{record_set}/{urllib.parse.quote(column, safe='')}",
        "name": column,
        "description": description,
        "dataType": data_type_,
        "source": {"fileObject": {"@id": file_id}, "extract": {"column": column}},
    }


def _file_objects(doc: dict) -> list[dict]:
    return [e for e in doc.get("distribution", []) if _type_of(e).endswith("FileObject")]


def _type_of(entry: dict) -> str:
    return str(_first(entry.get("@type")) or "")


def _is_local(url: str) -> bool:
    return bool(url) and not urllib.parse.urlsplit(url).scheme and not url.startswith("/")


def _first(value):
    return value[0] if isinstance(value, list) and value else value


def _text(value) -> str:
    # Croissant 1.1 allows language maps: {"en": "..."}.
    if isinstance(value, dict):
        value = value.get("en") or next(iter(value.values()), "")
    return str(value or "")
