"""Events: reading one, creating and editing them (organisers), the audit trail."""
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from databoard.models import AuditEntry, Event
from databoard.permissions import can_view_event
from databoard.rules import SubmissionRules
from datarun import services as datarun_services
from datarun.errors import ApplicationError, NotFound, PermissionDenied

# What an event admin may change on the organiser pages and the API.
EDITABLE_FIELDS = (
    "title", "description", "is_public", "opens_at", "public_opens_at", "closes_at",
    "min_submission_interval_s", "max_submissions_per_day", "is_competitive",
    "leaderboard_kind", "signup_requires_approval", "max_team_size",
    "fold_time_limit_s", "fold_memory_limit_mb", "fold_cpus",
)


def audit(*, event: Event | None, user, action: str, **data) -> None:
    AuditEntry.objects.create(event=event, user=user if user and user.is_authenticated else None,
                              action=action, data=data)


def event_get(*, name: str, user=None) -> Event:
    event = Event.objects.seen_by(user).filter(name=name).first()
    if event is None or not can_view_event(event, user):
        raise NotFound(f"no event named {name!r}")
    return event


def event_limits(event: Event) -> dict:
    """The limits the event sets itself (empty fields: none)."""
    limits = {}
    if event.fold_time_limit_s:
        limits["wall_time_s"] = event.fold_time_limit_s
    if event.fold_memory_limit_mb:
        limits["memory_mb"] = event.fold_memory_limit_mb
    if event.fold_cpus:
        limits["cpus"] = event.fold_cpus
    if event.fold_gpus:
        limits["gpus"] = event.fold_gpus
    return limits


def event_fold_limits(event: Event) -> dict:
    """The limits the event's folds run under, as datarun computes them for
    every evaluation: the event's own over its problem's over the defaults."""
    try:
        problem = datarun_services.problem_get(event.problem_name)
    except NotFound:
        problem = None
    return datarun_services.effective_limits(problem=problem, overrides=event_limits(event))


def event_rules(event: Event) -> SubmissionRules:
    return SubmissionRules(
        opens_at=event.opens_at, closes_at=event.closes_at,
        min_interval=timedelta(seconds=event.min_submission_interval_s or 0),
        max_per_day=event.max_submissions_per_day,
    )


def _check_fields(values: dict) -> dict:
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"these event fields cannot be set: {', '.join(sorted(unknown))}")
    opens, public, closes = (values.get(k) for k in ("opens_at", "public_opens_at", "closes_at"))
    if opens and closes and closes <= opens:
        raise ApplicationError("the closing time must come after the opening time")
    if public and opens and public < opens:
        raise ApplicationError("the public (collaborative) opening cannot come before "
                               "the opening")
    if values.get("max_team_size") is not None and values["max_team_size"] < 1:
        raise ApplicationError("the maximum team size is at least 1")
    if values.get("leaderboard_kind") not in (None, *Event.LeaderboardKind.values):
        raise ApplicationError("the leaderboard kind is 'bagged' or 'mean'")
    for key in ("fold_time_limit_s", "fold_memory_limit_mb", "fold_cpus"):
        if values.get(key) is not None and values[key] <= 0:
            raise ApplicationError(f"{key} must be positive (or empty for the default)")
    return values


@transaction.atomic
def event_create(*, user, name: str, problem_name: str, title: str = "", **fields) -> Event:
    if not (user and user.is_superuser):
        raise PermissionDenied("only a superuser creates events")
    datarun_services.problem_get(problem_name)
    if Event.objects.filter(name=name).exists():
        raise ApplicationError(f"an event named {name!r} already exists")
    event = Event(name=name, problem_name=problem_name, title=title or name,
                  **_check_fields(fields))
    event.full_clean()
    event.save()
    audit(event=event, user=user, action="event_create", problem=problem_name)
    return event


@transaction.atomic
def event_update(*, event: Event, user, **fields) -> Event:
    if not event.is_admin(user):
        raise PermissionDenied(f"only an admin of {event.name} edits it")
    event = Event.objects.select_for_update().get(id=event.id)
    merged = {k: getattr(event, k) for k in EDITABLE_FIELDS}
    merged.update(fields)
    _check_fields({k: merged[k] for k in EDITABLE_FIELDS})
    changed = {k: str(v) for k, v in fields.items() if getattr(event, k) != v}
    for key, value in fields.items():
        setattr(event, key, value)
    if changed and event.leaderboard_changed_at is not None:
        event.leaderboard_changed_at = timezone.now()  # dates, kind: what boards show
    event.full_clean()
    event.save()
    if changed:
        audit(event=event, user=user, action="event_update", **changed)
    return event


@transaction.atomic
def event_assign_pool(*, event: Event, user, pool_name: str | None,
                      fold_gpus: int | None = None) -> Event:
    """Run the event's folds on a compute pool (None: the built-in pool).
    Superusers only: a pool may be a data owner's or a paid GPU machine."""
    if not user.is_superuser:
        raise PermissionDenied("only a superuser assigns an event to a compute pool")
    pool = None
    if pool_name:
        pool = datarun_services.pool_get(pool_name)
    event = Event.objects.select_for_update().get(id=event.id)
    old = event.pool.name if event.pool_id else None
    event.pool = pool
    event.fold_gpus = fold_gpus or None
    event.save(update_fields=["pool", "fold_gpus"])
    audit(event=event, user=user, action="event_pool", pool=pool_name or "", was=old or "",
          fold_gpus=str(fold_gpus or 0))
    return event


@transaction.atomic
def event_admin_add(*, event: Event, user, username: str) -> None:
    """Make ``username`` an admin of ``event`` (its admins and superusers may)."""
    if not event.is_admin(user):
        raise PermissionDenied(f"only an admin of {event.name} adds admins")
    new = get_user_model().objects.filter(username=(username or "").strip()).first()
    if new is None:
        raise NotFound(f"no user named {username!r}: they sign up first, or create their "
                       "account from a CSV")
    if event.admins.filter(id=new.id).exists():
        raise ApplicationError(f"{new.username} is already an admin of {event.name}")
    event.admins.add(new)
    audit(event=event, user=user, action="admin_add", admin=new.username)


@transaction.atomic
def event_admin_remove(*, event: Event, user, username: str) -> None:
    """``username`` no longer administers ``event``; nobody removes themselves
    (another admin or a superuser does), so an event never loses its last one by mistake."""
    if not event.is_admin(user):
        raise PermissionDenied(f"only an admin of {event.name} removes admins")
    old = event.admins.filter(username=username).first()
    if old is None:
        raise NotFound(f"{username!r} is not an admin of {event.name}")
    if old == user:
        raise ApplicationError("you cannot remove yourself: ask another admin of the event "
                               "or a superuser")
    event.admins.remove(old)
    audit(event=event, user=user, action="admin_remove", admin=old.username)
