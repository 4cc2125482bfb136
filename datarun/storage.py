"""Files on disk: content-addressed blobs and per-problem folders.

Everything lives under ``settings.DATARUN_STORAGE_DIR``; records in the
database name files by sha256 or by a path relative to that root.
"""
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings


def root() -> Path:
    return Path(settings.DATARUN_STORAGE_DIR)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def blob_path(digest: str) -> Path:
    return root() / "blobs" / digest[:2] / digest


def blob_put(data: bytes) -> str:
    """Store ``data`` once under its sha256 and return the digest."""
    digest = sha256_bytes(data)
    path = blob_path(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so that a reader never sees half a blob.
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return digest


def blob_put_stream(chunks: Iterable[bytes]) -> tuple[str, int, bool]:
    """Store a stream of bytes once under its sha256, never holding it whole.

    Returns ``(digest, size, created)``; ``created`` is False when the blob
    was already there. An exception raised by ``chunks`` (a size limit, a
    network error) leaves no temporary file behind.
    """
    tmp_dir = root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="blob-")
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                h.update(chunk)
                f.write(chunk)
                size += len(chunk)
        digest = h.hexdigest()
        path = blob_path(digest)
        if path.exists():
            return digest, size, False
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
        return digest, size, True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def blob_put_file(path: Path) -> str:
    """Copy the file at ``path`` into the blob store, hashing it on the way."""
    with open(path, "rb") as f:
        return blob_put_stream(iter(lambda: f.read(1 << 20), b""))[0]


def blob_get(digest: str) -> bytes:
    return blob_path(digest).read_bytes()


def resolve(relative: str) -> Path:
    return root() / relative


def evaluation_dir(evaluation_id: int) -> Path:
    return root() / "evaluations" / str(evaluation_id)


def fold_predictions_dir(evaluation_id: int, fold_index: int) -> Path:
    return evaluation_dir(evaluation_id) / f"fold_{fold_index}"
