"""Celery tasks: thin, idempotent callers of services, taking IDs only."""
from celery import shared_task
from celery.signals import worker_process_init

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


@worker_process_init.connect
def _warm_sandbox(**kwargs) -> None:
    # Start the fork server with the worker process, not with its first fold.
    from django.conf import settings

    if settings.DATARUN_SANDBOX == "local":
        from workers.sandbox.local import LocalSandbox

        LocalSandbox.warm_up()
