"""Who may see and do what: one place for the rules web and API share."""
from django.utils import timezone

from databoard.models import Event, Submission, Team


def is_organiser(user) -> bool:
    """An admin of some event, or of the platform (the organiser pages)."""
    if not user or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    # databoard.backends.ViewerBackend loads it with the signed-in user.
    if getattr(user, "organises_events", None) is None:
        user.organises_events = user.administered_events.exists()
    return user.organises_events


def member_team(event: Event, user) -> Team | None:
    if not user or not user.is_authenticated:
        return None
    # Asked several times per page: once per loaded event and user.
    known = event.__dict__.setdefault("_member_teams_known", {})
    if user.id not in known:
        known[user.id] = Team.objects.filter(event=event, memberships__user=user).first()
    return known[user.id]


def can_view_event(event: Event, user) -> bool:
    """Public events: everyone. Unlisted ones: their admins and teams."""
    return event.is_public or event.is_admin(user) or member_team(event, user) is not None


def is_collaborative(event: Event, now=None) -> bool:
    """After public opening, participants may read each other's code."""
    return bool(event.public_opens_at and (now or timezone.now()) >= event.public_opens_at)


def is_closed(event: Event, now=None) -> bool:
    return bool(event.closes_at and (now or timezone.now()) >= event.closes_at)


def can_see_private_scores(event: Event, user) -> bool:
    """Test scores: event admins always, everyone once the event has closed."""
    return event.is_admin(user) or is_closed(event)


def is_team_member(submission: Submission, user) -> bool:
    if not user or not user.is_authenticated:
        return False
    if submission.__dict__.get("viewer_id") == user.id:  # SubmissionQuerySet.seen_by
        return submission.viewer_is_member
    return submission.team.memberships.filter(user=user).exists()


def can_view_submission(submission: Submission, user) -> bool:
    """The submission's details (states, fold table, errors and logs)."""
    return is_team_member(submission, user) or submission.team.event.is_admin(user)


def can_read_code(submission: Submission, user) -> bool:
    """Its files: the team and admins; in the collaborative phase, any
    approved participant of the event."""
    if can_view_submission(submission, user):
        return True
    event = submission.team.event
    if not is_collaborative(event):
        return False
    team = member_team(event, user)
    return bool(team and team.approved)


def submission_access(event: Event, user):
    """For many rows of one event's board: ``access(team_id)`` says whether
    the viewer may open a submission of that team and read its code, by the
    rules of :func:`can_view_submission` and :func:`can_read_code`, asked of
    the database once instead of once per row."""
    team = member_team(event, user)
    admin = event.is_admin(user)
    readers = team is not None and team.approved and is_collaborative(event)

    def access(team_id: int) -> tuple[bool, bool]:
        can_view = admin or (team is not None and team.id == team_id)
        return can_view, can_view or readers

    return access
