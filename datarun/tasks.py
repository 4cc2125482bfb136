"""datarun's Celery tasks (queue ``scoring``): the trusted side's background
work. Thin, idempotent callers of services, taking IDs only."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from datarun import services

# A task that meets a database error (a restart) is retried with backoff
# instead of failing; beat's reaper re-sends what is lost beyond that.
RETRY_DATABASE_ERRORS = {"autoretry_for": (OperationalError, InterfaceError),
                         "retry_backoff": 1, "retry_backoff_max": 30, "max_retries": 10}


@shared_task(name="datarun.tasks.score_evaluation", acks_late=True, **RETRY_DATABASE_ERRORS)
def score_evaluation(evaluation_id: int) -> None:
    services.evaluation_score(evaluation_id=evaluation_id)


@shared_task(name="datarun.tasks.reap_stale_fold_runs")
def reap_stale_fold_runs() -> dict:
    return services.fold_runs_reap()


@shared_task(name="datarun.tasks.refresh_datasets")
def refresh_datasets() -> dict:
    return services.datasets_refresh_due()


@shared_task(name="datarun.tasks.build_environment", acks_late=True, **RETRY_DATABASE_ERRORS)
def build_environment(environment_id: int) -> None:
    services.environment_build(environment_id=environment_id)
