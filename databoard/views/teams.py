"""Web pages: signing up to an event, your team in it, invitations.

Every action goes through ``databoard.services``; a refused one renders the
page again with the service's message and its 4xx status.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from databoard import services
from databoard.forms.teams import TeamInviteForm, TeamRenameForm
from databoard.models import Event
from databoard.views.accounts import profile_page, safe_next
from databoard.views.boards import team_history_context
from databoard.views.errors import shows_errors
from datarun.errors import ApplicationError, NotFound


def _team_url(event: Event) -> str:
    return reverse("my-team-page", kwargs={"name": event.name})


def _team_page(request, event: Event, *, rename_form=None, invite_form=None,
               error: ApplicationError | None = None, status: int = 200):
    team = services.team_of(event=event, user=request.user)
    members = invitations = []
    if team is not None:
        members = team.memberships.select_related("user").order_by("joined_at")
        invitations = team.invitations.select_related("user", "invited_by")
    return render(request, "databoard/teams/team.html", {
        "event": event,
        "team": team,
        "members": members,
        "team_invitations": invitations,
        "my_invitations": request.user.team_invitations.filter(team__event=event)
                                .select_related("team", "invited_by"),
        "rename_form": rename_form or TeamRenameForm(initial={"name": team.name if team else ""}),
        "invite_form": invite_form or TeamInviteForm(),
        "error": error,
        **(team_history_context(event, team) if team is not None else {}),
    }, status=status)


def _event(request, name: str) -> Event:
    return services.event_get(name=name, user=request.user)


@login_required
@require_GET
@shows_errors
def my_team(request, name):
    event = _event(request, name)
    return _team_page(request, event)


@login_required
@require_POST
@shows_errors
def event_signup(request, name):
    event = _event(request, name)
    team = services.event_signup(event=event, user=request.user)
    if team.approved:
        messages.success(request, f"You are signed up to {event.title} (team {team.name}).")
    else:
        messages.info(request, f"Your sign-up to {event.title} awaits an event admin's "
                               f"approval.")
    return redirect(safe_next(request, _team_url(event)))


@login_required
@require_POST
@shows_errors
def team_rename(request, name):
    event = _event(request, name)
    form = TeamRenameForm(request.POST)
    if not form.is_valid():
        return _team_page(request, event, rename_form=form, status=400)
    try:
        team = services.team_of(event=event, user=request.user)
        if team is None:
            raise NotFound(f"you are in no team in {event.name}")
        team = services.team_rename(team=team, user=request.user, name=form.cleaned_data["name"])
    except ApplicationError as exc:
        return _team_page(request, event, rename_form=form, error=exc, status=exc.status_code)
    messages.success(request, f"Your team is now called {team.name}.")
    return redirect(_team_url(event))


@login_required
@require_POST
@shows_errors
def team_invite(request, name):
    event = _event(request, name)
    form = TeamInviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, event, invite_form=form, status=400)
    try:
        team = services.team_get(event=event, user=request.user)
        invitation = services.team_invite(team=team, user=request.user,
                                          username=form.cleaned_data["username"].strip())
    except ApplicationError as exc:
        return _team_page(request, event, invite_form=form, error=exc, status=exc.status_code)
    messages.success(request, f"{invitation.user.username} is invited to {team.name}; "
                              f"they accept on their profile page.")
    return redirect(_team_url(event))


@login_required
@require_POST
@shows_errors
def team_leave(request, name):
    event = _event(request, name)
    try:
        services.team_leave(event=event, user=request.user)
    except ApplicationError as exc:
        return _team_page(request, event, error=exc, status=exc.status_code)
    messages.success(request, f"You have left your team in {event.title}.")
    return redirect(_team_url(event))


@login_required
@require_POST
@shows_errors
def invitation_accept(request, invitation_id):
    try:
        team = services.invitation_accept(invitation_id=invitation_id, user=request.user)
    except ApplicationError as exc:
        return profile_page(request, error=exc, status=exc.status_code)
    messages.success(request, f"You joined team {team.name} in {team.event.title}.")
    return redirect(_team_url(team.event))


@login_required
@require_POST
@shows_errors
def invitation_decline(request, invitation_id):
    try:
        services.invitation_decline(invitation_id=invitation_id, user=request.user)
    except ApplicationError as exc:
        return profile_page(request, error=exc, status=exc.status_code)
    messages.success(request, "Invitation declined.")
    return redirect(safe_next(request, reverse("profile")))


urlpatterns = [
    path("events/<slug:name>/signup/", event_signup, name="event-signup-page"),
    path("events/<slug:name>/team/", my_team, name="my-team-page"),
    path("events/<slug:name>/team/rename/", team_rename, name="team-rename-page"),
    path("events/<slug:name>/team/invite/", team_invite, name="team-invite-page"),
    path("events/<slug:name>/team/leave/", team_leave, name="team-leave-page"),
    path("invitations/<int:invitation_id>/accept/", invitation_accept,
         name="invitation-accept-page"),
    path("invitations/<int:invitation_id>/decline/", invitation_decline,
         name="invitation-decline-page"),
]
