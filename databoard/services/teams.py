"""Teams: one per user and event, sign-ups, invitations, approval."""
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from databoard.models import Event, Team, TeamInvitation, TeamMember
from databoard.services.events import audit
from databoard.services.leaderboards import leaderboard_touch
from datarun.errors import ApplicationError, NotFound, PermissionDenied


def team_of(*, event: Event, user) -> Team | None:
    """The user's team in ``event``, if any."""
    if not user or not user.is_authenticated:
        return None
    return Team.objects.filter(event=event, memberships__user=user).first()


def team_get(*, event: Event, user) -> Team:
    """The user's approved team in ``event``, or an error saying what to do."""
    team = team_of(event=event, user=user)
    if team is None:
        raise PermissionDenied(
            f"sign up to {event.name} first (the event page's sign-up button, or "
            f"POST /api/v1/events/{event.name}/signup/)")
    if not team.approved:
        raise PermissionDenied(f"your sign-up to {event.name} awaits an event admin's approval")
    return team


def _free_team_name(event: Event, wanted: str) -> str:
    name, n = wanted[:90], 1
    while Team.objects.filter(event=event, name=name).exists():
        n += 1
        name = f"{wanted[:90]}-{n}"
    return name


@transaction.atomic
def event_signup(*, event: Event, user) -> Team:
    """Sign the user up: a one-person team named after them (idempotent)."""
    if not user or not user.is_authenticated:
        raise PermissionDenied("log in to sign up")
    existing = team_of(event=event, user=user)
    if existing is not None:
        return existing
    approved = not event.signup_requires_approval or event.is_admin(user)
    team = Team.objects.create(event=event, name=_free_team_name(event, user.username),
                               approved=approved)
    TeamMember.objects.create(team=team, user=user, event=event)
    audit(event=event, user=user, action="signup", team=team.name, approved=approved)
    return team


@transaction.atomic
def team_rename(*, team: Team, user, name: str) -> Team:
    if not team.memberships.filter(user=user).exists():
        raise PermissionDenied("only a member renames a team")
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise ApplicationError("a team name has 1 to 100 characters")
    if Team.objects.filter(event=team.event, name=name).exclude(id=team.id).exists():
        raise ApplicationError(f"{team.event.name} already has a team named {name!r}")
    team.name = name
    team.save(update_fields=["name"])
    leaderboard_touch(event_id=team.event_id)
    return team


@transaction.atomic
def team_invite(*, team: Team, user, username: str) -> TeamInvitation:
    if not team.memberships.filter(user=user).exists():
        raise PermissionDenied("only a member of the team invites")
    invitee = get_user_model().objects.filter(username=username).first()
    if invitee is None:
        raise NotFound(f"no user named {username!r}")
    if team.memberships.filter(user=invitee).exists():
        raise ApplicationError(f"{username} is already in your team")
    if team.memberships.count() >= team.event.max_team_size:
        raise ApplicationError(f"teams in {team.event.name} have at most "
                               f"{team.event.max_team_size} members")
    try:
        with transaction.atomic():
            invitation = TeamInvitation.objects.create(team=team, user=invitee, invited_by=user)
    except IntegrityError as exc:
        raise ApplicationError(f"{username} is already invited") from exc
    audit(event=team.event, user=user, action="team_invite", team=team.name, invitee=username)
    return invitation


def _invitation_for(invitation_id: int, user) -> TeamInvitation:
    invitation = (TeamInvitation.objects.select_for_update(of=("self",))
                  .select_related("team__event").filter(id=invitation_id, user=user).first())
    if invitation is None:
        raise NotFound(f"no invitation {invitation_id} for you")
    return invitation


@transaction.atomic
def invitation_accept(*, invitation_id: int, user) -> Team:
    """Join the inviting team. A one-person team of the user's own with no
    submission is dissolved; a team that has submitted cannot be left."""
    invitation = _invitation_for(invitation_id, user)
    team = Team.objects.select_for_update().get(id=invitation.team_id)
    event = team.event
    current = team_of(event=event, user=user)
    if current is not None:
        if current.submissions.exists():
            raise ApplicationError(
                f"you have submitted with team {current.name}: you cannot change teams "
                f"in {event.name}")
        if current.memberships.count() > 1:
            raise ApplicationError(f"leave team {current.name} first")
    if team.memberships.count() >= event.max_team_size:
        raise ApplicationError(f"team {team.name} is full ({event.max_team_size} members "
                               f"in {event.name})")
    if current is not None:
        current.delete()
    TeamMember.objects.create(team=team, user=user, event=event)
    invitation.delete()
    audit(event=event, user=user, action="team_join", team=team.name)
    return team


@transaction.atomic
def invitation_decline(*, invitation_id: int, user) -> None:
    _invitation_for(invitation_id, user).delete()


@transaction.atomic
def team_leave(*, event: Event, user) -> None:
    team = team_of(event=event, user=user)
    if team is None:
        raise ApplicationError(f"you are in no team in {event.name}")
    if team.submissions.filter(submitted_by=user).exists():
        raise ApplicationError(
            f"you have submitted with team {team.name}: you cannot leave it "
            f"(submissions stay with their team)")
    TeamMember.objects.filter(team=team, user=user).delete()
    if not team.memberships.exists() and not team.submissions.exists():
        team.delete()
    audit(event=event, user=user, action="team_leave", team=team.name)


def _admin_team(team_id: int, user) -> Team:
    team = (Team.objects.select_for_update(of=("self",)).select_related("event")
            .filter(id=team_id).first())
    if team is None:
        raise NotFound(f"no team {team_id}")
    if not team.event.is_admin(user):
        raise PermissionDenied(f"only an admin of {team.event.name} approves sign-ups")
    return team


@transaction.atomic
def signup_approve(*, team_id: int, user) -> Team:
    team = _admin_team(team_id, user)
    if not team.approved:
        team.approved = True
        team.save(update_fields=["approved"])
        audit(event=team.event, user=user, action="signup_approve", team=team.name)
    return team


@transaction.atomic
def signup_reject(*, team_id: int, user) -> None:
    team = _admin_team(team_id, user)
    if team.approved or team.submissions.exists():
        raise ApplicationError(f"team {team.name} is already approved")
    audit(event=team.event, user=user, action="signup_reject", team=team.name)
    team.delete()
