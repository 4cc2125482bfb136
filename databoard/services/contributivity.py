"""Contributivity on the leaderboard: recomputed in the background, debounced.

When an evaluation of an event is scored, an update is scheduled for
``DATARUN_CONTRIBUTIVITY_DEBOUNCE_S`` later unless one is already pending,
so a burst of scores costs one computation.
"""
import logging
from datetime import timedelta

from celery import current_app as celery_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from databoard.models import Event, Submission
from datarun import selectors as datarun_selectors
from datarun import services as datarun_services

logger = logging.getLogger(__name__)

UPDATE_TASK = "databoard.tasks.update_contributivity"


def contributivity_schedule(*, evaluation_id: int) -> None:
    """Called when ``evaluation_id`` is scored (datarun's evaluation_scored)."""
    event_id = (Submission.objects.filter(evaluation_id=evaluation_id)
                .values_list("team__event_id", flat=True).first())
    if event_id is None:
        return
    delay = settings.DATARUN_CONTRIBUTIVITY_DEBOUNCE_S
    with transaction.atomic():
        pending = Event.objects.filter(id=event_id, contributivity_due_at__isnull=True).update(
            contributivity_due_at=timezone.now() + timedelta(seconds=delay))
        if pending:
            transaction.on_commit(lambda: celery_app.send_task(
                UPDATE_TASK, args=[event_id], queue="scoring", countdown=delay))


def contributivity_update(*, event_id: int) -> dict[int, float | None]:
    """Recompute every submission's contributivity in the event (idempotent)."""
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(id=event_id).first()
        if event is None:
            return {}
        # Scores arriving from now on schedule a new update.
        Event.objects.filter(id=event_id).update(contributivity_due_at=None)
    submissions = list(Submission.objects.of_event(event).only("id", "evaluation_id"))
    states = datarun_selectors.evaluation_states([s.evaluation_id for s in submissions])
    scored = [s.evaluation_id for s in submissions
              if states.get(s.evaluation_id, {}).get("state") == "scored"]
    values = datarun_services.evaluations_contributivity(evaluation_ids=scored) if scored else {}
    out = {}
    for sub in submissions:
        value = values.get(sub.evaluation_id)
        out[sub.id] = value
        Submission.objects.filter(id=sub.id).update(contributivity=value)
    logger.info("contributivity of %s: %d scored submissions", event.name, len(scored))
    return out
