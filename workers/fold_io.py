"""A fold's work dir in and out, without Django: what the worker and the
``datarun test`` command share.

``prepare_workdir`` lays out what the harness reads: the submission files,
the problem definition, the training features and labels, the test *features*
and the fold's indices; the test labels stay on the trusted side.
``read_outcome`` treats everything the sandbox wrote as untrusted:
predictions are read with ``allow_pickle=False`` and size-checked, and
result.json is parsed defensively.
"""
import json
import math
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datarun import ramp_kits, scoring, storage
from datarun.ramp_kits import load_folds
from datarun.states import ErrorKind
from workers.harness import layout
from workers.harness.run import EXIT_SUBMISSION_ERROR
from workers.sandbox import Limits, SandboxResult, Termination

STEP_VERBS = {"train": "training", "validate": "predicting on the training set",
              "test": "predicting on the test set", "predict": "returning predictions",
              "run": "running"}
MAX_RESULT_BYTES = 1024 * 1024


@dataclass
class FoldRunSpec:
    """What a worker needs to run one fold."""

    fold_run_id: int
    evaluation_id: int
    fold_index: int
    attempt: int
    prepared_dir: Path
    files: dict[str, str]
    limits: dict
    n_train: int
    n_test: int
    prediction_shape: list[int]


@dataclass
class FoldOutcome:
    """What a worker measured; ``error`` set means the fold failed."""

    wall_time: float | None = None
    cpu_time: float | None = None
    peak_memory: int | None = None
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
    error_kind: str = ErrorKind.PARTICIPANT


def prepare_workdir(spec: FoldRunSpec, workdir: Path, *,
                    link_inputs: bool = False, submission_dir: Path | None = None) -> None:
    """Lay out the fold's work dir. ``link_inputs`` hard-links the data files
    from the prepared problem instead of copying them: only for a sandbox that
    mounts them read-only, since a write through a link would change them for
    every later fold."""
    for sub in (layout.INPUT_DIR, layout.SUBMISSION_DIR, layout.OUTPUT_DIR, layout.TMP_DIR):
        (workdir / sub).mkdir()
    prepared = spec.prepared_dir
    shutil.copyfile(prepared / "kit" / "problem.py", workdir / layout.PROBLEM_FILE)
    for name, target in (("X_train.pkl", layout.X_TRAIN), ("y_train.pkl", layout.Y_TRAIN),
                         ("X_test.pkl", layout.X_TEST)):
        if link_inputs:
            _link_or_copy(prepared / "sandbox" / name, workdir / target)
        else:
            shutil.copyfile(prepared / "sandbox" / name, workdir / target)
    train_is, valid_is = load_folds(prepared)[spec.fold_index]
    np.savez(workdir / layout.FOLD, train_is=train_is, valid_is=valid_is)
    for name, digest in spec.files.items():
        # The stored blob, or (``datarun test``, no storage) the file itself.
        source = submission_dir / name if submission_dir is not None else storage.blob_path(digest)
        shutil.copyfile(source, workdir / layout.SUBMISSION_DIR / name)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _read_result(workdir: Path) -> dict | None:
    path = workdir / layout.RESULT
    try:
        if not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
            return None
        result = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _seconds(value) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _load_predictions(path: Path, max_bytes: int) -> np.ndarray | str:
    """The array in ``path``, or a message saying why it cannot be read."""
    name = path.name
    if path.is_symlink() or not path.is_file():
        return f"the submission wrote no {name}"
    if path.stat().st_size > max_bytes:
        return f"{name} is {path.stat().st_size} bytes, more than the {max_bytes} expected"
    try:
        with open(path, "rb") as f:
            # Only the .npy format: np.load would also open .npz archives.
            np.lib.format.read_magic(f)
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        return f"{name} is not a plain numeric .npy array ({exc or 'empty file'})"
    except OSError as exc:
        return f"{name} could not be read ({exc})"
    if not isinstance(arr, np.ndarray):
        return f"{name} is not a plain numeric .npy array"
    return arr


def _signal_name(exit_code: int | None) -> str:
    """SIGKILL for -9 (a local child) or 137 (a shell's or container's code)."""
    if exit_code is None:
        return ""
    number = -exit_code if exit_code < 0 else exit_code - 128 if 128 < exit_code < 160 else 0
    try:
        return signal.Signals(number).name if number else ""
    except ValueError:
        return ""


def read_outcome(spec: FoldRunSpec, workdir: Path, result: SandboxResult,
                 limits: Limits) -> FoldOutcome:
    k = spec.fold_index
    outcome = FoldOutcome(
        wall_time=result.wall_time, cpu_time=result.cpu_time, peak_memory=result.peak_memory,
        isolation=result.isolation, runtime_image=result.runtime_image,
        stdout=result.stdout, stderr=result.stderr,
        logs_truncated=result.logs_truncated,
    )
    if result.terminated is not None:
        outcome.error = {
            Termination.TIME: f"exceeded the time limit of {limits.wall_time_s:g} s in fold {k}",
            Termination.MEMORY: f"exceeded the memory limit of {limits.memory_mb} MiB in fold {k}",
            Termination.CPU: f"exceeded the CPU time limit of {limits.cpu_time_s:g} s in fold {k}",
            Termination.FILE_SIZE: f"wrote a file larger than the limit of "
                                   f"{limits.file_size_bytes // 2**20} MiB in fold {k}",
            Termination.SUPERVISOR: f"killed the sandbox process that supervised it in fold {k} "
                                    "(a submission may not signal processes outside its own)",
            Termination.DISK: f"wrote more than the limit of {limits.disk_bytes // 2**20} MiB "
                              f"of files in fold {k}",
        }[result.terminated]
        return outcome
    harness = _read_result(workdir) or {}
    steps = [_seconds(harness.get(name)) for name in ("train_time", "valid_time", "test_time")]
    # The step timings come from inside the sandbox, where the submission can
    # rewrite them: keep them only if they fit in the wall time measured outside.
    if None not in steps and sum(steps) <= result.wall_time + 0.05:
        outcome.train_time, outcome.valid_time, outcome.test_time = steps
    if harness.get("status") == "error" and result.exit_code == EXIT_SUBMISSION_ERROR:
        error_type = str(harness.get("error_type", "Error"))[:200]
        if error_type == "MemoryError":
            outcome.error = f"exceeded the memory limit of {limits.memory_mb} MiB in fold {k}"
        else:
            verb = STEP_VERBS.get(harness.get("step"), "running")
            outcome.error = (f"{error_type} while {verb} in fold {k}: "
                             f"{str(harness.get('message', ''))[:2000]}")
        outcome.error_traceback = str(harness.get("traceback", ""))[:20000]
        return outcome
    if result.exit_code != 0 or harness.get("status") != "ok":
        if result.exit_code == 0:
            outcome.error = (f"the submission's process ended before writing its predictions "
                             f"in fold {k} (did the code call sys.exit()?)")
        elif _signal_name(result.exit_code):
            outcome.error = (f"the submission's process was killed by "
                             f"{_signal_name(result.exit_code)} in fold {k}")
        else:
            outcome.error = (f"the submission's process exited with code {result.exit_code} "
                             f"in fold {k}")
        outcome.error_traceback = result.stderr[-20000:]
        return outcome
    row = int(np.prod(spec.prediction_shape)) if spec.prediction_shape else 1
    for attr, name, n in (("y_pred_train", layout.Y_PRED_TRAIN, spec.n_train),
                          ("y_pred_test", layout.Y_PRED_TEST, spec.n_test)):
        loaded = _load_predictions(workdir / name, max_bytes=n * row * 8 + 4096)
        if isinstance(loaded, str):
            outcome.error = f"{loaded} in fold {k}"
            return outcome
        setattr(outcome, attr, loaded)
    return outcome


def check_and_score_fold(trusted: ramp_kits.TrustedInputs, spec: FoldRunSpec,
                         outcome: FoldOutcome) -> dict | None:
    """The fold's ``{step: {score: value}}`` on the trusted side, or None with
    ``outcome.error`` saying why (the server and ``datarun test`` share it)."""
    if outcome.error:
        return None
    for y, n, what in ((outcome.y_pred_train, spec.n_train, "training set"),
                       (outcome.y_pred_test, spec.n_test, "test set")):
        problem_with = scoring.check_predictions(
            y, n_rows=n, row_shape=spec.prediction_shape, what=what)
        if problem_with:
            outcome.error = f"{problem_with} in fold {spec.fold_index}"
            return None
    try:
        return scoring.fold_scores(
            trusted.problem, trusted.y_train, trusted.y_test,
            trusted.folds[spec.fold_index], outcome.y_pred_train, outcome.y_pred_test,
        )
    except Exception as exc:  # noqa: BLE001 - the predictions may break a score function
        outcome.error = (f"the predictions of fold {spec.fold_index} could not be scored: "
                         f"{type(exc).__name__}: {exc}")
        return None
