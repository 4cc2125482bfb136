"""Evaluations: accepting submission files and dispatching one task per fold."""

import logging

from celery import current_app as celery_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datarun import precheck, storage, submission_files
from datarun.errors import InvalidSubmission, InvalidTransition
from datarun.models import (
    ComputePool,
    Evaluation,
    FoldRun,
    Problem,
)
from datarun.services.environments import problem_check_environment
from datarun.services.runs import artifact_add, run_metadata
from datarun.states import RunState

logger = logging.getLogger(__name__)


RUN_FOLD_TASK = "workers.tasks.run_fold"
SCORE_TASK = "datarun.tasks.score_evaluation"



def default_limits() -> dict:
    return {
        "wall_time_s": settings.DATARUN_FOLD_TIME_LIMIT,
        "memory_mb": settings.DATARUN_FOLD_MEMORY_LIMIT_MB,
        "cpus": settings.DATARUN_FOLD_CPUS,
    }


def effective_limits(*, problem: Problem | None, overrides: dict | None = None) -> dict:
    """The per-fold limits a fold of ``problem`` runs under: ``overrides`` (an
    event's own limits) over the problem's (a declarative spec's) over the
    platform's defaults.

    Everything that shows limits (event API and page, starting kit) and
    everything that enforces them (the evaluation, hence its run metadata and
    every fold's sandbox) calls this, so what is shown is what holds.
    ``problem`` is None for an event whose problem is gone (nothing runs).
    """
    own = ((problem.spec or {}).get("limits") or {}) if problem is not None else {}
    return {**default_limits(), **own, **(overrides or {})}


def validate_submission_files(problem: Problem, files: dict[str, bytes]) -> None:
    submission_files.validate_files(
        submission_files.expected_file_names(problem.workflow_elements), files
    )


def precheck_submission_files(problem: Problem, files: dict[str, bytes]) -> None:
    """What a new submission must pass before it is queued (and counted):
    the workflow's files, within the limits, and Python that compiles.
    Re-runs skip the syntax check: they run what was once accepted."""
    validate_submission_files(problem, files)
    problem_check_environment(problem)
    syntax = precheck.first_syntax_problem(files)
    if syntax is not None:
        raise InvalidSubmission(str(syntax), extra=syntax.as_details())


@transaction.atomic
def evaluation_create(*, problem: Problem, files: dict[str, bytes],
                      limits: dict | None = None, started_by: str = "",
                      reproduces: Evaluation | None = None, pool: ComputePool | None = None,
                      owner: str = "") -> Evaluation:
    """Store the files, record the run's metadata and the submission files as
    its artifacts, create one fold run per fold and dispatch them. ``limits``:
    the event's own, applied through :func:`effective_limits`."""
    validate_submission_files(problem, files)
    problem_check_environment(problem)
    digests = {name: storage.blob_put(data) for name, data in sorted(files.items())}
    code_hash = storage.sha256_bytes(
        "".join(f"{n}:{d}\n" for n, d in sorted(digests.items())).encode()
    )
    limits = effective_limits(problem=problem, overrides=limits)
    if problem.pool_id is not None:
        pool = problem.pool  # its data is there: its folds run nowhere else
    # Created queued, its folds too (one statement for them all).
    evaluation = Evaluation.objects.create(
        state=RunState.QUEUED,
        problem=problem,
        files=digests,
        code_hash=code_hash,
        limits=limits,
        sandbox_backend=settings.DATARUN_SANDBOX,
        started_by=started_by,
        reproduces=reproduces,
        pool=pool,
        owner=owner,
        metadata=run_metadata(problem=problem, files=digests, code_hash=code_hash,
                              limits=limits, sandbox_backend=settings.DATARUN_SANDBOX),
    )
    for name, data in sorted(files.items()):
        artifact_add(evaluation_id=evaluation.id, name=f"submission/{name}", data=data)
    now = timezone.now()
    folds = FoldRun.objects.bulk_create(
        FoldRun(evaluation=evaluation, fold_index=k, state=RunState.QUEUED, queued_at=now)
        for k in range(problem.n_folds))
    ids = [fold_run.id for fold_run in folds]
    if evaluation.pool_id is None:
        transaction.on_commit(lambda: send_fold_tasks(ids))
    # Else the pool's runners pull the folds (datarun.services.pools).
    return evaluation


def send_fold_tasks(fold_run_ids: list[int]) -> int:
    """Hand each fold's message to the broker and record when (the outbox:
    a queued fold without ``dispatched_at`` still owes its message, and the
    reaper sends it). A broker that cannot be reached is logged, never
    raised: what was committed stays accepted. Returns how many were sent."""
    sent = []
    for fold_run_id in fold_run_ids:
        try:
            send_fold_task(fold_run_id)
        except Exception:  # noqa: BLE001 - kombu and redis raise many kinds
            logger.warning("could not send fold run %s's message (the reaper will): "
                           "broker unreachable", fold_run_id, exc_info=True)
            break
        sent.append(fold_run_id)
    if sent:
        FoldRun.objects.filter(id__in=sent, state=RunState.QUEUED).update(
            dispatched_at=timezone.now())
    return len(sent)


def send_fold_task(fold_run_id: int) -> None:
    celery_app.send_task(RUN_FOLD_TASK, args=[fold_run_id], queue="sandbox")


def send_scoring_task(evaluation_id: int) -> bool:
    """Send the scoring task; False when the broker cannot be reached (the
    reaper sends it again)."""
    try:
        celery_app.send_task(SCORE_TASK, args=[evaluation_id], queue="scoring")
    except Exception:  # noqa: BLE001
        logger.warning("could not send evaluation %s's scoring task (the reaper will)",
                       evaluation_id, exc_info=True)
        return False
    return True


@transaction.atomic
def evaluation_cancel(*, evaluation_id: int) -> Evaluation:
    """Cancel an evaluation that has not finished; folds not started will not
    run and a running fold is stopped at its next heartbeat, its result ignored."""
    # Fold runs first, then the evaluation: the order a worker's claim takes
    # them in, so that a cancel and a claim never wait on each other.
    list(FoldRun.objects.select_for_update().filter(evaluation_id=evaluation_id).order_by("id"))
    evaluation = Evaluation.objects.select_for_update().get(id=evaluation_id)
    if evaluation.state in (RunState.SCORED, RunState.ERROR, RunState.CANCELLED):
        raise InvalidTransition(f"the evaluation is already {evaluation.state}")
    now = timezone.now()
    evaluation.set_state(RunState.CANCELLED)
    evaluation.finished_at = now
    evaluation.save(update_fields=["state", "finished_at"])
    for fold_run in evaluation.fold_runs.select_for_update().exclude(
        state__in=[RunState.SCORED, RunState.ERROR, RunState.CANCELLED]
    ):
        fold_run.set_state(RunState.CANCELLED)
        fold_run.finished_at = now
        fold_run.save(update_fields=["state", "finished_at"])
    return evaluation


@transaction.atomic
def evaluation_rerun(*, evaluation_id: int, started_by: str = "") -> Evaluation:
    """A new evaluation of the same files with the same limits; the old one
    stays as it was."""
    old = Evaluation.objects.select_related("problem").get(id=evaluation_id)
    if old.state not in (RunState.SCORED, RunState.ERROR, RunState.CANCELLED):
        raise InvalidTransition(f"the evaluation is still {old.state}: cancel it first")
    files = {name: storage.blob_get(digest) for name, digest in old.files.items()}
    return evaluation_create(problem=old.problem, files=files, limits=old.limits,
                             started_by=started_by, pool=old.pool, owner=old.owner)
