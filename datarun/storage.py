"""Files on disk: content-addressed blobs and per-problem folders; and the
artifact storage of runs.

Everything lives under ``settings.DATARUN_STORAGE_DIR``; records in the
database name files by sha256 or by a path relative to that root. Run
artifacts (submission files, predictions) go to the ``artifacts`` storage of
``settings.STORAGES`` when one is configured (any S3-compatible store through
django-storages), else to ``artifacts/`` under the storage root.
"""
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

from datarun.contract import sha256_file  # noqa: F401  (storage.sha256_file)


def root() -> Path:
    return Path(settings.DATARUN_STORAGE_DIR)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


# One storage per folder: contributivity reads 50,000 artifacts in a row.
_local_artifacts: dict[Path, FileSystemStorage] = {}


def artifacts() -> Storage:
    """Where run artifacts are kept."""
    if "artifacts" in settings.STORAGES:
        return storages["artifacts"]
    location = root() / "artifacts"
    if location not in _local_artifacts:
        _local_artifacts[location] = FileSystemStorage(location=location)
    return _local_artifacts[location]


def artifacts_are_local() -> bool:
    """Whether run artifacts are files on this machine (not an S3 bucket,
    where each read is a network round trip)."""
    return isinstance(artifacts(), FileSystemStorage)


def artifact_key(evaluation_id: int, name: str) -> str:
    return f"runs/{evaluation_id}/{name}"


def artifact_put(key: str, data: bytes) -> None:
    """Write ``data`` under ``key``, replacing what a superseded attempt left.

    On the file system the new content replaces the old in one rename, so a
    reader (the scoring task) sees the old file or the new one, never a
    missing or half-written one."""
    store = artifacts()
    if isinstance(store, FileSystemStorage):
        path = Path(store.path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    if store.exists(key):
        store.delete(key)
    saved = store.save(key, ContentFile(data))
    if saved != key:  # a storage that renames instead of replacing
        raise RuntimeError(f"artifact storage saved {key} as {saved}")


def artifact_get(key: str) -> bytes:
    store = artifacts()
    if isinstance(store, FileSystemStorage):  # without Django's File wrapper
        return Path(store.path(key)).read_bytes()
    with store.open(key, "rb") as f:
        return f.read()


def predictions_name(fold_index: int, which: str) -> str:
    """``which`` is ``train`` (every training row) or ``test``."""
    return f"fold_{fold_index}/y_pred_{which}.npy"


def predictions_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load_predictions(evaluation_id: int, fold_index: int, which: str) -> np.ndarray:
    data = artifact_get(artifact_key(evaluation_id, predictions_name(fold_index, which)))
    return np.load(io.BytesIO(data), allow_pickle=False)


def load_many_predictions(evaluation_ids: Iterable[int], fold_index: int, which: str
                          ) -> Iterable[np.ndarray]:
    """``load_predictions`` of many evaluations in a row (contributivity reads
    one fold of every submission of an event), at a fraction of the cost.

    The files are the platform's own (``predictions_bytes`` of checked
    arrays), so the arrays of one problem share their ``.npy`` header: each
    distinct header is parsed once, by numpy, and the rest are read as plain
    buffers; on the file system the folder is resolved once too."""
    name = predictions_name(fold_index, which)
    store = artifacts()
    base = store.path("runs") if isinstance(store, FileSystemStorage) else None
    headers: dict[bytes, tuple[int, np.dtype, tuple, str]] = {}
    for evaluation_id in evaluation_ids:
        if base is None:
            data = artifact_get(artifact_key(evaluation_id, name))
        else:
            with open(f"{base}/{evaluation_id}/{name}", "rb") as f:
                data = f.read()
        header = _npy_header(data)
        known = headers.get(header)
        if known is None:
            array = np.load(io.BytesIO(data), allow_pickle=False)
            if array.dtype.hasobject or not header:
                yield array
                continue
            known = headers[header] = (len(header), array.dtype, array.shape,
                                       "F" if np.isfortran(array) else "C")
            yield array
            continue
        offset, dtype, shape, order = known
        yield np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape, order=order)


def _npy_header(data: bytes) -> bytes:
    """The magic, version, length and header dict of an ``.npy`` file (what
    decides how its data is read), or b"" when it is not one."""
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        return b""
    if data[6] == 1:
        end = 10 + int.from_bytes(data[8:10], "little")
    else:
        end = 12 + int.from_bytes(data[8:12], "little")
    return data[:end]
