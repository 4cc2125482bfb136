"""The data a participant downloads: a public training set and a public test
set, never the private test data (no Django).

A RAMP kit's ``get_test_data`` reads the *private* test set, which stays on
the trusted side. So that the downloaded kit still runs with ``datarun
test`` and ``ramp-test`` as is, the kit ships a public split instead:

- **organiser-provided**: the files of the kit's ``public_data/`` folder
  become the download's ``data/`` (as ramp-board's public kits do);
- **carved** otherwise: fold 0 of the problem's own ``get_cv`` on the
  training data, its training rows written as ``data/train*`` and its
  validation rows as ``data/test*``, in the kit's own file format (CSV,
  gzip/bzip2 CSV or ``.npy``, one row per sample, in the training data's
  order).

Either way the public files are loaded once with the kit's own
``get_train_data`` / ``get_test_data`` to check that they work, and the
result is recorded in ``public/split.json`` of the prepared problem (and in
the download as ``public_split.json``).
"""
import bz2
import csv
import gzip
import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

ORGANISER_FOLDER = "public_data"
PUBLIC_DIR = "public"
RECORD_FILE = "split.json"
# In the downloaded kit, next to limits.json.
KIT_RECORD_FILE = "public_split.json"
CARVED_FOLD = 0

CARVED_RULE = (f"fold {CARVED_FOLD} of the problem's get_cv on the training data: its "
               "training rows are data/train*, its validation rows data/test*")


class CannotCarve(Exception):
    """The training files cannot be split by row (the message says why)."""


def carve_rows(data: bytes, file_name: str, n_rows: int,
               parts: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Split one training file by row: ``{part: bytes}`` holding, for each
    part, the rows at its indices (kept in the file's order).

    ``n_rows`` is the number of samples the kit's ``get_train_data`` returns;
    a file with another number of rows cannot be carved.
    """
    opener = _TEXT_CODECS.get(Path(file_name).suffix)
    if file_name.endswith(".npy"):
        array = np.load(io.BytesIO(data), allow_pickle=False)
        _check_rows(file_name, len(array), n_rows)
        out = {}
        for part, indices in parts.items():
            buffer = io.BytesIO()
            np.save(buffer, array[np.sort(indices)], allow_pickle=False)
            out[part] = buffer.getvalue()
        return out
    if not (file_name.endswith(".csv") or (opener and file_name[:-len(
            Path(file_name).suffix)].endswith(".csv"))):
        raise CannotCarve(f"{file_name} is neither CSV (.csv, .csv.gz, .csv.bz2) nor .npy")
    decompress, compress = opener or (bytes, bytes)
    text = decompress(data).decode("utf-8")
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records:
        raise CannotCarve(f"{file_name} is empty")
    header, rows = records[0], [r for r in records[1:] if r]
    _check_rows(file_name, len(rows), n_rows)
    out = {}
    for part, indices in parts.items():
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[i] for i in np.sort(indices))
        out[part] = compress(buffer.getvalue().encode("utf-8"))
    return out


_TEXT_CODECS = {
    ".gz": (gzip.decompress, lambda b: gzip.compress(b, mtime=0)),
    ".bz2": (bz2.decompress, bz2.compress),
}


def _check_rows(file_name: str, found: int, expected: int) -> None:
    if found != expected:
        raise CannotCarve(f"{file_name} has {found} rows but get_train_data returns "
                          f"{expected} samples, so its rows cannot be matched to samples")


def write_public_data(kit_dir: Path, out_dir: Path, *, problem, n_train: int,
                      fold: tuple[np.ndarray, np.ndarray]) -> dict:
    """Write the participants' ``data/`` under ``out_dir`` and return the
    record (also written as ``out_dir/split.json``).

    ``kit_dir`` is the kit, ``problem`` its imported ``problem.py``,
    ``n_train`` its number of training samples and ``fold`` fold
    :data:`CARVED_FOLD`'s (train, valid) indices. A kit whose public split
    cannot be made gets a record with ``source: "none"`` and the reason.
    """
    kit_dir, out_dir = Path(kit_dir), Path(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".public-", dir=out_dir.parent))
    try:
        data_dir = staging / "data"
        data_dir.mkdir()
        try:
            record = _write(kit_dir, data_dir, n_train=n_train, fold=fold)
            record.update(_check_loads(problem, staging))
        except CannotCarve as exc:
            shutil.rmtree(data_dir)
            record = {"source": "none", "reason": str(exc)}
        record["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                           for p in sorted(data_dir.glob("*"))} if data_dir.is_dir() else {}
        (staging / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def _write(kit_dir: Path, data_dir: Path, *, n_train: int,
           fold: tuple[np.ndarray, np.ndarray]) -> dict:
    organiser = kit_dir / ORGANISER_FOLDER
    if organiser.is_dir():
        files = [p for p in sorted(organiser.iterdir()) if p.is_file()]
        if not any(p.name.startswith("test") for p in files):
            raise CannotCarve(f"{ORGANISER_FOLDER}/ holds no test* file (the public test set)")
        for path in files:
            shutil.copyfile(path, data_dir / path.name)
        return {"source": "organiser",
                "rule": f"the organiser's {ORGANISER_FOLDER}/ folder, as data/"}
    train_files = sorted(p for p in (kit_dir / "data").glob("train*") if p.is_file())
    if not train_files:
        raise CannotCarve("the kit's data/ holds no train* file to carve a public test set from")
    train_is, valid_is = fold
    for path in train_files:
        parts = carve_rows(path.read_bytes(), path.name, n_train,
                           {"train": train_is, "test": valid_is})
        (data_dir / path.name).write_bytes(parts["train"])
        (data_dir / ("test" + path.name[len("train"):])).write_bytes(parts["test"])
    return {"source": "carved", "rule": CARVED_RULE, "fold": CARVED_FOLD}


def _check_loads(problem, root: Path) -> dict:
    """Load the public files with the kit's own functions, as ``ramp-test`` would."""
    try:
        _, y_train = problem.get_train_data(str(root))
        _, y_test = problem.get_test_data(str(root))
    except Exception as exc:  # noqa: BLE001 - the organiser's code on the public files
        raise CannotCarve(f"the kit's get_train_data / get_test_data failed on the public "
                          f"files: {type(exc).__name__}: {exc}") from exc
    return {"n_train": len(y_train), "n_test": len(y_test)}


def read_record(public_dir: Path) -> dict | None:
    """The record written by :func:`write_public_data`, or None when there is none yet."""
    try:
        return json.loads((Path(public_dir) / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
