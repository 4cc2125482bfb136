"""Web pages for participants: events, the starting kit, the sandbox, submissions.

Views are thin: every rule lives in ``databoard.services`` (shared with the
API); a user error is shown on the page with its message and its 4xx status.
"""
import math
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import TooManyFilesSent
from django.db.models import Count
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from databoard import leaderboard_selectors as leaderboards
from databoard import permissions, selectors, services
from databoard.forms.events import SandboxForm
from databoard.models import Event
from databoard.rules import duration_text
from databoard.services.submissions import SubmissionRefused
from databoard.views.boards import team_history_context
from databoard.views.data import public_data_charts
from databoard.views.errors import shows_errors
from datarun import dataset_selectors, submission_files
from datarun import selectors as datarun_selectors
from datarun.api.pagination import PageRequest
from datarun.api.uploads import InMemoryUploadHandler, NameKeepingMultiPartParser
from datarun.errors import ApplicationError, InvalidSubmission, NotFound
from datarun.states import FINAL_STATES

POLL_SECONDS = 2


# --- events -------------------------------------------------------------------

def event_state(event: Event, now=None) -> str:
    now = now or timezone.now()
    if permissions.is_closed(event, now):
        return "closed"
    if event.opens_at and now < event.opens_at:
        return "upcoming"
    return "open"


def home(request):
    return redirect("/events/")


def event_list(request):
    events = Event.objects.annotate(n_teams=Count("teams", distinct=True),
                                    n_submissions=Count("teams__submissions", distinct=True))
    now = timezone.now()
    rows = [{"event": e, "state": event_state(e, now)} for e in events
            if permissions.can_view_event(e, request.user)]
    return render(request, "databoard/events/list.html", {"rows": rows})


def _rules(event: Event) -> dict:
    interval = event.min_submission_interval_s or 0
    return {
        "min_interval": duration_text(timedelta(seconds=interval)) if interval else None,
        "limits": services.event_fold_limits(event),
    }


LEADERBOARD_ROWS_SHOWN = 10
ANNOUNCEMENTS_SHOWN = 10


@shows_errors
def event_detail(request, name):
    """The competition page: overview (the description), data (rows per split,
    folds, the training labels' distribution), evaluation, rules and the top
    of the public leaderboard, as anchored sections."""
    event = services.event_get(name=name, user=request.user)
    summary = datarun_selectors.problem_summary(event.problem_name) or {}
    # The viewer's team, as the leaderboard's top asks it again (cached on the event).
    team = permissions.member_team(event, request.user)
    data = dataset_selectors.problem_public_data(name=event.problem_name)
    return render(request, "databoard/events/detail.html", {
        "event": event, "state": event_state(event), "rules": _rules(event),
        "problem": summary,
        "official": next((st for st in summary.get("score_types", []) if st["official"]), None),
        "workflow_files": submission_files.expected_file_names(
            summary.get("workflow_elements", [])),
        "team": team, "members": team.members.order_by("username") if team else [],
        "is_admin": event.is_admin(request.user),
        "data": data, **(public_data_charts(data) if data else {}),
        "announcements": event.announcements.all()[:ANNOUNCEMENTS_SHOWN],
        "top": _leaderboard_top(event, request.user, summary["score_types"]) if summary else [],
    })


def _leaderboard_top(event: Event, user, score_types: list[dict]) -> list[dict]:
    """The first rows of the public leaderboard, official score only."""
    board = leaderboards.leaderboard_rows(event=event, user=user, board="public",
                                          page=PageRequest(size=LEADERBOARD_ROWS_SHOWN),
                                          score_types=score_types)
    official = board["score_types"][0] if board["score_types"] else None
    return [{"rank": row["rank"], "team": row["team"], "submission": row["submission"],
             "score": ((row["scores"].get(official["name"]) or {}).get("valid") or {}).get(
                 board["kind"]) if official else None,
             "precision": official["precision"] if official else 3}
            for row in board["rows"]]


@shows_errors
def starting_kit(request, name):
    """problem.py, the README, the starting kit and the training data, zipped."""
    event = services.event_get(name=name, user=request.user)
    response = HttpResponse(selectors.starting_kit_zip(event), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{event.name}-starting-kit.zip"'
    return response


# --- the sandbox --------------------------------------------------------------

def _sandbox_split(contents: dict[str, bytes]) -> tuple[dict[str, str], list[dict]]:
    """The files the editors open (UTF-8 text up to the editor's size), and
    the others (a data file, a binary file) as a name, a size and a link:
    a megabyte of CSV in an editor makes a page of megabytes."""
    editable, downloads = {}, []
    for name, data in contents.items():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and len(data) <= settings.DATARUN_SANDBOX_EDITOR_MAX_BYTES:
            editable[name] = text
        else:
            downloads.append({"name": name, "size": len(data), "binary": text is None})
    return editable, downloads


def _sandbox_form(request, event: Event, data=None) -> tuple[SandboxForm, list[dict]]:
    editable, downloads = _sandbox_split(
        services.sandbox_contents(event=event, user=request.user))
    return SandboxForm(data, files=editable), downloads


def _sandbox_page(request, event: Event, *, form: SandboxForm | None = None,
                  error: str = "", refusal: SubmissionRefused | None = None, status=200):
    team = services.team_get(event=event, user=request.user)
    editors, downloads = _sandbox_form(request, event)
    form = form or editors  # a posted form shows what was posted
    next_allowed_at = None
    if refusal is not None and refusal.extra.get("next_allowed_at"):
        next_allowed_at = datetime.fromisoformat(refusal.extra["next_allowed_at"])
    response = render(request, "databoard/events/sandbox.html", {
        "event": event, "team": team, "form": form, "error": error, "refusal": refusal,
        "next_allowed_at": next_allowed_at, "rules": _rules(event),
        "imports": team.sandbox_imports.select_related("source__team").order_by("imported_at"),
        "max_file_bytes": settings.DATARUN_MAX_SUBMISSION_FILE_BYTES,
        "downloads": downloads, "editor_max_bytes": settings.DATARUN_SANDBOX_EDITOR_MAX_BYTES,
        # The sandbox keeps text: an upload replaces any file but a binary one.
        "uploadable": [name for name, _ in form.editors()]
                      + [d["name"] for d in downloads if not d["binary"]],
    }, status=status)
    if next_allowed_at is not None and status == 429:
        wait = (next_allowed_at - timezone.now()).total_seconds()
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


@login_required
@shows_errors
def sandbox(request, name):
    """GET: the editors. POST: save them, and with ``action=submit`` submit them."""
    event = services.event_get(name=name, user=request.user)
    services.team_get(event=event, user=request.user)
    if request.method != "POST":
        return _sandbox_page(request, event)
    form, _ = _sandbox_form(request, event, request.POST)
    form.is_valid()  # every field is optional: what was posted is kept
    try:
        for file_name, content in form.posted_files().items():
            services.sandbox_file_save(event=event, user=request.user, file_name=file_name,
                                       content=content)
        if request.POST.get("action") == "submit":
            submission = services.submission_create_from_sandbox(
                event=event, user=request.user, name=form.cleaned_data["name"].strip())
            messages.success(request, f"Submission {submission.name} is queued for evaluation.")
            return redirect(f"/submissions/{submission.id}/")
    except SubmissionRefused as exc:
        return _sandbox_page(request, event, form=form, refusal=exc, status=exc.status_code)
    except ApplicationError as exc:
        return _sandbox_page(request, event, form=form, error=exc.message,
                             status=exc.status_code)
    messages.success(request, "Sandbox saved.")
    return redirect(f"/events/{event.name}/sandbox/")


def _read_upload(request) -> str:
    """Parse a multipart body as the API does (names as sent, bytes capped in
    memory); '' when it parsed, else what was wrong."""
    handlers = [InMemoryUploadHandler(settings.DATARUN_MAX_SUBMISSION_BYTES, request)]
    try:
        parser = NameKeepingMultiPartParser(request.META, request, handlers,
                                    request.encoding or settings.DEFAULT_CHARSET)
        request._post, request._files = parser.parse()
    except TooManyFilesSent:
        return (f"too many files in one request: the limit is "
                f"{settings.DATA_UPLOAD_MAX_NUMBER_FILES}")
    except MultiPartParserError as exc:
        return f"the upload could not be read: {exc}"
    return ""


@login_required
@require_GET
@shows_errors
def sandbox_file(request, name, file_name):
    """One sandbox file as it would be submitted (those too large or binary
    for the editor are read here)."""
    event = services.event_get(name=name, user=request.user)
    contents = services.sandbox_contents(event=event, user=request.user)
    if file_name not in contents:
        raise NotFound(f"{file_name!r} is not a file of this problem's submissions")
    response = HttpResponse(contents[file_name], content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


@csrf_exempt  # checked by _sandbox_upload once the body is parsed our way
def sandbox_upload(request, name):
    parse_error = ""
    if (request.method == "POST" and request.user.is_authenticated
            and request.content_type == "multipart/form-data"):
        parse_error = _read_upload(request)
    return _sandbox_upload(request, name, parse_error)


@csrf_protect
@login_required
@require_POST
@shows_errors
def _sandbox_upload(request, name, parse_error: str):
    """One file of the sandbox replaced by an uploaded one; its name says which."""
    event = services.event_get(name=name, user=request.user)
    services.team_get(event=event, user=request.user)
    try:
        if parse_error:
            raise InvalidSubmission(parse_error)
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidSubmission("choose a file to upload")
        submission_files.check_file_name(upload.name)
        submission_files.check_file_size(upload.name, upload.size)
        services.sandbox_file_save(event=event, user=request.user, file_name=upload.name,
                                   content=upload.read())
    except ApplicationError as exc:
        return _sandbox_page(request, event, error=exc.message, status=exc.status_code)
    messages.success(request, f"{upload.name} uploaded to the sandbox.")
    return redirect(f"/events/{event.name}/sandbox/")


# --- submissions ----------------------------------------------------------------

def _official_score(summary: dict | None, official: dict | None, kind: str):
    if not summary or not official:
        return None
    return summary["scores"].get(official["name"], {}).get("valid", {}).get(kind)


@login_required
def my_submissions(request):
    """The user's submissions in every event (``?event=<name>``: in one)."""
    event = Event.objects.filter(name=request.GET.get("event") or "").first()
    submissions = list(selectors.submissions_of_user(user=request.user, event=event))
    summaries = datarun_selectors.evaluation_summaries([s.evaluation_id for s in submissions])
    score_types: dict[str, list[dict]] = {}
    rows = []
    for sub in submissions:
        problem, kind = sub.team.event.problem_name, sub.team.event.leaderboard_kind
        if problem not in score_types:
            score_types[problem] = datarun_selectors.score_types_for(problem)
        official = next(iter(score_types[problem]), None)
        summary = summaries.get(sub.evaluation_id)
        rows.append({
            "submission": sub, "event": sub.team.event, "official": official,
            "state": summary["state"] if summary else "new",
            "score": _official_score(summary, official, kind),
        })
    team = services.team_of(event=event, user=request.user) if event else None
    return render(request, "databoard/submissions/list.html", {
        "rows": rows, "event": event, "team": team,
        **(team_history_context(event, team) if team is not None else {})})


def _status_context(submission, user, detail: dict | None = None) -> dict:
    """What the live part of the submission page shows (also polled alone)."""
    event = submission.team.event
    if detail is None:
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
    detail = selectors.evaluation_as_seen_by(detail, event=event, user=user)
    private_ok = permissions.can_see_private_scores(event, user)
    queue_position = None
    if detail["state"] in ("new", "queued"):
        queue_position = datarun_selectors.queue_positions(
            [submission.evaluation_id]).get(submission.evaluation_id)
    return {
        "submission": submission, "event": event, "detail": detail,
        "final": detail["state"] in FINAL_STATES, "queue_position": queue_position,
        "score_types": datarun_selectors.score_types_for(event.problem_name),
        "steps": ("train", "valid", "test") if private_ok else ("train", "valid"),
        "private_ok": private_ok, "poll_seconds": POLL_SECONDS,
        "common_isolation": _common_isolation(detail["folds"]),
    }


def _common_isolation(folds: list[dict]) -> dict | None:
    """The isolation and runtime image every fold ran with, when they all
    share one (said once above the table instead of on every row); an empty
    one while no fold has run yet."""
    used = {(f.get("isolation") or "", f.get("runtime_image") or "") for f in folds
            if f.get("isolation")}
    if not used:
        return {"isolation": "", "runtime_image": ""}
    if len(used) != 1:
        return None
    isolation, image = used.pop()
    return {"isolation": isolation, "runtime_image": image}


@login_required
@shows_errors
def submission_detail(request, pk):
    submission = services.submission_get(submission_id=pk, user=request.user)
    # Re-runs: the earlier evaluations of the same files, read with the current one.
    detail, earlier = datarun_selectors.evaluation_history(
        submission.evaluation_id, submission.previous_evaluation_ids)
    context = _status_context(submission, request.user, detail)
    event, kind = context["event"], context["event"].leaderboard_kind
    official = next(iter(context["score_types"]), None)
    summaries = {i: selectors.evaluation_as_seen_by(summary, event=event, user=request.user)
                 for i, summary in earlier.items()}
    context["previous"] = [
        {"summary": summaries[i], "score": _official_score(summaries[i], official, kind)}
        for i in reversed(submission.previous_evaluation_ids) if i in summaries
    ]
    context.update(official=official, kind=kind,
                   credits=submission.credits.select_related("source__team"))
    return render(request, "databoard/submissions/detail.html", context)


@login_required
@shows_errors
def submission_status(request, pk):
    """The live fragment of the submission page; htmx polls it until the state is final."""
    submission = services.submission_get(submission_id=pk, user=request.user)
    context = _status_context(submission, request.user)
    response = render(request, "databoard/submissions/_status.html", context)
    if context["final"] and request.headers.get("HX-Request"):
        # The page was polling, so it was loaded before the end: reload it
        # for the scores, the errors and the summary.
        response["HX-Refresh"] = "true"
    return response


FAVICON = Path(__file__).resolve().parents[1] / "static" / "databoard" / "favicon.ico"


def favicon(request):
    """The site's icon, from the project (browsers ask for /favicon.ico)."""
    response = HttpResponse(FAVICON.read_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


urlpatterns = [
    path("", home),
    path("favicon.ico", favicon),
    path("events/", event_list),
    path("events/<slug:name>/", event_detail),
    path("events/<slug:name>/starting-kit.zip", starting_kit),
    path("events/<slug:name>/sandbox/", sandbox),
    path("events/<slug:name>/sandbox/upload/", sandbox_upload),
    path("events/<slug:name>/sandbox/files/<str:file_name>", sandbox_file,
         name="sandbox-file"),
    path("my/submissions/", my_submissions),
    path("submissions/<int:pk>/", submission_detail),
    path("submissions/<int:pk>/status/", submission_status),
]
