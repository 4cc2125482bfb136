"""Celery tasks: thin, idempotent callers of services, taking IDs only."""
import logging
import os

from celery import shared_task
from celery.signals import celeryd_init, worker_process_init, worker_process_shutdown

from datarun import services


@shared_task(name="workers.tasks.run_fold", acks_late=True)
def run_fold(fold_run_id: int) -> None:
    from workers.fold_runner import execute_fold_run

    execute_fold_run(fold_run_id)


@shared_task(name="workers.tasks.score_evaluation", acks_late=True)
def score_evaluation(evaluation_id: int) -> None:
    services.evaluation_score(evaluation_id=evaluation_id)


@shared_task(name="workers.tasks.reap_stale_fold_runs")
def reap_stale_fold_runs() -> dict:
    return services.fold_runs_reap()


@shared_task(name="workers.tasks.refresh_datasets")
def refresh_datasets() -> dict:
    return services.datasets_refresh_due()


logger = logging.getLogger(__name__)


@celeryd_init.connect
def _sweep_orphan_containers(sender=None, **kwargs) -> None:
    # Runs once in the worker's main process, before it takes any task: fold
    # containers still labelled with this node's name were left by a worker
    # that was killed outright, and nobody else will remove them.
    from django.conf import settings

    if settings.DATARUN_SANDBOX != "docker" or not sender:
        return
    from workers.sandbox import SandboxFailure
    from workers.sandbox.docker_backend import NODE_ENV, remove_orphans

    os.environ[NODE_ENV] = str(sender)
    try:
        remove_orphans(str(sender))
    except SandboxFailure as exc:
        logger.error("%s", exc)


@worker_process_init.connect
def _warm_sandbox(**kwargs) -> None:
    # Start the fork server (or find the runtime image) with the worker
    # process, not with its first fold.

    from workers.fold_runner import worker_backend
    from workers.sandbox import SandboxFailure

    try:
        worker_backend().warm_up()
    except SandboxFailure as exc:
        # Each fold will fail with this message too, marked as a platform error.
        logger.error("sandbox not ready: %s", exc)


@worker_process_shutdown.connect
def _close_sandbox(**kwargs) -> None:
    # The local backend's fork server and its root under DATARUN_WORK_DIR
    # would otherwise outlive the worker process.
    from workers.fold_runner import worker_backend

    worker_backend().close()


@shared_task(name="workers.tasks.update_contributivity", acks_late=True)
def update_contributivity(event_id: int) -> None:
    from databoard.services.contributivity import contributivity_update

    contributivity_update(event_id=event_id)
