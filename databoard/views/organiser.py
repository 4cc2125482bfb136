"""Web pages: organiser (event admins and superusers).

An event's organiser pages answer 404 to those who cannot see the event and
403 to those who see it without administering it. Every action goes through
``databoard.services``; a refused one renders the page again with the
service's message and its 4xx status.
"""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.forms import model_to_dict
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from databoard import permissions, selectors, services
from databoard.forms.organiser import (
    AccountsImportForm,
    EventCreateForm,
    EventRulesForm,
    KitUploadForm,
    SubmissionFilterForm,
)
from databoard.models import Event, Submission, Team
from databoard.services.events import EDITABLE_FIELDS
from databoard.views.accounts import safe_next
from databoard.views.errors import shows_errors
from datarun import selectors as datarun_selectors
from datarun import services as datarun_services
from datarun.errors import ApplicationError, KitTooLarge, NotFound, PermissionDenied
from datarun.states import FINAL_STATES

SUBMISSIONS_PER_PAGE = 100
AUDIT_ENTRIES_SHOWN = 20


def _admin_event(request, name: str) -> Event:
    event = services.event_get(name=name, user=request.user)  # 404 when not visible
    if not event.is_admin(request.user):
        raise PermissionDenied(f"only an admin of {event.name} organises it")
    return event


# --- the organiser's home and a new event ------------------------------------

@login_required
@require_GET
@shows_errors
def organiser_home(request):
    if not permissions.is_organiser(request.user):
        raise PermissionDenied("only event admins organise events")
    events = Event.objects.all() if request.user.is_superuser else \
        request.user.administered_events.all()
    return render(request, "databoard/organiser/home.html", {"events": events})


@login_required
@require_http_methods(["GET", "POST"])
@shows_errors
def event_new(request):
    if not request.user.is_superuser:
        raise PermissionDenied("only a superuser creates events")
    form = EventCreateForm(request.POST or None, problems=datarun_selectors.problem_names())
    error, status = None, 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            try:
                event = services.event_create(user=request.user, **form.cleaned_data)
            except ApplicationError as exc:
                error, status = exc, exc.status_code
            else:
                messages.success(request, f"Event {event.name} created.")
                return redirect("organiser-event", name=event.name)
    return render(request, "databoard/organiser/event_new.html",
                  {"form": form, "error": error}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@shows_errors
def kit_upload(request):
    """A RAMP kit uploaded as a zip becomes a problem and its event."""
    if not request.user.is_superuser:
        raise PermissionDenied("only a superuser uploads kits: importing one runs its "
                               "problem.py on the server")
    limit = settings.DATARUN_MAX_KIT_BYTES
    if request.method == "POST" and int(request.META.get("CONTENT_LENGTH") or 0) > limit + 65536:
        # Refused before Django reads the body to a temporary file.
        error = KitTooLarge(f"the upload is {request.META['CONTENT_LENGTH']} bytes; a kit "
                            f"zip may weigh at most {limit} bytes: leave large data out")
        return render(request, "databoard/organiser/kit_upload.html",
                      {"form": KitUploadForm(), "error": error, "limit": limit}, status=413)
    form = KitUploadForm(request.POST or None, request.FILES or None)
    error, status = None, 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            upload = form.cleaned_data["kit"]
            try:
                event = services.event_create_from_kit(
                    user=request.user, archive=upload, archive_name=upload.name,
                    name=form.cleaned_data["name"], title=form.cleaned_data["title"])
            except ApplicationError as exc:
                error, status = exc, exc.status_code
            else:
                messages.success(request, f"Kit {upload.name} imported: event {event.name} "
                                          "created.")
                return redirect("organiser-event", name=event.name)
    return render(request, "databoard/organiser/kit_upload.html",
                  {"form": form, "error": error, "limit": limit}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@shows_errors
def accounts_import(request):
    """Accounts for a class from a CSV, invited by e-mail; the report of each row."""
    user = request.user
    if not permissions.is_organiser(user):
        raise PermissionDenied("only superusers and event admins create accounts in bulk")
    events = list((Event.objects.all() if user.is_superuser else user.administered_events.all())
                  .order_by("name").values_list("name", flat=True))
    form = AccountsImportForm(request.POST or None, request.FILES or None, events=events,
                              superuser=user.is_superuser)
    report, error, status = None, None, 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            event = (Event.objects.get(name=form.cleaned_data["event"])
                     if form.cleaned_data["event"] else None)
            try:
                report = services.accounts_import_csv(
                    user=user, csv_text=form.cleaned_data["csv_text"], event=event,
                    send_invitations=form.cleaned_data["send_invitations"])
            except ApplicationError as exc:
                error, status = exc, exc.status_code
            else:
                status = 200
    return render(request, "databoard/organiser/accounts_import.html", {
        "form": form, "report": report, "error": error,
        "n_created": sum(r["created"] for r in report or []),
        "n_skipped": sum(not r["created"] for r in report or []),
    }, status=status)


# --- one event: overview and rules -------------------------------------------

def _event_page(request, event: Event, *, form: EventRulesForm | None = None,
                error: ApplicationError | None = None, status: int = 200):
    teams = event.teams.aggregate(total=Count("id"), pending=Count("id", filter=Q(approved=False)))
    evaluation_ids = Submission.objects.of_event(event).values_list("evaluation_id", flat=True)
    by_state: dict[str, int] = {}
    for row in datarun_selectors.evaluation_states(list(evaluation_ids)).values():
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
    problem = datarun_selectors.problem_summary(event.problem_name)
    return render(request, "databoard/organiser/event.html", {
        "event": event,
        "problem": problem,
        "environment_log": datarun_selectors.environment_log(event.problem_name)
        if problem and problem["environment"] else "",
        "teams": teams,
        "submissions_by_state": sorted(by_state.items()),
        "n_submissions": sum(by_state.values()),
        "admins": event.admins.order_by("username"),
        "kit_report": selectors.kit_import_report(event),
        "audit_entries": event.audit_entries.select_related("user")[:AUDIT_ENTRIES_SHOWN],
        "form": form or EventRulesForm(initial=model_to_dict(event, fields=EDITABLE_FIELDS)),
        "error": error,
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@shows_errors
def event_organise(request, name):
    event = _admin_event(request, name)
    if request.method == "GET":
        return _event_page(request, event)
    form = EventRulesForm(request.POST, initial=model_to_dict(event, fields=EDITABLE_FIELDS))
    if not form.is_valid():
        return _event_page(request, event, form=form, status=400)
    changed = {k: form.cleaned_data[k] for k in form.changed_data}
    try:
        event = services.event_update(event=event, user=request.user, **changed)
    except ApplicationError as exc:
        return _event_page(request, event, form=form, error=exc, status=exc.status_code)
    messages.success(request, "Rules saved." if changed else "Nothing changed.")
    return redirect("organiser-event", name=event.name)


@login_required
@require_POST
@shows_errors
def event_admins(request, name):
    """Add (``username``) or remove (``remove``) an admin of the event."""
    event = _admin_event(request, name)
    try:
        if request.POST.get("remove"):
            services.event_admin_remove(event=event, user=request.user,
                                        username=request.POST["remove"])
            messages.success(request, f"{request.POST['remove']} no longer administers "
                                      f"{event.name}.")
        else:
            services.event_admin_add(event=event, user=request.user,
                                     username=request.POST.get("username", ""))
            messages.success(request, f"{request.POST['username'].strip()} administers "
                                      f"{event.name} now.")
    except ApplicationError as exc:
        return _event_page(request, event, error=exc, status=exc.status_code)
    return redirect("organiser-event", name=event.name)


@login_required
@require_POST
@shows_errors
def announce(request, name):
    event = _admin_event(request, name)
    try:
        announcement = services.announcement_create(
            event=event, user=request.user, subject=request.POST.get("subject", ""),
            body=request.POST.get("body", ""))
    except ApplicationError as exc:
        return _event_page(request, event, error=exc, status=exc.status_code)
    messages.success(request, f"Announcement published and e-mailed to "
                              f"{announcement.n_mailed} participant"
                              f"{'s' if announcement.n_mailed != 1 else ''}.")
    return redirect("organiser-event", name=event.name)


# --- sign-ups ------------------------------------------------------------------

def _signups_page(request, event: Event, *, error: ApplicationError | None = None,
                  status: int = 200):
    teams = (Team.objects.filter(event=event).prefetch_related("memberships__user")
             .order_by("approved", "created_at"))
    return render(request, "databoard/organiser/signups.html",
                  {"event": event, "teams": teams, "error": error}, status=status)


@login_required
@require_GET
@shows_errors
def signups(request, name):
    event = _admin_event(request, name)
    return _signups_page(request, event)


def _signup_action(action: str):
    @login_required
    @require_POST
    @shows_errors
    def view(request, name, team_id):
        event = _admin_event(request, name)
        team = event.teams.filter(id=team_id).first()
        if team is None:
            raise NotFound(f"no team {team_id} in {event.name}")
        try:
            if action == "approve":
                services.signup_approve(team_id=team.id, user=request.user)
            else:
                services.signup_reject(team_id=team.id, user=request.user)
        except ApplicationError as exc:
            return _signups_page(request, event, error=exc, status=exc.status_code)
        verb = "approved" if action == "approve" else "rejected"
        messages.success(request, f"Sign-up of team {team.name} {verb}.")
        return redirect("organiser-signups", name=event.name)
    return view


# --- submissions ----------------------------------------------------------------

def _submissions_page(request, event: Event, *, error: ApplicationError | None = None,
                      status: int = 200):
    form = SubmissionFilterForm(request.GET)
    state = form.cleaned_data["state"] if form.is_valid() else ""
    submissions = list(Submission.objects.of_event(event)
                       .select_related("team", "submitted_by").order_by("-created_at"))
    states = datarun_selectors.evaluation_states([s.evaluation_id for s in submissions])
    if state:
        submissions = [s for s in submissions
                       if states.get(s.evaluation_id, {}).get("state") == state]
    page = Paginator(submissions, SUBMISSIONS_PER_PAGE).get_page(request.GET.get("page"))
    summaries = datarun_selectors.evaluation_summaries([s.evaluation_id for s in page])
    score_types = datarun_selectors.score_types_for(event.problem_name)
    official = score_types[0] if score_types else None
    rows = []
    for submission in page:
        summary = summaries.get(submission.evaluation_id, {})
        scores = (summary.get("scores") or {}).get(official["name"], {}) if official else {}
        rows.append({
            "submission": submission,
            "state": summary.get("state"),
            "error_kind": summary.get("error_kind"),
            "error": summary.get("error"),
            "valid": (scores.get("valid") or {}).get(event.leaderboard_kind),
            "test": (scores.get("test") or {}).get(event.leaderboard_kind),
            "final": summary.get("state") in FINAL_STATES,
        })
    n_failed = sum(1 for s in states.values() if s["state"] == "error")
    return render(request, "databoard/organiser/submissions.html", {
        "event": event, "form": form, "state": state, "rows": rows, "page": page,
        "official": official, "n_failed": n_failed, "error": error,
    }, status=status)


@login_required
@require_GET
@shows_errors
def submissions(request, name):
    event = _admin_event(request, name)
    return _submissions_page(request, event)


def _submissions_url(event: Event) -> str:
    return reverse("organiser-submissions", kwargs={"name": event.name})


def _submission_action(action: str):
    @login_required
    @require_POST
    @shows_errors
    def view(request, name, submission_id):
        event = _admin_event(request, name)
        submission = Submission.objects.of_event(event).select_related("team").filter(
            id=submission_id).first()
        if submission is None:
            raise NotFound(f"no submission {submission_id} in "
                                                 f"{event.name}")
        try:
            if action == "rerun":
                services.submission_rerun(submission_id=submission.id, user=request.user)
            else:
                services.submission_cancel(submission_id=submission.id, user=request.user)
        except ApplicationError as exc:
            return _submissions_page(request, event, error=exc, status=exc.status_code)
        verb = "queued again" if action == "rerun" else "cancelled"
        messages.success(request, f"Submission {submission.name} of team "
                                  f"{submission.team.name} {verb}.")
        return redirect(safe_next(request, _submissions_url(event)))
    return view


@login_required
@require_POST
@shows_errors
def submissions_rerun_failed(request, name):
    event = _admin_event(request, name)
    rerun = services.submissions_rerun_failed(event=event, user=request.user)
    messages.success(request, f"{len(rerun)} failed submission{'s' if len(rerun) != 1 else ''} "
                              f"queued again.")
    return redirect(safe_next(request, _submissions_url(event)))


# --- the queue and the workers ------------------------------------------------

@login_required
@require_GET
@shows_errors
def queue(request):
    """Folds queued and running, and the Celery workers that answer now.
    Event admins see the running folds of their own events' submissions."""
    user = request.user
    if not permissions.is_organiser(user):
        raise PermissionDenied("only event admins see the queue")
    running = datarun_selectors.running_fold_runs()
    submissions = {s.evaluation_id: s for s in Submission.objects.filter(
        evaluation_id__in={r["evaluation_id"] for r in running}).select_related("team__event")}
    if not user.is_superuser:
        mine = set(user.administered_events.values_list("id", flat=True))
        running = [r for r in running if r["evaluation_id"] in submissions
                   and submissions[r["evaluation_id"]].team.event_id in mine]
    now = timezone.now()
    for row in running:
        row["submission"] = submissions.get(row["evaluation_id"])
        row["heartbeat_age"] = ((now - row["heartbeat_at"]).total_seconds()
                                if row["heartbeat_at"] else None)
    return render(request, "databoard/organiser/queue.html", {
        "queued": datarun_selectors.queued_fold_runs_count(),
        "running": running,
        "celery": datarun_selectors.celery_workers(timeout=1.0),
        "flower_url": getattr(settings, "DATARUN_FLOWER_URL", ""),
        # Runners elsewhere are not Celery workers: each pool's, as they last
        # described themselves when they polled.
        "pools": datarun_services.pools_overview(user=user) if user.is_superuser else [],
    })


urlpatterns = [
    path("organiser/", organiser_home, name="organiser-home"),
    path("organiser/events/new/", event_new, name="organiser-event-new"),
    path("organiser/kits/new/", kit_upload, name="organiser-kit-upload"),
    path("organiser/accounts/import/", accounts_import, name="organiser-accounts-import"),
    path("organiser/queue/", queue, name="organiser-queue"),
    path("events/<slug:name>/organise/", event_organise, name="organiser-event"),
    path("events/<slug:name>/organise/admins/", event_admins, name="organiser-admins"),
    path("events/<slug:name>/organise/announce/", announce, name="organiser-announce"),
    path("events/<slug:name>/organise/signups/", signups, name="organiser-signups"),
    path("events/<slug:name>/organise/signups/<int:team_id>/approve/",
         _signup_action("approve"), name="organiser-signup-approve"),
    path("events/<slug:name>/organise/signups/<int:team_id>/reject/",
         _signup_action("reject"), name="organiser-signup-reject"),
    path("events/<slug:name>/organise/submissions/", submissions, name="organiser-submissions"),
    path("events/<slug:name>/organise/submissions/rerun-failed/", submissions_rerun_failed,
         name="organiser-submissions-rerun-failed"),
    path("events/<slug:name>/organise/submissions/<int:submission_id>/rerun/",
         _submission_action("rerun"), name="organiser-submission-rerun"),
    path("events/<slug:name>/organise/submissions/<int:submission_id>/cancel/",
         _submission_action("cancel"), name="organiser-submission-cancel"),
]
