"""A fold's work dir in and out, on the runner's side of the fold contract
(:mod:`datarun.contract`): what in-cluster workers, remote runners and
``datarun test`` share.

``prepare_workdir`` lays out what the harness reads: the submission files,
the problem definition, the training features and labels, the test *features*
and the fold's indices, each taken from a local file whose content the ticket
names by hash; the test labels are never part of a ticket. ``read_outcome``
treats everything the sandbox wrote as untrusted: predictions are read with
``allow_pickle=False`` and size-checked, and result.json is parsed
defensively.
"""
import json
import math
import os
import shutil
import signal
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import numpy as np

from datarun.contract import PROBLEM, FoldOutcome, FoldTicket, max_prediction_bytes
from workers.harness import layout
from workers.harness.run import EXIT_SUBMISSION_ERROR
from workers.sandbox import Limits, SandboxResult, Termination

# Where each of a ticket's inputs goes in the work dir.
INPUT_PATHS = {"problem.py": layout.PROBLEM_FILE, "X_train.pkl": layout.X_TRAIN,
               "y_train.pkl": layout.Y_TRAIN, "X_test.pkl": layout.X_TEST,
               "fold.npz": layout.FOLD}
# Unpacked into layout.KIT_DIR rather than copied.
KIT_FILES = "kit_files.zip"

STEP_VERBS = {"train": "training", "validate": "predicting on the training set",
              "test": "predicting on the test set", "predict": "returning predictions",
              "run": "running", "load": "loading the problem and its data"}
MAX_RESULT_BYTES = 1024 * 1024


def prepare_workdir(ticket: FoldTicket, workdir: Path, *, inputs: Mapping[str, Path],
                    files: Mapping[str, Path], link_inputs: bool = False) -> None:
    """Lay out the fold's work dir from local files: ``inputs`` maps each of
    the ticket's inputs (:data:`datarun.contract.INPUT_NAMES`), ``files``
    each submission file name, to a file holding that content.
    ``link_inputs`` hard-links the data files instead of copying them: only
    for a sandbox that mounts them read-only, since a
    write through a link would change them for every later fold."""
    for sub in (layout.INPUT_DIR, layout.SUBMISSION_DIR, layout.OUTPUT_DIR, layout.TMP_DIR):
        (workdir / sub).mkdir()
    for name in ticket.inputs:
        if name == KIT_FILES:
            unpack_kit_files(inputs[name], workdir / layout.KIT_DIR)
            continue
        target = workdir / INPUT_PATHS[name]
        if link_inputs and name != "problem.py":
            _link_or_copy(inputs[name], target)
        else:
            shutil.copyfile(inputs[name], target)
    for name in ticket.files:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"the ticket names a submission file {name!r} with a path")
        shutil.copyfile(files[name], workdir / layout.SUBMISSION_DIR / name)


def unpack_kit_files(archive_path: Path, kit_dir: Path) -> None:
    """The kit's folders a fold reads (``datarun.ramp_kits.kit_files_bytes``)
    unpacked under ``kit_dir``, which is made only when there are any. The
    archive comes from the platform by hash; its names are still checked."""
    with zipfile.ZipFile(archive_path) as archive:
        members = archive.infolist()
        for member in members:
            parts = PurePosixPath(member.filename).parts
            if (member.is_dir() or not parts or parts[0] != "data" or ".." in parts
                    or member.filename.startswith("/")):
                raise ValueError(f"the kit's files name {member.filename!r}, outside data/")
        for member in members:
            target = kit_dir / member.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


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


def read_outcome(spec: FoldTicket, workdir: Path, result: SandboxResult,
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
            Termination.PROCESSES: f"exceeded the limit of {limits.pids} processes and threads "
                                   f"at once in fold {k}",
            # Never reported: the platform stopped a fold it no longer wants.
            Termination.STOPPED: f"was stopped by the platform in fold {k}",
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
        elif harness.get("kind") == PROBLEM:
            verb = STEP_VERBS.get(harness.get("step"), "running")
            outcome.error_kind = PROBLEM
            outcome.error = (f"the problem's own code raised {error_type} while {verb} in "
                             f"fold {k}, with no part of your submission's code involved: "
                             "not an error of yours, and not counted against your team's "
                             "quota; the event admins can see the traceback")
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
    for attr, name, n in (("y_pred_train", layout.Y_PRED_TRAIN, spec.n_train),
                          ("y_pred_test", layout.Y_PRED_TEST, spec.n_test)):
        loaded = _load_predictions(workdir / name,
                                   max_bytes=max_prediction_bytes(n, spec.prediction_shape))
        if isinstance(loaded, str):
            outcome.error = f"{loaded} in fold {k}"
            return outcome
        setattr(outcome, attr, loaded)
    return outcome
