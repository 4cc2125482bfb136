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
  order); other ``train*`` files (stored folds) are copied as is;
- **carved, overlapping** when the kit's ``get_cv`` needs every training
  row (a declarative problem's stored folds): the whole training set, and
  fold 0's validation rows as ``data/test*`` (documented as optimistic).

Either way the public files are loaded once with the kit's own
``get_train_data``, ``get_test_data`` and ``get_cv`` to check that they
work (else the next way is tried, and in the end ``source: "none"`` with
the reasons), and the
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
import zipfile
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
OVERLAPPING_RULE = (
    f"the validation rows of fold {CARVED_FOLD} of the problem's get_cv, next to the whole "
    "training set (the kit's get_cv needs every training row): data/test* rows are also in "
    "data/train*, so local test scores are optimistic")
ROW_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".npy")


class CannotCarve(Exception):
    """The training files cannot be split by row (the message says why)."""


def carve_rows(data: bytes, file_name: str, n_rows: int,
               parts: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Split one training file by row: ``{part: bytes}`` holding, for each
    part, the rows at its indices (kept in the file's order).

    ``n_rows`` is the number of samples the kit's ``get_train_data`` returns;
    a file with another number of rows, or that cannot be read, raises
    :class:`CannotCarve`.
    """
    if not file_name.endswith(ROW_SUFFIXES):
        raise CannotCarve(f"{file_name} is neither CSV (.csv, .csv.gz, .csv.bz2) nor .npy")
    try:
        if file_name.endswith(".npy"):
            return _carve_npy(data, file_name, n_rows, parts)
        return _carve_csv(data, file_name, n_rows, parts)
    except (ValueError, OSError, EOFError, csv.Error) as exc:  # UnicodeDecodeError included
        raise CannotCarve(f"{file_name} could not be read by rows: {exc}") from exc


def _carve_npy(data: bytes, file_name: str, n_rows: int,
               parts: dict[str, np.ndarray]) -> dict[str, bytes]:
    array = np.load(io.BytesIO(data), allow_pickle=False)
    _check_rows(file_name, len(array), n_rows)
    out = {}
    for part, indices in parts.items():
        buffer = io.BytesIO()
        np.save(buffer, array[np.sort(indices)], allow_pickle=False)
        out[part] = buffer.getvalue()
    return out


def _carve_csv(data: bytes, file_name: str, n_rows: int,
               parts: dict[str, np.ndarray]) -> dict[str, bytes]:
    decompress, compress = _TEXT_CODECS.get(Path(file_name).suffix, (bytes, bytes))
    records = list(csv.reader(io.StringIO(decompress(data).decode("utf-8"), newline="")))
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
                      fold: tuple[np.ndarray, np.ndarray], kit_files: Path | None = None
                      ) -> dict:
    """Write the participants' ``data/`` under ``out_dir`` and return the
    record (also written as ``out_dir/split.json``).

    ``kit_dir`` is the kit, ``problem`` its imported ``problem.py``,
    ``n_train`` its number of training samples and ``fold`` fold
    :data:`CARVED_FOLD`'s (train, valid) indices. ``kit_files`` is the zip
    of the kit's data folders the workflow reads itself (images), which the
    folds get: the public data holds them too, so that the kit runs. A kit
    whose public split cannot be made gets a record with ``source: "none"``
    and the reason.
    """
    kit_dir, out_dir = Path(kit_dir), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".public-", dir=out_dir.parent))
    try:
        data_dir = staging / "data"
        record = _first_that_works(kit_dir, staging, problem=problem, n_train=n_train,
                                   fold=fold, kit_files=kit_files)
        record["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                           for p in sorted(data_dir.glob("*")) if p.is_file()
                           } if data_dir.is_dir() else {}
        (staging / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        try:
            staging.rename(out_dir)
        except OSError:
            # Another process made it first (a download of a problem
            # prepared before public splits): the same content, kept.
            if read_record(out_dir) is None:
                raise
            return read_record(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def _first_that_works(kit_dir: Path, root: Path, *, problem, n_train: int,
                      fold: tuple[np.ndarray, np.ndarray], kit_files: Path | None) -> dict:
    """The organiser's public data, else the training data carved by fold 0,
    else (a get_cv that needs every training row, as a declarative problem's
    stored folds do) fold 0's validation rows next to the whole training set."""
    data_dir = root / "data"
    organiser = kit_dir / ORGANISER_FOLDER
    attempts = ([_organiser] if organiser.is_dir() else [_carved, _overlapping])
    reasons = []
    for attempt in attempts:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir()
        try:
            record = attempt(kit_dir, data_dir, n_train=n_train, fold=fold)
            folders = _add_kit_files(kit_files, root) if kit_files is not None else []
            if folders:
                record["folders"] = folders
            return {**record, **_check_loads(problem, root)}
        except CannotCarve as exc:
            reasons.append(str(exc))
    shutil.rmtree(data_dir, ignore_errors=True)
    return {"source": "none", "reason": "; ".join(reasons)}


def _add_kit_files(kit_files: Path, root: Path) -> list[str]:
    """The files of ``kit_files`` (``data/...``, made by the trusted side)
    under ``root``; the folders they are in."""
    folders = set()
    with zipfile.ZipFile(kit_files) as archive:
        for name in archive.namelist():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
            folders.add(str(Path(name).parent))
    return sorted(folders)


def _organiser(kit_dir: Path, data_dir: Path, **_) -> dict:
    files = [p for p in sorted((kit_dir / ORGANISER_FOLDER).iterdir()) if p.is_file()]
    if not any(p.name.startswith("test") for p in files):
        raise CannotCarve(f"{ORGANISER_FOLDER}/ holds no test* file (the public test set)")
    for path in files:
        shutil.copyfile(path, data_dir / path.name)
    return {"source": "organiser",
            "rule": f"the organiser's {ORGANISER_FOLDER}/ folder, as data/"}


def _carved(kit_dir: Path, data_dir: Path, *, n_train: int,
            fold: tuple[np.ndarray, np.ndarray]) -> dict:
    train_is, valid_is = fold
    for path, parts in _carved_files(kit_dir, n_train, {"train": train_is, "test": valid_is}):
        (data_dir / path.name).write_bytes(parts["train"] if parts else path.read_bytes())
        if parts:
            (data_dir / ("test" + path.name[len("train"):])).write_bytes(parts["test"])
    return {"source": "carved", "rule": CARVED_RULE, "fold": CARVED_FOLD}


def _overlapping(kit_dir: Path, data_dir: Path, *, n_train: int,
                 fold: tuple[np.ndarray, np.ndarray]) -> dict:
    for path, parts in _carved_files(kit_dir, n_train, {"test": fold[1]}):
        shutil.copyfile(path, data_dir / path.name)
        if parts:
            (data_dir / ("test" + path.name[len("train"):])).write_bytes(parts["test"])
    return {"source": "carved_overlapping", "rule": OVERLAPPING_RULE, "fold": CARVED_FOLD}


def _carved_files(kit_dir: Path, n_train: int, parts: dict[str, np.ndarray]):
    """Each ``data/train*`` file with its rows split into ``parts`` (None for
    a file that is not row data, e.g. stored folds: it is copied as is)."""
    train_files = sorted(p for p in (kit_dir / "data").glob("train*") if p.is_file())
    if not train_files:
        raise CannotCarve("the kit's data/ holds no train* file to carve a public test set from")
    out, carved = [], False
    for path in train_files:
        if path.name.endswith(ROW_SUFFIXES):
            out.append((path, carve_rows(path.read_bytes(), path.name, n_train, parts)))
            carved = True
        else:
            out.append((path, None))
    if not carved:
        raise CannotCarve("no data/train* file is CSV (.csv, .csv.gz, .csv.bz2) or .npy, "
                          f"so no public test set can be carved: add a {ORGANISER_FOLDER}/ "
                          "folder holding the public train* and test* files")
    return out


def _check_loads(problem, root: Path) -> dict:
    """Load the public files with the kit's own functions and folds, as ``ramp-test`` does."""
    try:
        X_train, y_train = problem.get_train_data(str(root))
        _, y_test = problem.get_test_data(str(root))
        n_folds = len(list(problem.get_cv(X_train, y_train)))
    except Exception as exc:  # noqa: BLE001 - the organiser's code on the public files
        raise CannotCarve(f"the kit's get_train_data / get_test_data / get_cv failed on "
                          f"the public files: {type(exc).__name__}: {exc}") from exc
    return {"n_train": len(y_train), "n_test": len(y_test), "n_folds": n_folds}


def read_record(public_dir: Path) -> dict | None:
    """The record written by :func:`write_public_data`, or None when there is none yet."""
    try:
        return json.loads((Path(public_dir) / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None


def main(kit_dir: str, prepared_dir: str) -> int:
    """``python -m datarun.public_split KIT PREPARED``: write ``PREPARED/public``
    for the kit whose data and folds are in ``PREPARED`` (as
    :mod:`workers.harness.prepare` wrote them), with the kit's own functions
    and libraries: run in the problem's environment."""
    from rampwf.utils.importing import import_module_from_source

    prepared = Path(prepared_dir)
    problem = import_module_from_source(str(Path(kit_dir) / "problem.py"), "problem")
    n_train = json.loads((prepared / "summary.json").read_text())["n_train"]
    with np.load(prepared / "folds.npz", allow_pickle=False) as folds:
        fold = (folds[f"train_{CARVED_FOLD}"], folds[f"valid_{CARVED_FOLD}"])
    kit_files = prepared / "sandbox" / "kit_files.zip"
    write_public_data(Path(kit_dir), prepared / PUBLIC_DIR, problem=problem, n_train=n_train,
                      fold=fold, kit_files=kit_files if kit_files.is_file() else None)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1], sys.argv[2]))
