"""Running a kit's submission on this machine, as the server would (no Django).

``run_kit`` prepares the kit in a temporary folder with the server's
:func:`~datarun.ramp_kits.prepare_kit`, runs each fold through the runners'
fold contract and work dir layout (:mod:`workers.fold_io`) and local sandbox,
then checks and scores the predictions in the order
``datarun.services.fold_runs`` does:
predictions checked, fold scored, and once every fold is scored, mean ± std
over folds and bagged scores. The same kit and files therefore get the same
numbers here as on a server.
"""
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from datarun import contract, environments, ramp_kits, scoring
from datarun.contract import FoldOutcome, FoldTicket
from datarun.errors import InvalidKit, InvalidSubmission
from datarun.ramp_kits import KIT_LIMITS_FILE
from datarun.submission_files import expected_file_names
from workers.fold_io import prepare_workdir, read_outcome
from workers.sandbox import Limits, SandboxFailure
from workers.sandbox.local import LocalSandbox

# The server's defaults (DATARUN_FOLD_TIME_LIMIT, DATARUN_FOLD_MEMORY_LIMIT_MB,
# DATARUN_FOLD_CPUS in config/settings.py); an event may set others.
DEFAULT_LIMITS = Limits(wall_time_s=600.0, memory_mb=2048, cpus=1.0)

Progress = Callable[[dict], None]


def kit_limits(kit_dir: Path) -> Limits:
    """The limits of the event the kit was downloaded from (its
    ``limits.json``), else the server's defaults."""
    path = Path(kit_dir) / KIT_LIMITS_FILE
    if not path.is_file():
        return DEFAULT_LIMITS
    try:
        limits = json.loads(path.read_text())["limits"]
        return Limits(wall_time_s=float(limits["wall_time_s"]),
                      memory_mb=int(limits["memory_mb"]), cpus=float(limits["cpus"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidKit(f"{path} is not a kit's limits file ({exc!r}): download the "
                         "kit again or remove it") from exc


def local_environments() -> tuple[Path, Path, environments.PipSource]:
    """Where ``datarun test`` keeps kits' environments on this machine (by
    lock hash, reused from run to run), their wheels, and where pip gets
    them: ``DATARUN_ENVIRONMENTS_DIR``, ``DATARUN_ENV_WHEELS_DIR``,
    ``DATARUN_ENV_INDEX_URL`` and ``DATARUN_ENV_FIND_LINKS`` as on a server,
    by default under ``~/.cache/datarun``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "datarun"
    folder = Path(os.environ.get("DATARUN_ENVIRONMENTS_DIR") or cache / "environments")
    wheels = Path(os.environ.get("DATARUN_ENV_WHEELS_DIR") or folder / "wheels")
    source = environments.PipSource(
        index_url=os.environ.get("DATARUN_ENV_INDEX_URL", ""),
        find_links=tuple(p for p in os.environ.get("DATARUN_ENV_FIND_LINKS", "").split(",")
                         if p))
    return folder, wheels, source


def kit_environment(kit_dir: Path, notify: Progress) -> tuple[environments.Lock, Path] | None:
    """The lock a kit declares and its venv's interpreter (built on first
    use), or None for a kit that declares no environment."""
    folder, wheels, source = local_environments()
    try:
        lock = environments.kit_lock(kit_dir, source)
        if lock is None:
            return None
        if environments.venv_python(folder, lock.hash) is None:
            notify({"stage": "environment", "lock_hash": lock.hash,
                    "n_packages": len(lock.packages), "folder": str(folder / lock.hash)})
        return lock, environments.ensure_built(lock, folder, wheels, source)
    except environments.EnvironmentError_ as exc:
        raise InvalidKit(f"the kit's environment: {exc.message}") from exc


def run_kit(kit_dir: Path, submission: str = "starting_kit", *,
            limits: Limits = DEFAULT_LIMITS, on_progress: Progress | None = None,
            own_environment: bool = True) -> dict:
    """Train, predict and score ``submissions/<submission>`` of the kit on every fold.

    Returns the problem, the score types, one row per fold (scores and
    resources) and the scores over folds; ``error`` is set (and ``state`` is
    ``"error"``) when a fold or the bagged scoring failed. Raises
    :class:`~datarun.errors.ApplicationError` (``InvalidKit``,
    ``InvalidSubmission``) when the kit or the submission cannot be run at all.
    ``on_progress`` receives ``{"stage": "environment" | "preparing" |
    "running" | "done", ...}`` as the run goes.

    A kit that declares its environment (``requirements-lock.txt``, as a
    starting kit downloaded from such an event holds it, or
    ``requirements.txt``) runs in it, as on the server: its data prepared by
    its own code there and its folds run with its interpreter
    (``own_environment=False``: with this machine's packages).
    """
    notify = on_progress or (lambda event: None)
    kit_dir = Path(kit_dir).resolve()
    submission_dir = find_submission(kit_dir, submission)
    tmp = Path(tempfile.mkdtemp(prefix="datarun-test-"))
    sandbox = LocalSandbox(work_dir=tmp / "work")
    try:
        environment = kit_environment(kit_dir, notify) if own_environment else None
        interpreter = environment[1] if environment is not None else None
        notify({"stage": "preparing", "kit": str(kit_dir)})
        if interpreter is None:
            # The fork server loads its libraries while the kit is prepared.
            sandbox.warm_up()
        kit = ramp_kits.prepare_kit(kit_dir, tmp / "prepared", public=False,
                                    load_data=interpreter is None)
        if interpreter is not None:
            kit = _prepare_in(interpreter, kit, tmp / "prepared")
        files = _submission_files(submission_dir, kit.workflow_elements)
        report = {
            "problem": kit.title,
            "kit": str(kit_dir),
            "submission": submission,
            "score_types": [
                {"name": st.name, "is_lower_the_better": st.is_lower_the_better,
                 "precision": st.precision, "official": st.index == 0}
                for st in kit.score_types
            ],
            "limits": {"wall_time_s": limits.wall_time_s, "memory_mb": limits.memory_mb,
                       "cpus": limits.cpus},
            "isolation": sandbox.isolation,
            "environment": None if environment is None else {
                "lock_hash": environment[0].hash, "python": str(interpreter),
                "packages": {p.name: p.version for p in environment[0].packages}},
            "state": "running",
            "folds": [],
            "scores": {},
            "error": None,
        }
        # Uncached: the folder is gone after this run, and a process that tests
        # many kits should not keep their data.
        trusted = ramp_kits.load_trusted.__wrapped__(str(tmp / "prepared"), kit.data_hash)
        fold_scores, y_pred_trains, y_pred_tests = [], [], []
        for k in range(kit.n_folds):
            notify({"stage": "running", "fold": k, "n_folds": kit.n_folds})
            spec = FoldTicket(
                fold_run_id=k, evaluation_id=0, fold_index=k, attempt=1,
                inputs=ramp_kits.fold_input_digests(tmp / "prepared", k), files=files,
                limits=report["limits"], n_train=kit.n_train, n_test=kit.n_test,
                prediction_shape=kit.prediction_shape,
            )
            outcome = _run_fold(sandbox, spec, tmp / "prepared", submission_dir, limits,
                                interpreter)
            scores = scoring.check_and_score_fold(trusted, spec, outcome)
            row = _fold_row(k, outcome, scores)
            report["folds"].append(row)
            notify({"stage": "done", "fold": k, "n_folds": kit.n_folds, "row": row,
                    "error": outcome.error})
            if outcome.error:
                # As on the server: the first failed fold fails the submission.
                report["error"] = _fold_error(k, outcome)
                report["state"] = "error"
                return report
            fold_scores.append(scores)
            y_pred_trains.append(outcome.y_pred_train)
            y_pred_tests.append(outcome.y_pred_test)
        report["scores"], error = _scores_over_folds(
            trusted, fold_scores, y_pred_trains, y_pred_tests)
        report["error"] = error
        report["state"] = "error" if error else "scored"
        return report
    finally:
        sandbox.close()
        shutil.rmtree(tmp, ignore_errors=True)


def find_submission(kit_dir: Path, submission: str) -> Path:
    """``kit_dir/submissions/<submission>``, or an error naming the ones there are."""
    if not Path(kit_dir).is_dir():
        raise InvalidKit(f"{kit_dir} is not a folder: give the path of a RAMP kit "
                         "(the folder holding problem.py, data/ and submissions/)")
    if not (Path(kit_dir) / "problem.py").is_file():
        raise InvalidKit(f"{kit_dir} is not a RAMP kit: it has no problem.py")
    available = submission_names(kit_dir)
    if "/" in submission or submission in (".", "..") or submission not in available:
        listed = ", ".join(available) if available else "none (submissions/ is empty or missing)"
        raise InvalidSubmission(
            f"the kit has no submission {submission!r} (no folder submissions/{submission}); "
            f"its submissions are: {listed}"
        )
    return Path(kit_dir) / "submissions" / submission


def submission_names(kit_dir: Path) -> list[str]:
    folder = Path(kit_dir) / "submissions"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "__")))


def _submission_files(submission_dir: Path, workflow_elements: list[str]) -> dict[str, str]:
    """The files a server would accept for this workflow: exactly one per element."""
    names = expected_file_names(workflow_elements)
    missing = [n for n in names if not (submission_dir / n).is_file()]
    if missing:
        raise InvalidSubmission(
            f"submissions/{submission_dir.name} lacks {', '.join(missing)}: this problem's "
            f"workflow needs {', '.join(names)}"
        )
    return {name: contract.sha256_file(submission_dir / name) for name in names}


def _prepare_in(interpreter: Path, kit: ramp_kits.PreparedKit,
                prepared: Path) -> ramp_kits.PreparedKit:
    """The kit's inputs made again by its own code in its environment, as
    the server makes them once the problem's environment is built."""
    staging = prepared / ".environment-staging"
    try:
        summary = environments.prepare_in_environment(interpreter, prepared / "kit", staging)
    except environments.EnvironmentError_ as exc:
        raise InvalidKit(f"the kit's environment: {exc.message}") from exc
    data_hash, folds_hash = environments.install_prepared(prepared, staging)
    return replace(kit, n_train=summary["n_train"], n_test=summary["n_test"],
                   n_folds=summary["n_folds"], prediction_shape=summary["prediction_shape"],
                   data_hash=data_hash, folds_hash=folds_hash)


def _run_fold(sandbox: LocalSandbox, spec: FoldTicket, prepared: Path, submission_dir: Path,
              limits: Limits, interpreter: Path | None = None) -> FoldOutcome:
    """What ``workers.fold_runner.run_ticket`` does, with the inputs on this disk."""
    workdir = None
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"fold-{spec.fold_index}-",
                                        dir=sandbox.workdir_parent()))
        prepare_workdir(spec, workdir, inputs=ramp_kits.fold_inputs(prepared, spec.fold_index),
                        files={name: submission_dir / name for name in spec.files},
                        link_inputs=sandbox.inputs_read_only)
        result = sandbox.run(workdir, limits, heartbeat=lambda: None, interpreter=interpreter)
        return read_outcome(spec, workdir, result, limits)
    except SandboxFailure as exc:
        return FoldOutcome(
            error=f"the sandbox failed while running fold {spec.fold_index}: {exc} "
                  "(a failure of this machine's sandbox, not an error in your code)",
            error_kind=contract.PLATFORM,
        )
    finally:
        if workdir is not None:
            sandbox.cleanup(workdir)


def _scores_over_folds(trusted: ramp_kits.TrustedInputs, fold_scores: list[dict],
                       y_pred_trains: list, y_pred_tests: list) -> tuple[dict, dict | None]:
    """``{score: {step: {mean, std, bagged}}}`` as ``fold_runs.evaluation_score``
    computes them, or an error when the bagged predictions cannot be scored."""
    try:
        bagged = scoring.bagged_scores(trusted.problem, trusted.y_train, trusted.y_test,
                                       trusted.folds, y_pred_trains, y_pred_tests)
    except Exception as exc:  # noqa: BLE001
        return {}, {"fold": None, "kind": contract.PARTICIPANT,
                    "message": f"the bagged predictions could not be scored: "
                               f"{type(exc).__name__}: {exc}",
                    "traceback": "", "stdout": "", "stderr": ""}
    out: dict[str, dict] = {}
    for st in trusted.problem.score_types:
        out[st.name] = {}
        for step in scoring.STEPS:
            mean, std = scoring.mean_std([by_step[step][st.name] for by_step in fold_scores])
            out[st.name][step] = {"mean": _finite(mean), "std": _finite(std),
                                  "bagged": _finite(bagged.get(step, {}).get(st.name))}
    return out, None


def _finite(value: float | None) -> float | None:
    """As the server's API shows scores: NaN and infinities are missing (None)."""
    return value if value is not None and math.isfinite(value) else None


def _fold_row(k: int, outcome: FoldOutcome, scores: dict | None) -> dict:
    return {
        "fold": k,
        "state": "error" if outcome.error else "scored",
        "scores": {step: {name: _finite(v) for name, v in by_name.items()}
                   for step, by_name in (scores or {}).items()},
        **{name: getattr(outcome, name) for name in (
            "train_time", "valid_time", "test_time", "wall_time", "cpu_time", "peak_memory")},
    }


def _fold_error(k: int, outcome: FoldOutcome) -> dict:
    return {"fold": k, "kind": str(outcome.error_kind), "message": outcome.error,
            "traceback": outcome.error_traceback, "stdout": outcome.stdout,
            "stderr": outcome.stderr}
