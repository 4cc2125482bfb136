"""databoard's Celery tasks (queue ``scoring``)."""
from celery import shared_task

from databoard.services.contributivity import contributivity_update


@shared_task(name="databoard.tasks.update_contributivity", acks_late=True)
def update_contributivity(event_id: int) -> None:
    contributivity_update(event_id=event_id)
