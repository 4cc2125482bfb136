"""Dataset sources: fetch a file from a server path, an http(s) URL or S3 into
the content-addressed blob store, hashing it on the way (uses Django settings).

Every source ends up as a local blob named by its sha256, so that DuckDB only
ever reads local files and the same bytes always give the same digest,
wherever they came from. Bytes are streamed in 1 MiB chunks: no source is ever
held whole in memory.
"""
import http.client
import ipaddress
import re
import socket
import urllib.parse
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

# Redirects followed, each hop checked like the first URL.
MAX_REDIRECTS = 5


def _fetch_http(source: str) -> FetchedFile:
    """Fetch an http(s) URL from a public address only (or one the allow-list
    names): every hop's host is resolved, checked, and connected to at the
    checked address, so that neither a redirect nor a second DNS answer leads
    to the platform's own network. A failure to connect says the same thing
    whatever its cause (it would tell closed ports from open ones)."""
    name = _name_from_url_path(source, urllib.parse.urlsplit(source).path)
    check_file_name(name)
    timeout = settings.DATARUN_FETCH_TIMEOUT_S
    url = source
    for _hop in range(MAX_REDIRECTS + 1):
        connection = _pinned_connection(source, url, timeout)
        parts = urllib.parse.urlsplit(url)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        try:
            try:
                connection.connect()
                connection.request("GET", target, headers={"User-Agent": "datarun"})
                response = connection.getresponse()
            except TimeoutError as exc:
                if connection.sock is None:  # not even connected
                    raise InvalidDataset(f"{source}: cannot reach the server") from exc
                raise InvalidDataset(f"{source}: no answer within {timeout:g} s "
                                     "(DATARUN_FETCH_TIMEOUT_S)") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise InvalidDataset(f"{source}: cannot reach the server") from exc
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                url = urllib.parse.urljoin(url, response.getheader("Location"))
                continue
            if response.status != 200:
                raise InvalidDataset(f"{source}: the server answered HTTP {response.status} "
                                     f"{response.reason}")
            return _read_http(source, name, response, timeout)
        finally:
            connection.close()
    raise InvalidDataset(f"{source}: more than {MAX_REDIRECTS} redirects")


def _read_http(source: str, name: str, response, timeout: float) -> FetchedFile:
    length = response.getheader("Content-Length")
    expected = int(length) if length and length.isdigit() else None
    if expected is not None:
        _check_size(source, expected)
    chunks = iter(lambda: response.read(CHUNK), b"")
    try:
        return _store(name, source, _complete(source, chunks, expected))
    except TimeoutError as exc:
        raise InvalidDataset(f"{source}: no data for {timeout:g} s "
                             "(DATARUN_FETCH_TIMEOUT_S)") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise InvalidDataset(f"{source}: the download broke off") from exc


def _pinned_connection(source: str, url: str, timeout: float) -> http.client.HTTPConnection:
    """A connection to the URL's host at an address checked by ``fetch_address``."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidDataset(f"{source}: only http(s) URLs are fetched")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidDataset(f"{source}: invalid port in {url}") from exc
    address = fetch_address(source, parts.hostname, port)
    if scheme == "https":
        return _PinnedHTTPSConnection(parts.hostname, port, address=address, timeout=timeout)
    return _PinnedHTTPConnection(parts.hostname, port, address=address, timeout=timeout)


def fetch_address(source: str, host: str, port: int) -> str:
    """The address to connect to for ``host``: the first it resolves to, when
    every address it resolves to is public or in DATARUN_FETCH_ALLOWED_NETWORKS
    (loopback, private, link-local, multicast and reserved ones are not)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidDataset(f"{source}: cannot reach the server") from exc
    addresses = [info[4][0] for info in infos]
    allowed = [ipaddress.ip_network(n, strict=False)
               for n in settings.DATARUN_FETCH_ALLOWED_NETWORKS]
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        public = ip.is_global and not ip.is_multicast
        if not public and not any(ip.version == n.version and ip in n for n in allowed):
            raise InvalidDataset(
                f"{source}: {host} is not a public address; only public hosts are fetched "
                "(an organiser may allow networks in DATARUN_FETCH_ALLOWED_NETWORKS)")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a checked address, whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above, with TLS checked against the host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


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
