"""Dataset sources: fetch a file from a server path, an http(s) URL or S3 into
the content-addressed blob store, hashing it on the way (uses Django settings).

Every source ends up as a local blob named by its sha256, so that DuckDB only
ever reads local files and the same bytes always give the same digest,
wherever they came from. Bytes are streamed in 1 MiB chunks: no source is ever
held whole in memory.
"""
import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from datarun import storage
from datarun.errors import InvalidDataset

CHUNK = 1 << 20

# File name suffix -> Croissant encodingFormat; DuckDB picks its reader by suffix too.
ENCODINGS = {
    ".csv": "text/csv",
    ".csv.gz": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".tsv.gz": "text/tab-separated-values",
    ".parquet": "application/x-parquet",
    ".jsonl": "application/jsonlines",
    ".ndjson": "application/jsonlines",
    ".json": "application/json",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class FetchedFile:
    """A source file now held in the blob store."""

    name: str
    path: Path
    sha256: str
    size_bytes: int
    source: str
    # True when this fetch added the blob (so a failed version may remove it).
    created: bool = False

    @property
    def encoding_format(self) -> str:
        return encoding_format(self.name)


def encoding_format(name: str) -> str:
    """The Croissant encodingFormat of a file, from its name."""
    lower = name.lower()
    for suffix in sorted(ENCODINGS, key=len, reverse=True):
        if lower.endswith(suffix):
            return ENCODINGS[suffix]
    raise InvalidDataset(
        f"{name}: unsupported file type; name files with one of "
        f"{', '.join(sorted(ENCODINGS))}"
    )


def check_file_name(name: str) -> str:
    """Refuse names that are unsafe or whose type DuckDB cannot tell."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidDataset(
            f"file name {name!r} may only have letters, digits, '.', '_' and '-' "
            "(no folders), and must start with a letter or digit"
        )
    encoding_format(name)
    return name


def fetch(source: str, *, allowed_paths: list[str] | None) -> FetchedFile:
    """Fetch ``source`` into the blob store.

    Parameters
    ----------
    source : str
        A server path (absolute, relative to the working directory, or
        ``file://``), an ``http(s)://`` URL or ``s3://bucket/key``.
    allowed_paths : list of str or None
        Folders a server path must lie in (after resolving symbolic links);
        None allows any path (the trusted command line).

    Raises
    ------
    InvalidDataset
        Naming the source and the cause: refused path, unreachable host,
        HTTP error, timeout, missing S3 object, file over the size limit.
    """
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(source)
    if scheme == "s3":
        return _fetch_s3(source)
    if scheme in ("", "file"):
        return _fetch_path(source, allowed_paths)
    raise InvalidDataset(f"{source}: unsupported source; use a server path, an http(s):// "
                         "URL or an s3://bucket/key URL")


def store_upload(name: str, data: bytes | BinaryIO) -> FetchedFile:
    """Put an upload (bytes, or a binary file object read in chunks) into the blob store."""
    chunks = [data] if isinstance(data, bytes) else iter(lambda: data.read(CHUNK), b"")
    return _store(name, "upload", chunks, label=name)


def _store(name: str, source: str, chunks: Iterable[bytes], *, label: str = "") -> FetchedFile:
    check_file_name(name)
    digest, size, created = storage.blob_put_stream(_capped(label or source, chunks))
    return FetchedFile(name=name, path=storage.blob_path(digest), sha256=digest,
                       size_bytes=size, source=source, created=created)


def _capped(source: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        _check_size(source, total)
        yield chunk


def _check_size(what: str, size: int) -> None:
    limit = settings.DATARUN_DATASET_MAX_BYTES
    if size > limit:
        raise InvalidDataset(f"{what}: larger than the {limit:,}-byte limit "
                             "(DATARUN_DATASET_MAX_BYTES)")


def _name_from_url_path(source: str, url_path: str) -> str:
    name = urllib.parse.unquote(url_path.rstrip("/").rsplit("/", 1)[-1])
    if not name:
        raise InvalidDataset(f"{source}: the URL names no file; end it with the file name "
                             "(e.g. .../train.csv)")
    return name


# --- server paths -------------------------------------------------------------

def _fetch_path(source: str, allowed_paths: list[str] | None) -> FetchedFile:
    raw = urllib.parse.unquote(urllib.parse.urlsplit(source).path) \
        if source.lower().startswith("file:") else source
    path = Path(raw).expanduser().resolve()
    if allowed_paths is not None and not any(
        path.is_relative_to(Path(allowed).resolve()) for allowed in allowed_paths
    ):
        raise InvalidDataset(
            f"{source}: server paths must lie under one of the folders in "
            f"DATARUN_DATASET_PATHS ({', '.join(allowed_paths) or 'none configured'}); "
            "upload the file instead"
        )
    if not path.is_file():
        raise InvalidDataset(f"{source}: no such file")
    _check_size(source, path.stat().st_size)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise InvalidDataset(f"{source}: cannot read it ({exc.strerror})") from exc
    with f:
        return _store(path.name, source, iter(lambda: f.read(CHUNK), b""))


# --- http(s) ------------------------------------------------------------------

def _fetch_http(source: str) -> FetchedFile:
    name = _name_from_url_path(source, urllib.parse.urlsplit(source).path)
    check_file_name(name)
    timeout = settings.DATARUN_FETCH_TIMEOUT_S
    request = urllib.request.Request(source, headers={"User-Agent": "datarun"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None:
                _check_size(source, expected)
            chunks = iter(lambda: response.read(CHUNK), b"")
            return _store(name, source, _complete(source, chunks, expected))
    except urllib.error.HTTPError as exc:
        raise InvalidDataset(f"{source}: the server answered HTTP {exc.code} "
                             f"{exc.reason}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise InvalidDataset(f"{source}: no answer within {timeout:g} s "
                                 "(DATARUN_FETCH_TIMEOUT_S)") from exc
        raise InvalidDataset(f"{source}: cannot reach the server ({exc.reason})") from exc
    except TimeoutError as exc:
        raise InvalidDataset(f"{source}: no data for {timeout:g} s "
                             "(DATARUN_FETCH_TIMEOUT_S)") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise InvalidDataset(f"{source}: the download failed ({exc!r})") from exc


def _complete(source: str, chunks: Iterable[bytes], expected: int | None) -> Iterator[bytes]:
    """The chunks, then an error if fewer bytes came than announced (a cut
    connection ends the stream early without an error of its own)."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        yield chunk
    if expected is not None and total != expected:
        raise InvalidDataset(f"{source}: the download stopped after {total:,} of "
                             f"{expected:,} bytes")


# --- S3 -----------------------------------------------------------------------

def _fetch_s3(source: str) -> FetchedFile:
    parts = urllib.parse.urlsplit(source)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise InvalidDataset(f"{source}: an S3 source is s3://bucket/key")
    name = _name_from_url_path(source, key)
    check_file_name(name)

    import boto3  # slow to import; only S3 sources need it
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    timeout = settings.DATARUN_FETCH_TIMEOUT_S
    client = boto3.client(
        "s3",
        endpoint_url=settings.DATARUN_S3_ENDPOINT_URL or None,
        region_name=settings.DATARUN_S3_REGION,
        config=Config(connect_timeout=timeout, read_timeout=timeout,
                      retries={"max_attempts": 2}),
    )
    try:
        obj = client.get_object(Bucket=bucket, Key=key)
        _check_size(source, obj.get("ContentLength") or 0)
        return _store(name, source, obj["Body"].iter_chunks(CHUNK))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise InvalidDataset(f"{source}: S3 answered {error.get('Code', '?')} "
                             f"({error.get('Message', exc)})") from exc
    except BotoCoreError as exc:
        raise InvalidDataset(f"{source}: S3 fetch failed ({exc})") from exc
