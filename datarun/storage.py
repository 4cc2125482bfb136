"""Files on disk: content-addressed blobs and per-problem folders.

Everything lives under ``settings.DATARUN_STORAGE_DIR``; records in the
database name files by sha256 or by a path relative to that root.
"""
import hashlib
import os
import tempfile
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


def blob_get(digest: str) -> bytes:
    return blob_path(digest).read_bytes()


def resolve(relative: str) -> Path:
    return root() / relative


def evaluation_dir(evaluation_id: int) -> Path:
    return root() / "evaluations" / str(evaluation_id)


def fold_predictions_dir(evaluation_id: int, fold_index: int) -> Path:
    return evaluation_dir(evaluation_id) / f"fold_{fold_index}"
