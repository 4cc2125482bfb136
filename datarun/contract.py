"""The fold contract: what goes out to whoever runs a fold, and what comes back.

A :class:`FoldTicket` names everything a runner needs by content hash (the
prepared inputs laid out in the fold's work dir, the submission files), with
the fold's limits and a fold token bound to that fold and attempt. A
:class:`FoldOutcome` is what the runner measured and the predictions it read.
Both cross the runner API as JSON (plus the predictions as ``.npy``), so this
module is plain Python and NumPy: no Django, no I/O, nothing of the project.
The server (``datarun``), in-cluster workers and remote runners (``workers``)
and ``datarun test`` all speak it.
"""
import hashlib
import io
import math
import re
from dataclasses import asdict, dataclass, fields

import numpy as np

# Who a failed fold is charged to (the values of ``datarun.states.ErrorKind``).
PARTICIPANT = "participant"
PLATFORM = "platform"
# The problem's code (its workflow, data, libraries) failed with no part of the
# participant's: not charged to the team, the traceback is for event admins.
PROBLEM = "problem"
ERROR_KINDS = (PARTICIPANT, PLATFORM, PROBLEM)

SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Who scores a fold (FoldTicket.scoring).
PLATFORM_SCORING = "platform"
RUNNER_SCORING = "runner"
# A ticket's inputs: the prepared problem's files one fold reads (never the
# test labels). Where each goes in the work dir is the runner's layout.
# kit_files.zip: the kit's data folders the fold reads itself (images), often empty.
INPUT_NAMES = ("problem.py", "X_train.pkl", "y_train.pkl", "X_test.pkl", "fold.npz",
               "kit_files.zip")
# Predictions cross the wire as these two .npy files.
PREDICTION_FILES = ("y_pred_train", "y_pred_test")
# prediction_shape[0] of a problem whose rows hold lists of objects
# (detection): its predictions cross as an object table, one float row
# (row index, *values) per object (:mod:`datarun.scoring`).
OBJECTS = -1
# The most objects an object table may hold, per row of predictions on average.
MAX_OBJECTS_PER_ROW = 200
MAX_TEXT = 2 * 1024 * 1024


class ContractError(ValueError):
    """A ticket or an outcome that does not follow the contract; the message
    says what is wrong with it."""


@dataclass
class FoldTicket:
    """What a runner needs to run one fold.

    ``inputs`` maps each of :data:`INPUT_NAMES` to the sha256 of its
    content; ``files`` maps each submission file name to the sha256 of its
    content. ``token`` authorises the runner to fetch those
    inputs and to report on this fold and attempt until ``expires_at`` (epoch
    seconds).
    """

    fold_run_id: int
    evaluation_id: int
    fold_index: int
    attempt: int
    inputs: dict[str, str]
    files: dict[str, str]
    limits: dict
    n_train: int
    n_test: int
    prediction_shape: list[int]
    token: str = ""
    expires_at: float | None = None
    # "platform": the runner reports predictions and the platform scores them;
    # "runner": a sensitive-data problem, whose data and labels stay on the
    # pool's machines: the runner reads the inputs from its own copy of the
    # problem (``problem`` at ``data_hash``), scores the fold there and
    # reports scores only.
    scoring: str = "platform"
    problem: str = ""
    data_hash: str = ""
    # The lock hash of the problem's own environment, in which the fold runs
    # (its inputs were made there); "" for the shared runtime.
    environment: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> "FoldTicket":
        if not isinstance(data, dict):
            raise ContractError("a fold ticket must be a JSON object")
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - {"token", "expires_at", "scoring", "problem", "data_hash",
                                       "environment"}
        if missing:
            raise ContractError(f"the fold ticket lacks {', '.join(sorted(missing))}")
        ticket = cls(**{k: v for k, v in data.items() if k in names})
        if ticket.scoring not in (PLATFORM_SCORING, RUNNER_SCORING):
            raise ContractError(f"the fold ticket's scoring must be {PLATFORM_SCORING!r} or "
                                f"{RUNNER_SCORING!r}")
        if not isinstance(ticket.inputs, dict) or set(ticket.inputs) != set(INPUT_NAMES):
            raise ContractError(f"the fold ticket's inputs must be {', '.join(INPUT_NAMES)}")
        if not isinstance(ticket.files, dict) or not all(
                isinstance(n, str) and n and "/" not in n and n not in (".", "..")
                for n in ticket.files):
            raise ContractError("the fold ticket's files must be plain file names")
        if not isinstance(ticket.environment, str) or (
                ticket.environment and not SHA256.match(ticket.environment)):
            raise ContractError("the fold ticket's environment is not a lock hash")
        for name, digest in {**ticket.inputs, **ticket.files}.items():
            if not isinstance(digest, str) or not SHA256.match(digest):
                raise ContractError(f"the fold ticket's hash of {name!r} is not a sha256")
        return ticket

    def digests(self) -> set[str]:
        return set(self.inputs.values()) | set(self.files.values())


@dataclass
class FoldOutcome:
    """What a runner measured; ``error`` set means the fold failed."""

    wall_time: float | None = None
    cpu_time: float | None = None
    peak_memory: int | None = None
    # Bytes of GPU memory the fold used on its GPUs (None: no GPU, or not measured).
    gpu_memory_peak: int | None = None
    isolation: str = ""
    runtime_image: str = ""
    train_time: float | None = None
    valid_time: float | None = None
    test_time: float | None = None
    stdout: str = ""
    stderr: str = ""
    logs_truncated: bool = False
    y_pred_train: np.ndarray | None = None
    y_pred_test: np.ndarray | None = None
    error: str = ""
    error_traceback: str = ""
    error_kind: str = PARTICIPANT
    # Runner-scored folds: ``{step: {score name: value}}`` instead of the
    # predictions, and the bagged scores once the runner holds every fold's.
    scores: dict | None = None
    bagged: dict | None = None


_NUMBERS = ("wall_time", "cpu_time", "train_time", "valid_time", "test_time")
_BYTES = ("peak_memory", "gpu_memory_peak")
_TEXTS = ("isolation", "runtime_image", "stdout", "stderr", "error", "error_traceback")


def outcome_to_wire(outcome: FoldOutcome) -> tuple[dict, dict[str, bytes]]:
    """The outcome as a JSON object and the predictions as ``.npy`` bytes."""
    meta = {name: getattr(outcome, name) for name in
            (*_NUMBERS, *_BYTES, *_TEXTS, "logs_truncated", "error_kind")}
    for name in ("scores", "bagged"):
        if getattr(outcome, name) is not None:
            meta[name] = getattr(outcome, name)
    files = {}
    for name in PREDICTION_FILES:
        array = getattr(outcome, name)
        if array is not None:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            files[name] = buffer.getvalue()
    return meta, files


def outcome_from_wire(meta, files: dict[str, bytes], *, max_prediction_bytes: int,
                      runner_scored: bool = False, score_names: tuple[str, ...] = ()
                      ) -> FoldOutcome:
    """Parse what a runner reported, refusing anything off the contract.

    Predictions are read as plain ``.npy`` only (never pickles, never
    archives) and no larger than ``max_prediction_bytes``; their shape and
    values are checked on the trusted side when the fold is scored.
    """
    if not isinstance(meta, dict):
        raise ContractError("the outcome must be a JSON object")
    unknown = set(meta) - {f.name for f in fields(FoldOutcome)} - set(PREDICTION_FILES)
    if unknown:
        raise ContractError(f"the outcome has unknown fields: {', '.join(sorted(unknown))}")
    outcome = FoldOutcome()
    for name in _NUMBERS:
        value = meta.get(name)
        if value is not None and not (isinstance(value, int | float)
                                      and not isinstance(value, bool)
                                      and math.isfinite(value) and value >= 0):
            raise ContractError(f"{name} must be a non-negative number of seconds or null")
        setattr(outcome, name, None if value is None else float(value))
    for name in _BYTES:
        value = meta.get(name)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                      and value >= 0):
            raise ContractError(f"{name} must be a non-negative number of bytes or null")
        setattr(outcome, name, value)
    for name in _TEXTS:
        value = meta.get(name, "")
        if not isinstance(value, str):
            raise ContractError(f"{name} must be a string")
        if len(value) > MAX_TEXT:
            raise ContractError(f"{name} is longer than {MAX_TEXT} characters")
        setattr(outcome, name, value)
    if not isinstance(meta.get("logs_truncated", False), bool):
        raise ContractError("logs_truncated must be true or false")
    outcome.logs_truncated = meta.get("logs_truncated", False)
    kind = meta.get("error_kind", PARTICIPANT)
    if kind not in ERROR_KINDS:
        raise ContractError(f"error_kind must be one of {', '.join(map(repr, ERROR_KINDS))}")
    outcome.error_kind = kind
    unknown_files = set(files) - set(PREDICTION_FILES)
    if unknown_files:
        raise ContractError(f"unexpected files: {', '.join(sorted(unknown_files))}; "
                            f"send {' and '.join(PREDICTION_FILES)}")
    if runner_scored:
        if files:
            raise ContractError("a fold scored on the runner sends scores, never predictions")
        for name in ("scores", "bagged"):
            if meta.get(name) is not None:
                setattr(outcome, name, _scores(meta[name], name, score_names))
        if not outcome.error and outcome.scores is None:
            raise ContractError("an outcome without an error must carry the fold's scores")
        return outcome
    if "scores" in meta or "bagged" in meta:
        raise ContractError("the platform scores this fold: send predictions, not scores")
    if outcome.error:
        return outcome
    for name in PREDICTION_FILES:
        if name not in files:
            raise ContractError(f"an outcome without an error must carry {name}")
        data = files[name]
        if len(data) > max_prediction_bytes:
            raise ContractError(f"{name} is {len(data)} bytes, more than the "
                                f"{max_prediction_bytes} this fold's predictions can take")
        setattr(outcome, name, load_npy(data, name))
    return outcome


def _scores(value, what: str, score_names: tuple[str, ...]) -> dict:
    """``{step: {score: number or null}}`` with the problem's score names."""
    steps = ("train", "valid", "test")
    if not isinstance(value, dict) or not set(value) <= set(steps) or not value:
        raise ContractError(f"{what} must map steps ({', '.join(steps)}) to scores")
    for step, by_name in value.items():
        if not isinstance(by_name, dict) or set(by_name) != set(score_names):
            raise ContractError(f"{what}[{step!r}] must hold the problem's scores: "
                                f"{', '.join(score_names)}")
        for name, number in by_name.items():
            if number is not None and (isinstance(number, bool)
                                       or not isinstance(number, int | float)):
                raise ContractError(f"{what}[{step!r}][{name!r}] must be a number or null")
    return {step: {name: None if v is None else float(v) for name, v in by_name.items()}
            for step, by_name in value.items()}


def load_npy(data: bytes, name: str) -> np.ndarray:
    """A plain ``.npy`` array from bytes, or :class:`ContractError`."""
    buffer = io.BytesIO(data)
    try:
        # Only the .npy format: np.load would also open .npz archives.
        np.lib.format.read_magic(buffer)
        buffer.seek(0)
        array = np.load(buffer, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ContractError(f"{name} is not a plain numeric .npy array "
                            f"({exc or 'empty file'})") from None
    if not isinstance(array, np.ndarray):
        raise ContractError(f"{name} is not a plain numeric .npy array")
    return array


def sha256_file(path) -> str:
    """The sha256 a ticket names a file's content by."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def max_objects(n_rows: int) -> int:
    """The most objects an object table of ``n_rows`` rows may hold."""
    return max(n_rows, 1) * MAX_OBJECTS_PER_ROW


def max_prediction_bytes(n_rows: int, prediction_shape: list[int]) -> int:
    """The largest ``.npy`` a fold's predictions can take (float64 rows, or
    an object table of :func:`max_objects` objects)."""
    if list(prediction_shape[:1]) == [OBJECTS]:
        return max_objects(n_rows) * (prediction_shape[1] + 1) * 8 + 4096
    row = int(np.prod(prediction_shape)) if prediction_shape else 1
    return n_rows * row * 8 + 4096
