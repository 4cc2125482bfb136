"""Contributivity on the leaderboard: recomputed in the background, debounced.

When an evaluation of an event is scored, an update is scheduled for
``DATARUN_CONTRIBUTIVITY_DEBOUNCE_S`` later unless one is already pending,
so a burst of scores costs one computation.
"""
import logging
from datetime import timedelta

from celery import current_app as celery_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from databoard.models import Event, Submission
from databoard.services.leaderboards import leaderboard_touch
from datarun import selectors as datarun_selectors
from datarun import services as datarun_services

logger = logging.getLogger(__name__)

UPDATE_TASK = "databoard.tasks.update_contributivity"
# Rows per UPDATE statement (two parameters each, under SQLite's limit).
BATCH = 15_000


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
    out = {sub.id: values.get(sub.evaluation_id) for sub in submissions}
    _contributivity_write(out)
    leaderboard_touch(event_id=event.id)
    logger.info("contributivity of %s: %d scored submissions", event.name, len(scored))
    return out


def _contributivity_write(values: dict[int, float | None]) -> None:
    """Every submission's value in one UPDATE ... FROM (VALUES ...) statement
    (per :data:`BATCH` rows), not one statement per submission."""
    table = connection.ops.quote_name(Submission._meta.db_table)
    items = list(values.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), BATCH):
            batch = items[start:start + BATCH]
            cursor.execute(
                f"UPDATE {table} SET contributivity = CAST(v.column2 AS DOUBLE PRECISION) "
                f"FROM (VALUES {', '.join(['(%s, %s)'] * len(batch))}) AS v "
                f"WHERE {table}.id = v.column1",
                [x for pair in batch for x in pair])
