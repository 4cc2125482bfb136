"""Writes on the databoard side: sign-ups and submissions, every rule checked here."""
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from databoard.models import Event, EventTeam, Submission, Team
from datarun import services as datarun_services
from datarun.errors import ApplicationError, InvalidSubmission, NotFound, PermissionDenied

SUBMISSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def event_get(*, name: str, user=None) -> Event:
    event = Event.objects.filter(name=name).first()
    if event is None or (not event.is_public and not (user and event.is_admin(user))):
        raise NotFound(f"no event named {name!r}")
    return event


@transaction.atomic
def team_for_user(*, user) -> Team:
    """The user's own team, created on first use (named after the user)."""
    team = user.teams.order_by("id").first()
    if team is None:
        team = Team.objects.create(name=user.username)
        team.members.add(user)
    return team


@transaction.atomic
def event_signup(*, event: Event, user) -> EventTeam:
    team = team_for_user(user=user)
    event_team, _ = EventTeam.objects.get_or_create(event=event, team=team)
    return event_team


def _event_team_for(event: Event, user) -> EventTeam:
    event_team = (EventTeam.objects.filter(event=event, team__members=user)
                  .select_related("team").first())
    if event_team is None:
        raise PermissionDenied(
            f"sign up to {event.name} first (POST /api/v1/events/{event.name}/signup/)"
        )
    if not event_team.approved:
        raise PermissionDenied(f"your sign-up to {event.name} awaits an event admin's approval")
    return event_team


def _check_open(event: Event, user) -> None:
    if event.is_admin(user):
        return
    now = timezone.now()
    if event.opens_at and now < event.opens_at:
        raise ApplicationError(
            f"{event.name} opens for submissions at {event.opens_at.isoformat()}"
        )
    if event.closes_at and now >= event.closes_at:
        raise ApplicationError(f"{event.name} closed for submissions at "
                               f"{event.closes_at.isoformat()}")


def event_limits(event: Event) -> dict:
    limits = {}
    if event.fold_time_limit_s:
        limits["wall_time_s"] = event.fold_time_limit_s
    if event.fold_memory_limit_mb:
        limits["memory_mb"] = event.fold_memory_limit_mb
    if event.fold_cpus:
        limits["cpus"] = event.fold_cpus
    return limits


def submission_create(*, event: Event, user, name: str, files: dict[str, bytes]) -> Submission:
    """Check the event's rules, then hand the files to datarun for evaluation."""
    if not SUBMISSION_NAME.match(name or ""):
        raise InvalidSubmission(
            "a submission name is 1-100 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    event_team = _event_team_for(event, user)
    _check_open(event, user)
    if Submission.objects.filter(event_team=event_team, name=name).exists():
        raise InvalidSubmission(f"your team already has a submission named {name!r}")
    problem = datarun_services.problem_get(event.problem_name)
    try:
        with transaction.atomic():
            evaluation = datarun_services.evaluation_create(
                problem=problem, files=files, limits=event_limits(event)
            )
            return Submission.objects.create(
                event_team=event_team, name=name, submitted_by=user,
                evaluation_id=evaluation.id,
            )
    except IntegrityError as exc:
        raise InvalidSubmission(f"your team already has a submission named {name!r}") from exc
