"""Sensitive-data problems on a runner's machine: prepared there, scored
there, and only their metadata, hashes, published starting kit and scores
ever sent to the platform.

``datarun runner prepare`` prepares a RAMP kit into the runner's home
(``problems/<name>/<data hash>-<folds hash>/``) and registers it with the
pool. A fold of such a problem reaches the runner as a ticket with
``scoring == "runner"``: :func:`run_locally_scored` reads the inputs from the
local copy (checking them against the hashes the ticket names), runs the fold,
scores it with the kit's own score types, keeps the predictions on the
machine (``predictions/<evaluation>/``) and, once it holds every fold's,
computes the bagged scores too.
"""
import base64
import shutil
import tempfile
from pathlib import Path

import numpy as np

from datarun import ramp_kits, scoring
from datarun.contract import INPUT_NAMES, FoldOutcome, FoldTicket
from workers.runner_client import InputMismatch, RunnerClient


def problem_dir(home: Path, name: str, data_hash: str) -> Path | None:
    """The local copy of problem ``name`` at ``data_hash``, if this runner has it."""
    folder = Path(home) / "problems" / name
    for candidate in sorted(folder.glob(f"{data_hash[:16]}-*")) if folder.is_dir() else ():
        if (candidate / "folds.npz").is_file():
            return candidate
    return None


def prepare_and_register(kit_dir: Path, *, name: str, home: Path, client: RunnerClient,
                         publish_starting_kit: bool = True) -> dict:
    """Prepare the kit here and register its metadata with the pool."""
    staging = Path(tempfile.mkdtemp(prefix="prepare-", dir=_ensure(Path(home) / "problems")))
    try:
        kit = ramp_kits.prepare_kit(Path(kit_dir).resolve(), staging / "prepared", public=False)
        final = Path(home) / "problems" / name / f"{kit.data_hash[:16]}-{kit.folds_hash[:16]}"
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            (staging / "prepared").rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    published = {}
    if publish_starting_kit:
        starting = final / "kit" / "submissions" / "starting_kit"
        published = {f"submissions/starting_kit/{p.name}": p.read_bytes()
                     for p in sorted(starting.iterdir()) if p.is_file()} \
            if starting.is_dir() else {}
        readme = final / "kit" / "README.md"
        if readme.is_file():
            published["README.md"] = readme.read_bytes()
    metadata = {
        "name": name, "title": kit.title, "workflow_elements": kit.workflow_elements,
        "prediction_shape": kit.prediction_shape, "n_train": kit.n_train,
        "n_test": kit.n_test, "n_folds": kit.n_folds, "data_hash": kit.data_hash,
        "folds_hash": kit.folds_hash,
        "score_types": [{k: getattr(st, k) for k in ("name", "is_lower_the_better", "precision",
                                                     "minimum", "maximum")}
                        for st in kit.score_types],
        "fold_inputs": [ramp_kits.fold_input_digests(final, k) for k in range(kit.n_folds)],
        "starting_kit": {path: base64.b64encode(data).decode()
                         for path, data in published.items()},
    }
    client.register_problem(metadata)
    return {"name": name, "prepared": str(final), "n_train": kit.n_train,
            "n_test": kit.n_test, "n_folds": kit.n_folds, "published": sorted(published)}


def local_inputs(ticket: FoldTicket, prepared: Path) -> dict[str, Path]:
    """The fold's inputs from the local copy, each checked against the hash
    the ticket names (the platform's record of what was registered)."""
    digests = ramp_kits.fold_input_digests(prepared, ticket.fold_index)
    for name in INPUT_NAMES:
        if digests.get(name) != ticket.inputs.get(name):
            raise InputMismatch(f"the local copy of {ticket.problem}'s {name} does not match "
                                "the hash registered with the platform")
    return ramp_kits.fold_inputs(prepared, ticket.fold_index)


def score_locally(ticket: FoldTicket, prepared: Path, outcome: FoldOutcome, *,
                  share_logs: bool) -> FoldOutcome:
    """Score the fold here; the outcome keeps only what may leave the
    machine: scores (and bagged scores once every fold's predictions are
    here), resource figures, and logs only if the owner shares them."""
    trusted = ramp_kits.load_trusted(str(prepared), ticket.data_hash)
    scores = scoring.check_and_score_fold(trusted, ticket, outcome)
    if scores is not None:
        kept = prepared / "predictions" / str(ticket.evaluation_id)
        kept.mkdir(parents=True, exist_ok=True)
        for which, array in (("train", outcome.y_pred_train), ("test", outcome.y_pred_test)):
            np.save(kept / f"fold_{ticket.fold_index}_{which}.npy", array, allow_pickle=False)
        outcome.scores = scores
        outcome.bagged = _bagged_if_complete(trusted, kept)
    outcome.y_pred_train = outcome.y_pred_test = None
    if not share_logs:
        outcome.stdout = outcome.stderr = outcome.error_traceback = ""
        if outcome.error:
            # The message may quote the data: only where it failed goes out.
            outcome.error = (outcome.error.split(":", 1)[0]
                             + " (details stay on the data owner's machine)")
    return outcome


def _bagged_if_complete(trusted, kept: Path) -> dict | None:
    n = len(trusted.folds)
    paths = [(kept / f"fold_{k}_train.npy", kept / f"fold_{k}_test.npy") for k in range(n)]
    if not all(train.is_file() and test.is_file() for train, test in paths):
        return None
    trains = [np.load(train, allow_pickle=False) for train, _ in paths]
    tests = [np.load(test, allow_pickle=False) for _, test in paths]
    return scoring.bagged_scores(trusted.problem, trusted.y_train, trusted.y_test,
                                 trusted.folds, trains, tests)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
