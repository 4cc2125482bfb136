"""Reading RAMP kits on the trusted side (no Django).

A kit is ``problem.py`` + ``data/`` + ``submissions/``. Importing one loads its
data with the kit's own ``get_train_data`` / ``get_test_data``, computes the
folds once from ``get_cv`` and writes everything a fold run or the scorer needs
into a prepared folder:

    kit/               a copy of problem.py, data/ and submissions/
    sandbox/           X_train.pkl, y_train.pkl, X_test.pkl, kit_files.zip (what
                       a sandbox sees; the zip holds the kit's data folders
                       that X names, such as a folder of images: see
                       :func:`with_kit_folders`)
    trusted/           y_test.pkl (never enters a sandbox)
    folds.npz          train_<k>, valid_<k> index arrays
    public/            data/ (what participants download: a public training and
                       test set, never the private test data) and split.json
                       (:mod:`datarun.public_split`)
    fold-inputs/       fold_<k>.npz (one fold's indices, as the sandbox reads
                       them) and fold_<k>.json (the sha256 of each fold input),
                       written when a fold is first handed out
"""
import hashlib
import io
import json
import math
import os
import pickle
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np

from datarun import environments, public_split, scoring
from datarun.contract import INPUT_NAMES, sha256_file
from datarun.errors import InvalidKit

REQUIRED_ATTRIBUTES = (
    "problem_title", "Predictions", "workflow", "score_types",
    "get_train_data", "get_test_data", "get_cv",
)
SANDBOX_FILES = ("X_train.pkl", "y_train.pkl", "X_test.pkl")
KIT_FILES = "kit_files.zip"
DATA_DIR = "data"
# An event's starting kit holds the limits its folds run under in this file,
# so that ``datarun test`` in the downloaded kit runs under them too.
KIT_LIMITS_FILE = "limits.json"
KIT_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "training_output", ".git", "*.pyc")
# pandas as a kit's own environment has it. ramp-workflow does not need pyarrow
# and a kit's environment seldom has it: there pandas 3 keeps text in NumPy-backed
# string arrays. The server has pyarrow (DuckDB, Parquet), with which pandas would
# make the kit's text columns and labels Arrow arrays (that scikit-learn cannot
# index with integers) and pickle them for every fold. The kit's code runs with
# the string storage of its own environment; the harness sets the same
# (``workers.harness.run.KIT_PANDAS_OPTIONS``). A kit that wants Arrow strings
# asks for them (``dtype=pd.StringDtype("pyarrow")``) and gets them.
KIT_PANDAS_OPTIONS = {"mode.string_storage": "python"}


@contextmanager
def kit_pandas_options():
    """Run a kit's own code (loading its data, ``get_cv``) with :data:`KIT_PANDAS_OPTIONS`."""
    try:
        import pandas as pd
    except ImportError:  # a kit without pandas: nothing to set
        yield
        return
    with pd.option_context(*[x for item in KIT_PANDAS_OPTIONS.items() for x in item]):
        yield


@dataclass
class ScoreTypeInfo:
    index: int
    name: str
    is_lower_the_better: bool
    precision: int
    minimum: float | None
    maximum: float | None


@dataclass
class PreparedKit:
    title: str
    workflow_elements: list[str]
    prediction_shape: list[int]
    score_types: list[ScoreTypeInfo]
    n_train: int
    n_test: int
    n_folds: int
    data_hash: str
    folds_hash: str
    starting_kit: list[str] = field(default_factory=list)
    public_split: dict | None = None


def import_problem(kit_dir: Path) -> ModuleType:
    """The kit's ``problem.py`` as a module.

    A kit with its own environment may import, at the top of ``problem.py``,
    packages that only its environment has (xarray for a time-series kit):
    its data is loaded and its folds run there. The trusted side imports the
    same file for ``Predictions`` and the score types; there each such
    package stands as an absent module that names itself when used.
    """
    from rampwf.utils.importing import import_module_from_source

    path = Path(kit_dir) / "problem.py"
    if not environments.declares_environment(kit_dir):
        return import_module_from_source(str(path), "problem")
    with _absent_modules_for(path):
        return import_module_from_source(str(path), "problem")


class AbsentModule(ModuleType):
    """A package that the problem's environment has and the server has not."""

    __path__: list = []

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        package = self.__name__.partition(".")[0]
        raise ImportError(
            f"{self.__name__}.{attribute}: {package} is installed in the problem's own "
            "environment, not on the server. problem.py may import it, but only use it in "
            "what runs in the environment (get_train_data, get_test_data, get_cv, the "
            "workflow); Predictions and the score types are computed on the server")


class _AbsentModuleFinder:
    """On ``sys.meta_path`` after every real finder: a module that none of
    them finds, imported by ``problem.py`` itself (or below such a module),
    is an :class:`AbsentModule`. Imports made by libraries keep failing as
    they would (their optional dependencies stay missing)."""

    def __init__(self, problem_file: Path):
        self.problem_file = os.path.realpath(problem_file)
        self.names: list[str] = []

    def find_spec(self, name, path=None, target=None):
        import importlib.util
        import sys

        parent = name.rpartition(".")[0]
        if not (parent in self.names or self._imported_by_problem(sys._getframe(1))):
            return None
        self.names.append(name)
        return importlib.util.spec_from_loader(name, self, is_package=True)

    def _imported_by_problem(self, frame) -> bool:
        while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
            frame = frame.f_back
        return (frame is not None
                and os.path.realpath(frame.f_code.co_filename) == self.problem_file)

    def create_module(self, spec):
        return AbsentModule(spec.name)

    def exec_module(self, module):
        pass


@contextmanager
def _absent_modules_for(problem_file: Path):
    import sys

    finder = _AbsentModuleFinder(problem_file)
    sys.meta_path.append(finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        # Only problem.py keeps them: other code importing the name later
        # gets the ImportError it would get without this import.
        for name in finder.names:
            sys.modules.pop(name, None)


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _hash_arrays(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


def hash_folds(folds) -> str:
    return _hash_arrays(a for pair in folds for a in pair)


def prepare_kit(kit_dir: Path, out_dir: Path, *, public: bool = True,
                load_data: bool = True) -> PreparedKit:
    """Validate the kit at ``kit_dir`` and write its prepared folder to ``out_dir``.

    ``public``: also write the data participants download (``public/``);
    ``datarun test`` on a downloaded kit needs none. ``load_data=False``, for
    a kit with an environment of its own: only ``problem.py`` is checked
    and the kit copied; its data is loaded, checked and written by its own
    code in its environment
    (:func:`datarun.environments.prepare_in_environment`), so sizes and
    fold counts are 0 and ``data_hash`` is the kit's files' hash until then.
    Raises :class:`InvalidKit` with a message naming what to fix. On error,
    ``out_dir`` is removed.
    """
    kit_dir = Path(kit_dir).resolve()
    try:
        if not load_data:
            return _prepare_definition(kit_dir, Path(out_dir))
        return _prepare(kit_dir, Path(out_dir), public=public)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _import_checked(kit_dir: Path) -> ModuleType:
    """The kit's ``problem.py``, imported, with what a problem must define."""
    if not kit_dir.is_dir():
        raise InvalidKit(f"{kit_dir} is not a directory")
    for needed in ("problem.py", "data"):
        if not (kit_dir / needed).exists():
            raise InvalidKit(f"the kit has no {needed}: a RAMP kit needs problem.py and data/")
    _check_links(kit_dir)
    try:
        problem = import_problem(kit_dir)
    except Exception as exc:  # noqa: BLE001 - any error in the organiser's file
        raise InvalidKit(f"problem.py failed to import: {type(exc).__name__}: {exc}") from exc
    missing = [a for a in REQUIRED_ATTRIBUTES if not hasattr(problem, a)]
    if missing:
        raise InvalidKit(f"problem.py does not define {', '.join(missing)}")
    return problem


def _definition(problem: ModuleType) -> tuple[list[str], list[ScoreTypeInfo]]:
    """The workflow's submission files and the score types, checked."""
    elements = list(getattr(problem.workflow, "element_names", []))
    if not elements:
        raise InvalidKit("the workflow declares no element_names (submission files)")
    score_types = [
        ScoreTypeInfo(
            index=i,
            name=st.name,
            is_lower_the_better=bool(st.is_lower_the_better),
            precision=int(st.precision),
            minimum=_finite_or_none(st.minimum),
            maximum=_finite_or_none(st.maximum),
        )
        for i, st in enumerate(problem.score_types)
    ]
    if not score_types:
        raise InvalidKit("problem.py defines no score_types")
    return elements, score_types


def _prepare_definition(kit_dir: Path, out_dir: Path) -> PreparedKit:
    problem = _import_checked(kit_dir)
    elements, score_types = _definition(problem)
    out_dir.mkdir(parents=True)
    shutil.copytree(kit_dir, out_dir / "kit", ignore=KIT_COPY_IGNORE)
    kit_hash = hashlib.sha256()
    for path in sorted(p for p in (out_dir / "kit").rglob("*") if p.is_file()):
        kit_hash.update(path.relative_to(out_dir / "kit").as_posix().encode() + b"\0")
        kit_hash.update(path.read_bytes())
    return PreparedKit(title=str(problem.problem_title), workflow_elements=elements,
                       prediction_shape=[], score_types=score_types, n_train=0, n_test=0,
                       n_folds=0, data_hash=kit_hash.hexdigest(), folds_hash="",
                       starting_kit=_starting_kit_files(out_dir))


def _starting_kit_files(out_dir: Path) -> list[str]:
    starting_kit = out_dir / "kit" / "submissions" / "starting_kit"
    return sorted(p.name for p in starting_kit.iterdir()) if starting_kit.is_dir() else []


def _prepare(kit_dir: Path, out_dir: Path, *, public: bool) -> PreparedKit:
    problem = _import_checked(kit_dir)
    with kit_pandas_options():
        try:
            X_train, y_train = problem.get_train_data(str(kit_dir))
            X_test, y_test = problem.get_test_data(str(kit_dir))
        except Exception as exc:  # noqa: BLE001
            raise InvalidKit(f"loading the data failed: {type(exc).__name__}: {exc}") from exc
        try:
            folds = [
                (np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64))
                for tr, va in problem.get_cv(X_train, y_train)
            ]
        except Exception as exc:  # noqa: BLE001
            raise InvalidKit(f"get_cv failed: {type(exc).__name__}: {exc}") from exc
    if not folds:
        raise InvalidKit("get_cv returned no folds")
    X_train, train_folders = with_kit_folders(X_train, kit_dir)
    X_test, test_folders = with_kit_folders(X_test, kit_dir)
    try:
        truth = np.asarray(problem.Predictions(y_true=y_train).y_pred)
    except Exception as exc:  # noqa: BLE001
        raise InvalidKit(
            f"Predictions(y_true=...) failed on the training labels: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        row_shape = scoring.prediction_shape(truth)
    except ValueError as exc:
        raise InvalidKit(environments.NON_NUMERIC_PREDICTIONS.format(reason=exc)) from exc
    elements, score_types = _definition(problem)

    (out_dir / "sandbox").mkdir(parents=True)
    (out_dir / "trusted").mkdir()
    for name, obj in zip(SANDBOX_FILES, (X_train, y_train, X_test), strict=True):
        with open(out_dir / "sandbox" / name, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    with open(out_dir / "trusted" / "y_test.pkl", "wb") as f:
        pickle.dump(y_test, f, protocol=pickle.HIGHEST_PROTOCOL)
    (out_dir / "sandbox" / KIT_FILES).write_bytes(
        kit_files_bytes(kit_dir, sorted({*train_folders, *test_folders})))
    fold_arrays = {}
    for k, (tr, va) in enumerate(folds):
        fold_arrays[f"train_{k}"] = tr
        fold_arrays[f"valid_{k}"] = va
    np.savez(out_dir / "folds.npz", **fold_arrays)
    shutil.copytree(kit_dir, out_dir / "kit", ignore=KIT_COPY_IGNORE)
    data_hash = hashlib.sha256()
    for path in (*(out_dir / "sandbox" / n for n in SANDBOX_FILES),
                 out_dir / "trusted" / "y_test.pkl"):
        data_hash.update(path.read_bytes())
    data_hash.update(hashed_kit_files(out_dir / "sandbox" / KIT_FILES))
    public_record = public_split.write_public_data(
        out_dir / "kit", out_dir / public_split.PUBLIC_DIR, problem=problem,
        n_train=len(truth), fold=folds[public_split.CARVED_FOLD],
        kit_files=out_dir / "sandbox" / KIT_FILES) if public else None
    return PreparedKit(
        title=str(problem.problem_title),
        workflow_elements=elements,
        prediction_shape=row_shape,
        score_types=score_types,
        n_train=len(truth),
        n_test=len(problem.Predictions(y_true=y_test).y_pred),
        n_folds=len(folds),
        data_hash=data_hash.hexdigest(),
        folds_hash=hash_folds(folds),
        starting_kit=_starting_kit_files(out_dir),
        public_split=public_record,
    )


def kit_folder(value, kit_dir: Path) -> str | None:
    """The folder of the kit's data that ``value`` names, relative to the
    kit; None when it names none (the rule of ``workers.harness.kit_files``)."""
    if not isinstance(value, str) or not value:
        return None
    path = Path(value) if os.path.isabs(value) else kit_dir / value
    try:
        resolved = path.resolve()
        relative = resolved.relative_to(kit_dir.resolve())
    except (OSError, ValueError):
        return None
    if not resolved.is_dir() or relative.parts[:1] != (DATA_DIR,):
        return None
    if len(relative.parts) == 1:
        raise InvalidKit(f"X names the kit's {DATA_DIR}/ folder, which holds the test labels; "
                         f"put the files the folds read (images) in a folder inside "
                         f"{DATA_DIR}/")
    return relative.as_posix()


def with_kit_folders(X, kit_dir: Path) -> tuple[object, list[str]]:
    """``X`` with the folders of the kit's data among its top-level items
    (image kits return ``X`` as ``(folder, ids)``) named relative to the
    kit, and those folders. The folds get these folders (``kit_files.zip``)
    and run from the kit's folder, as ``ramp-test`` does, so the workflow
    reads the images where the kit put them."""
    if not isinstance(X, tuple | list) or len(X) > 16:
        return X, []
    items, folders = list(X), []
    for i, item in enumerate(items):
        folder = kit_folder(item, Path(kit_dir))
        if folder is not None:
            items[i] = folder
            folders.append(folder)
    return (type(X)(items) if folders else X), folders


def kit_files_bytes(kit_dir: Path, folders: list[str]) -> bytes:
    """The files of ``folders`` (relative to the kit) as a zip whose bytes
    depend on their names and content only; an empty zip for none."""
    kit_dir = Path(kit_dir).resolve()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for folder in folders:
            root = (kit_dir / folder).resolve()
            if not root.is_relative_to(kit_dir / DATA_DIR) or root == kit_dir / DATA_DIR:
                raise InvalidKit(f"{folder} is not a folder inside the kit's {DATA_DIR}/")
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                name = path.relative_to(kit_dir).as_posix()
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)),
                                 path.read_bytes())
    return buffer.getvalue()


def hashed_kit_files(path: Path) -> bytes:
    """What the data hash takes of ``kit_files.zip``: nothing when it holds
    no file, so that a problem without such folders keeps the hash it had
    before they went to the folds."""
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return data if archive.namelist() else b""


def _check_links(kit_dir: Path) -> None:
    """Refuse symbolic links that leave the kit, lead nowhere or loop.

    The kit is copied into storage with its links followed, so a link to a
    file outside the kit would copy that file, whatever it is, into storage.
    """
    for folder, dirs, files in os.walk(kit_dir):
        ignored = KIT_COPY_IGNORE(folder, [*dirs, *files])
        dirs[:] = [d for d in dirs if d not in ignored]
        for name in sorted({*dirs, *files} - ignored):
            link = Path(folder) / name
            if not link.is_symlink():
                continue
            shown = link.relative_to(kit_dir).as_posix()
            try:
                target = link.resolve()
            except (OSError, RuntimeError) as exc:  # RuntimeError: a loop, in 3.11
                raise InvalidKit(f"{shown} is a symbolic link that loops") from exc
            if not target.is_relative_to(kit_dir):
                raise InvalidKit(f"{shown} is a symbolic link to {target}, outside the kit; "
                                 "copy what it points to into the kit instead")
            if not target.exists():
                raise InvalidKit(f"{shown} is a symbolic link to {os.readlink(link)}, "
                                 "which does not exist")
            if link.parent.is_relative_to(target):
                raise InvalidKit(f"{shown} is a symbolic link to a folder that holds it")


def public_data(prepared_dir: Path) -> tuple[Path, dict]:
    """The participants' data folder of a prepared problem and its record,
    made now for a problem prepared before public splits existed."""
    public = Path(prepared_dir) / public_split.PUBLIC_DIR
    record = public_split.read_record(public)
    if record is None:
        prepared = Path(prepared_dir)
        if not (prepared / "sandbox" / "y_train.pkl").is_file():
            # A problem whose data its environment has not prepared yet.
            return public / "data", {"source": "none", "reason": (
                "the problem's data is being prepared in its environment")}
        with open(prepared / "sandbox" / "y_train.pkl", "rb") as f:
            n_train = len(pickle.load(f))
        record = public_split.write_public_data(
            prepared / "kit", public, problem=import_problem(prepared / "kit"),
            n_train=n_train, fold=load_folds(prepared)[public_split.CARVED_FOLD])
    return public / "data", record


def load_folds(prepared_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    with np.load(Path(prepared_dir) / "folds.npz", allow_pickle=False) as f:
        n = len(f.files) // 2
        return [(f[f"train_{k}"], f[f"valid_{k}"]) for k in range(n)]


def fold_inputs(prepared_dir: Path, fold_index: int) -> dict[str, Path]:
    """The local file of each input of fold ``fold_index``
    (:data:`datarun.contract.INPUT_NAMES`): the prepared problem's files and
    the fold's indices, written once as ``fold-inputs/fold_<k>.npz``."""
    prepared = Path(prepared_dir)
    fold_file = prepared / "fold-inputs" / f"fold_{fold_index}.npz"
    if not fold_file.exists():
        train_is, valid_is = load_folds(prepared)[fold_index]
        _write_atomically(fold_file, _npz_bytes(train_is=train_is, valid_is=valid_is))
    kit_files = prepared / "sandbox" / KIT_FILES
    if not kit_files.exists():
        # Prepared before kits' folders went to the folds: none.
        _write_atomically(kit_files, kit_files_bytes(prepared / "kit", []))
    return {"problem.py": prepared / "kit" / "problem.py",
            **{name: prepared / "sandbox" / name for name in SANDBOX_FILES},
            "fold.npz": fold_file, KIT_FILES: kit_files}


def fold_input_digests(prepared_dir: Path, fold_index: int) -> dict[str, str]:
    """The sha256 of each input of fold ``fold_index``, computed once per
    prepared problem (the files never change once prepared)."""
    prepared = Path(prepared_dir)
    manifest = prepared / "fold-inputs" / f"fold_{fold_index}.json"
    try:
        digests = json.loads(manifest.read_text())
        if set(digests) == set(INPUT_NAMES):
            return digests
    except (OSError, ValueError):
        pass
    digests = {name: sha256_file(path)
               for name, path in fold_inputs(prepared, fold_index).items()}
    _write_atomically(manifest, json.dumps(digests, sort_keys=True).encode())
    return digests


def _npz_bytes(**arrays) -> bytes:
    # np.savez stamps the zip members with the current time; a fixed stamp
    # makes the same indices the same bytes, so their hash never changes.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.save(member, np.asarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                             member.getvalue())
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    # mkstemp makes it private; a sandbox user other than ours reads it.
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@dataclass
class TrustedInputs:
    """What the scorer needs: the problem module, the labels and the folds."""

    problem: ModuleType
    y_train: object
    y_test: object
    folds: list


@lru_cache(maxsize=8)
def load_trusted(prepared_dir: str, data_hash: str) -> TrustedInputs:
    """Load (and cache per process, keyed by content hash) the scorer's inputs."""
    prepared = Path(prepared_dir)
    with open(prepared / "sandbox" / "y_train.pkl", "rb") as f:
        y_train = pickle.load(f)
    with open(prepared / "trusted" / "y_test.pkl", "rb") as f:
        y_test = pickle.load(f)
    return TrustedInputs(
        problem=import_problem(prepared / "kit"),
        y_train=y_train,
        y_test=y_test,
        folds=load_folds(prepared),
    )
