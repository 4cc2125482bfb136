"""Contributivity on the leaderboard: recomputed in the background, debounced.

When an evaluation of an event is scored, an update is scheduled for
``DATARUN_CONTRIBUTIVITY_DEBOUNCE_S`` later unless one is already pending,
so a burst of scores costs one computation.

``Event.contributivity_due_at`` is the durable record of an update owed:
set when one is scheduled, pushed forward by a lease while one runs, and
cleared when one finishes. Beat re-sends an update whose time is long past
(its message was lost, or its worker died mid-computation).
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


# How long a running update holds the event's due time before beat takes it
# for lost (a worker killed mid-computation); a slower update is only done twice.
UPDATE_LEASE_S = 60.0


def _send_update(event_id: int, countdown: float = 0) -> None:
    try:
        celery_app.send_task(UPDATE_TASK, args=[event_id], queue="scoring", countdown=countdown)
    except Exception:  # noqa: BLE001 - kombu and redis raise many kinds
        logger.warning("could not send event %s's contributivity update (beat will)", event_id,
                       exc_info=True)


def _schedule(event_id: int) -> None:
    delay = settings.DATARUN_CONTRIBUTIVITY_DEBOUNCE_S
    with transaction.atomic():
        pending = Event.objects.filter(id=event_id, contributivity_due_at__isnull=True).update(
            contributivity_due_at=timezone.now() + timedelta(seconds=delay))
        if pending:
            transaction.on_commit(lambda: _send_update(event_id, delay))


def contributivity_schedule(*, evaluation_id: int) -> None:
    """Called when ``evaluation_id`` is scored (datarun's evaluation_scored)."""
    event_id = (Submission.objects.filter(evaluation_id=evaluation_id)
                .values_list("team__event_id", flat=True).first())
    if event_id is not None:
        _schedule(event_id)


def contributivity_update(*, event_id: int) -> dict[int, float | None]:
    """Recompute every submission's contributivity in the event (idempotent)."""
    started = timezone.now()
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(id=event_id).first()
        if event is None:
            return {}
        # Scores arriving from now on are checked for when this update ends.
        Event.objects.filter(id=event_id).update(
            contributivity_due_at=started + timedelta(seconds=UPDATE_LEASE_S))
    submissions = list(Submission.objects.of_event(event).values_list("id", "evaluation_id"))
    # The event's evaluations as a subquery: one query, not 10,000 parameters.
    evaluation_ids = Submission.objects.of_event(event).values("evaluation_id")
    scored = datarun_selectors.scored_evaluation_ids(evaluation_ids)
    values = datarun_services.evaluations_contributivity(evaluation_ids=scored) if scored else {}
    out = {sub_id: values.get(evaluation_id) for sub_id, evaluation_id in submissions}
    _contributivity_write(out)
    leaderboard_touch(event_id=event.id)
    Event.objects.filter(id=event_id).update(contributivity_due_at=None)
    # Scored while this ran: their signal found the lease and scheduled nothing.
    if set(datarun_selectors.scored_evaluation_ids(evaluation_ids)) - set(scored):
        _schedule(event_id)
    logger.info("contributivity of %s: %d scored submissions", event.name, len(scored))
    return out


def contributivity_resend_lost(*, now=None) -> list[int]:
    """Send again the updates whose due time is long past (the message was
    lost with the broker, or the worker died while computing); the ids of
    their events."""
    now = now or timezone.now()
    lost_before = now - timedelta(seconds=settings.DATARUN_REDISPATCH_AFTER)
    event_ids = list(Event.objects.filter(contributivity_due_at__lt=lost_before)
                     .values_list("id", flat=True))
    for event_id in event_ids:
        Event.objects.filter(id=event_id).update(contributivity_due_at=now)
        logger.warning("contributivity update of event %s was lost; sent again", event_id)
        _send_update(event_id)
    return event_ids


def _contributivity_write(values: dict[int, float | None]) -> None:
    """Every submission's value in one UPDATE statement (from two arrays on
    PostgreSQL; from VALUES, per :data:`BATCH` rows, elsewhere), not one
    statement per submission."""
    table = connection.ops.quote_name(Submission._meta.db_table)
    items = list(values.items())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two array parameters: the driver need not parse 20,000 placeholders.
            cursor.execute(
                f"UPDATE {table} SET contributivity = v.value "
                f"FROM unnest(%s::bigint[], %s::double precision[]) AS v(id, value) "
                f"WHERE {table}.id = v.id",
                [[k for k, _ in items], [v for _, v in items]])
            return
        for start in range(0, len(items), BATCH):
            batch = items[start:start + BATCH]
            cursor.execute(
                f"UPDATE {table} SET contributivity = CAST(v.column2 AS DOUBLE PRECISION) "
                f"FROM (VALUES {', '.join(['(%s, %s)'] * len(batch))}) AS v "
                f"WHERE {table}.id = v.column1",
                [x for pair in batch for x in pair])
