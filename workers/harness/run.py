"""Train a submission on one fold and write its predictions.

Reads the work dir laid out as in :mod:`workers.harness.layout`: the problem
definition, the training features and labels, the fold's indices and the test
features. Trains on the fold's training rows, predicts on every training row
and on the test features, and writes both predictions as ``.npy`` plus a
``result.json`` with step timings, or with the error of the participant's code.
"""
import json
import os
import pickle
import sys
import sysconfig
import time
import traceback
import warnings
from inspect import signature
from pathlib import Path

from workers.harness import layout, predictions

# Process exit codes the worker understands.
EXIT_OK = 0
EXIT_SUBMISSION_ERROR = 3
# Whose code an error came from (result.json's "kind"; the worker maps them to
# ``datarun.contract.PARTICIPANT`` and ``PROBLEM``).
PARTICIPANT = "participant"
PROBLEM = "problem"
# pandas as in a kit's own environment, without pyarrow's string arrays (the
# trusted side loads the kit's data the same way: datarun.ramp_kits.KIT_PANDAS_OPTIONS).
KIT_PANDAS_OPTIONS = {"mode.string_storage": "python"}


class SubmissionError(Exception):
    """A fold step failed; carries the step, whose code failed and the
    traceback that reader may see."""

    def __init__(self, step: str, exc: BaseException, submission_dir: Path,
                 kind: str | None = None):
        super().__init__(str(exc))
        self.step = step
        self.error_type = type(exc).__name__
        self.kind = kind or charged_to(exc, submission_dir)
        self.message = _exception_message(exc, submission_dir)
        if self.kind == PARTICIPANT:
            self.traceback = participant_traceback(exc, submission_dir)
        else:
            # For the event admins only: every frame, host paths hidden.
            self.traceback = hide_host_paths(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                submission_dir)


def _in_folder(filename: str | None, root: str) -> bool:
    return bool(filename) and os.path.realpath(filename).startswith(root)


def charged_to(exc: BaseException, submission_dir: Path) -> str:
    """:data:`PARTICIPANT` when the participant's code took part in ``exc``,
    :data:`PROBLEM` when it was raised by the problem's or the platform's
    code alone (the kit's workflow, its data, the libraries they call).

    The participant's code took part when a frame of the traceback (of the
    exception or of one it was raised from) is in their files, a syntax error
    points into them, or a frame runs a method of a model (an object with a
    ``fit`` method): that model is what the participant's code returned, even
    when its class is a library's (a stock pipeline that cannot take text
    columns is the participant's error, not the kit's).
    """
    root = os.path.realpath(submission_dir) + os.sep
    if _forbidden_word(exc):
        return PARTICIPANT
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SyntaxError) and _in_folder(exc.filename, root):
            return PARTICIPANT
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if _in_folder(frame.f_code.co_filename, root):
                return PARTICIPANT
            if frame.f_code.co_argcount and frame.f_code.co_varnames[0] == "self":
                owner = frame.f_locals.get("self")
                if callable(getattr(type(owner), "fit", None)):
                    return PARTICIPANT
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return PROBLEM


def _forbidden_word(exc: BaseException) -> bool:
    """Whether ``exc`` is ramp-workflow refusing the submission's source for a
    word on its list (``subprocess``, ``open(`` …): raised while reading the
    participant's file, before any of it runs, so no frame of theirs shows."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_sanitize_input" and \
                code.co_filename.endswith(os.path.join("rampwf", "utils", "sanitize.py")):
            return True
        tb = tb.tb_next
    return False


def _exception_message(exc: BaseException, submission_dir: Path) -> str:
    if isinstance(exc, SyntaxError):
        where = f"{Path(exc.filename).name}, line {exc.lineno}" if exc.filename else ""
        return f"{exc.msg} ({where})" if where else str(exc.msg)
    return hide_host_paths(str(exc), submission_dir)


def _host_prefixes() -> list[str]:
    """Where the interpreter's libraries lie on this machine (also through
    the real path of a linked venv), longest first."""
    paths = sysconfig.get_paths()
    prefixes = set()
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        for path in (paths[key], os.path.realpath(paths[key])):
            prefixes.add(path.rstrip(os.sep) + os.sep)
    return sorted(prefixes, key=len, reverse=True)


def hide_host_paths(text: str, submission_dir: Path | None = None) -> str:
    """``text`` with the machine's layout taken out: the participant's files
    relative to their folder, the work dir's files relative to it, libraries
    by their package path (``sklearn/base.py``)."""
    prefixes = []
    if submission_dir is not None:
        for folder in (submission_dir, submission_dir.parent):
            prefixes += [str(folder) + os.sep, str(folder.resolve()) + os.sep]
    for prefix in [*sorted(set(prefixes), key=len, reverse=True), *_host_prefixes()]:
        text = text.replace(prefix, "")
    return text


def show_warnings_without_host_paths(submission_dir: Path) -> None:
    """Warnings (printed to the participant's log) name files the same way."""
    original = warnings.formatwarning

    def formatwarning(message, category, filename, lineno, line=None):
        return hide_host_paths(original(message, category, filename, lineno, line),
                               submission_dir)

    warnings.formatwarning = formatwarning


def participant_traceback(exc: BaseException, submission_dir: Path) -> str:
    """The traceback limited to frames in the participant's own files.

    Platform and library frames are left out: they say nothing the
    participant can act on and they reveal the sandbox layout.
    """
    root = str(submission_dir.resolve()) + os.sep
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(root)
    ]
    for f in frames:
        f.filename = f.filename[len(root):]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    exc_only = traceback.format_exception_only(type(exc), exc)
    lines += [hide_host_paths(line, submission_dir) for line in exc_only]
    return "".join(lines)


def use_kit_pandas_options() -> None:
    try:
        import pandas as pd
    except ImportError:  # a problem without pandas
        return
    for name, value in KIT_PANDAS_OPTIONS.items():
        pd.set_option(name, value)


def _load_pickle(path: Path):
    # Written by the trusted side: unpickling it here is the safe direction.
    with open(path, "rb") as f:
        return pickle.load(f)


def _import_problem(workdir: Path):
    from rampwf.utils.importing import import_module_from_source

    return import_module_from_source(str(workdir / layout.PROBLEM_FILE), "problem")


def _run_step(step: str, submission_dir: Path, func, *args):
    t0 = time.perf_counter()
    try:
        out = func(*args)
    except Exception as exc:  # noqa: BLE001 - the participant's code may raise anything
        raise SubmissionError(step, exc, submission_dir) from exc
    return out, time.perf_counter() - t0


def run(workdir: Path) -> dict:
    """Train and predict one fold; returns the result written to result.json."""
    import numpy as np

    workdir = Path(workdir).resolve()
    submission_dir = workdir / layout.SUBMISSION_DIR
    show_warnings_without_host_paths(submission_dir)
    t_start = time.perf_counter()
    try:
        use_kit_pandas_options()
        problem = _import_problem(workdir)
        X_train = _load_pickle(workdir / layout.X_TRAIN)
        y_train = _load_pickle(workdir / layout.Y_TRAIN)
        X_test = _load_pickle(workdir / layout.X_TEST)
        with np.load(workdir / layout.FOLD, allow_pickle=False) as fold_file:
            train_is, valid_is = fold_file["train_is"], fold_file["valid_is"]
    except Exception as exc:  # noqa: BLE001 - none of the participant's code ran yet
        raise SubmissionError("load", exc, submission_dir, PROBLEM) from exc
    fold = (train_is, valid_is)
    load_time = time.perf_counter() - t_start
    if (workdir / layout.KIT_DIR).is_dir():
        # X names the kit's folders relative to the kit, as ramp-test runs
        # from the kit's folder.
        os.chdir(workdir / layout.KIT_DIR)

    workflow = problem.workflow
    # Same rule as ramp-workflow: a test_submission(trained, X, fold) gets the fold.
    params = list(signature(workflow.test_submission).parameters)
    fold_passed = len(params) == 3 and params[2] == "fold"
    module_path = str(submission_dir)

    trained, train_time = _run_step(
        "train", submission_dir, workflow.train_submission, module_path, X_train, y_train,
        train_is,
    )
    test_args = (fold,) if fold_passed else ()
    y_pred_train, valid_time = _run_step(
        "validate", submission_dir, workflow.test_submission, trained, X_train, *test_args
    )
    test_args = (None,) if fold_passed else ()
    y_pred_test, test_time = _run_step(
        "test", submission_dir, workflow.test_submission, trained, X_test, *test_args
    )
    try:
        width = None
        if predictions.predicts_objects(problem.Predictions, y_train):
            width = predictions.prediction_shape(problem.Predictions(y_true=y_train).y_pred)[1]
    except Exception as exc:  # noqa: BLE001 - the problem's labels, not the submission
        raise SubmissionError("predict", exc, submission_dir, PROBLEM) from exc
    try:
        if width is not None:
            y_pred_train = predictions.object_table(y_pred_train, width=width,
                                                    what="training set")
            y_pred_test = predictions.object_table(y_pred_test, width=width, what="test set")
        else:
            y_pred_train = predictions.as_numeric_array(y_pred_train, "training set")
            y_pred_test = predictions.as_numeric_array(y_pred_test, "test set")
    except TypeError as exc:
        # What the participant's code returned: theirs, whatever the frames say.
        raise SubmissionError("predict", exc, submission_dir, PARTICIPANT) from exc
    np.save(workdir / layout.Y_PRED_TRAIN, y_pred_train, allow_pickle=False)
    np.save(workdir / layout.Y_PRED_TEST, y_pred_test, allow_pickle=False)
    return {
        "status": "ok",
        "load_time": load_time,
        "train_time": train_time,
        "valid_time": valid_time,
        "test_time": test_time,
    }


def main(workdir: str | os.PathLike) -> int:
    """Run the harness and write result.json; returns the process exit code."""
    workdir = Path(workdir)
    # Wall-clock stamps (same clock inside and outside a container), for
    # bench/sandbox.py's start-up and wind-down figures; informational only.
    started = time.time()
    try:
        result = run(workdir)
        code = EXIT_OK
    except SubmissionError as exc:
        result = {
            "status": "error",
            "step": exc.step,
            "error_type": exc.error_type,
            "message": exc.message,
            "traceback": exc.traceback,
            "kind": exc.kind,
        }
        code = EXIT_SUBMISSION_ERROR
    except MemoryError:
        result = {"status": "error", "step": "run", "error_type": "MemoryError",
                  "message": "out of memory", "traceback": ""}
        code = EXIT_SUBMISSION_ERROR
    result["harness_started"] = started
    result["harness_ended"] = time.time()
    with open(workdir / layout.RESULT, "w") as f:
        json.dump(result, f)
    sys.stdout.flush()
    sys.stderr.flush()
    return code
