"""datarun's Celery tasks (queue ``scoring``): the trusted side's background
work. Thin, idempotent callers of services, taking IDs only."""
from celery import shared_task

from datarun import services


@shared_task(name="datarun.tasks.score_evaluation", acks_late=True)
def score_evaluation(evaluation_id: int) -> None:
    services.evaluation_score(evaluation_id=evaluation_id)


@shared_task(name="datarun.tasks.reap_stale_fold_runs")
def reap_stale_fold_runs() -> dict:
    return services.fold_runs_reap()


@shared_task(name="datarun.tasks.refresh_datasets")
def refresh_datasets() -> dict:
    return services.datasets_refresh_due()
