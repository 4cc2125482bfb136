"""databoard's Celery tasks (queue ``scoring``)."""
from celery import shared_task

from databoard.services.contributivity import contributivity_resend_lost, contributivity_update
from databoard.services.notifications import submission_notify
from datarun.tasks import RETRY_DATABASE_ERRORS


@shared_task(name="databoard.tasks.update_contributivity", acks_late=True,
             **RETRY_DATABASE_ERRORS)
def update_contributivity(event_id: int) -> None:
    contributivity_update(event_id=event_id)


@shared_task(name="databoard.tasks.resend_lost_contributivity")
def resend_lost_contributivity() -> list[int]:
    return contributivity_resend_lost()


# A mail server that is down for a moment: try again, a few times, spaced out.
@shared_task(name="databoard.tasks.notify_submission_finished", acks_late=True,
             autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def notify_submission_finished(evaluation_id: int) -> int:
    return submission_notify(evaluation_id=evaluation_id)
