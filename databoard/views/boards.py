"""Web pages: leaderboards, reading and reusing code in the collaborative
phase (code, diff, import into the sandbox), and pictures of scores and
resource use.

Who sees what is decided by ``databoard.permissions`` (code before the public
opening, test scores before closing, other teams' submissions); the pages ask
it row by row and never show more.
"""
import difflib
import itertools
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from databoard import charts, conditional, permissions, rank_history, selectors, services
from databoard import leaderboard_selectors as leaderboards
from databoard.models import Event, Submission
from databoard.services import collaboration
from databoard.templatetags.databoard import mebibytes, score, seconds
from databoard.views.errors import shows_errors
from datarun import selectors as datarun_selectors
from datarun.api.pagination import page_request
from datarun.errors import ApplicationError, NotFound

REFRESH_SECONDS = 10
DIFF_CONTEXT = collaboration.DIFF_CONTEXT


# --- leaderboards -------------------------------------------------------------

def _board_and_kind(request, event: Event) -> tuple[str, str]:
    board = request.GET.get("board") or "public"
    if board not in leaderboards.LEADERBOARDS:
        raise NotFound(f"no leaderboard named {board!r}")
    if board == "competition" and not event.is_competitive:
        raise NotFound(f"{event.name} has no competition leaderboard")
    kind = request.GET.get("kind") or event.leaderboard_kind
    if kind not in Event.LeaderboardKind.values:
        raise ApplicationError("the leaderboard kind is 'bagged' or 'mean'")
    return board, kind


def _steps(board: str, event: Event) -> tuple[str, ...]:
    """The scores each board shows: validation (public), test (private), and
    on the competition board both once the event has closed."""
    if board == "private":
        return ("test",)
    if board == "competition" and permissions.is_closed(event):
        return ("valid", "test")
    return ("valid",)


def _query(request, **changes) -> str:
    """The board's query string with ``changes`` (None removes a parameter)."""
    params = request.GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return params.urlencode()


def _leaderboard_context(request, event: Event, board: str, kind: str,
                         etag: str | None = None) -> dict:
    user = request.user
    team_filter = request.GET.get("team", "").strip()
    search = request.GET.get("search", "").strip()
    data = leaderboards.leaderboard_rows(
        event=event, user=user, kind=kind, board=board, page=page_request(request.GET),
        team=team_filter, search=search, with_selection=True)
    steps = _steps(board, event)
    columns = [(st, step) for step in steps for st in data["score_types"]]
    access = permissions.submission_access(event, user)
    my_team = data["my_team"]
    viewer_team = permissions.member_team(event, user)
    for row in data["rows"]:
        row["can_view"], row["can_read"] = access(row["team_id"])
        row["mine"] = viewer_team is not None and row["team_id"] == viewer_team.id
        # Formatted here, not by template filters: 50 rows x 15 cells a refresh.
        row["cells"] = [_cell(row["scores"][st["name"]][step], kind, st["precision"])
                        for st, step in columns]
        row["times"] = [seconds(row["train_time"]), seconds(row["valid_time"]),
                        *([seconds(row["test_time"])] if data["test_scores_shown"] else []),
                        seconds(row["cpu_time"]), mebibytes(row["peak_memory"])]
        if row.get("rank_change") is not None:
            row["rank_drop"] = -row["rank_change"]
        c = row["contributivity"]
        row["contributivity_pct"] = "—" if c is None else f"{100 * c:.1f} %"
    page, pages = data["page"], data["pages"]
    return {
        "event": event, "board": board, "kind": kind, "rows": data["rows"],
        "columns": columns, "test_shown": data["test_scores_shown"],
        "private_ok": permissions.can_see_private_scores(event, user),
        "closed": permissions.is_closed(event),
        "can_select": (event.is_competitive and viewer_team is not None
                       and (not permissions.is_closed(event) or event.is_admin(user))),
        "kinds": Event.LeaderboardKind.values, "refresh_seconds": REFRESH_SECONDS,
        "count": data["count"], "page": page, "pages": pages,
        "previous_query": _query(request, page=page - 1) if page > 1 else None,
        "next_query": _query(request, page=page + 1) if page < pages else None,
        "my_team": my_team, "team_filter": team_filter, "search": search,
        "my_team_query": (_query(request, page=my_team["page"], team=None, search=None)
                          if my_team else None),
        "all_query": _query(request, page=None, team=None, search=None),
        "table_query": _query(request),
        "etag": etag or _leaderboard_etag(request, event),
    }


def _cell(values: dict, kind: str, precision: int) -> str:
    text = score(values.get(kind), precision)
    if kind == "mean" and values.get("std") is not None:
        return format_html('{} <span class="muted">± {}</span>', text,
                           score(values["std"], precision))
    return text


def _leaderboard_etag(request, event: Event) -> str:
    return leaderboards.leaderboard_version(event=event, user=request.user,
                                            query=_query(request))


def _leaderboard_page(request, event: Event, board: str, kind: str, *, error: str = "",
                      status: int = 200):
    context = _leaderboard_context(request, event, board, kind)
    context["error"] = error
    return render(request, "databoard/boards/leaderboard.html", context, status=status)


@shows_errors
def leaderboard(request, name):
    event = services.event_get(name=name, user=request.user)
    board, kind = _board_and_kind(request, event)
    return _leaderboard_page(request, event, board, kind)


@shows_errors
def leaderboard_csv(request, name):
    """The whole board as a CSV file (for grading), as the viewer may see it."""
    event = services.event_get(name=name, user=request.user)
    board, kind = _board_and_kind(request, event)
    response = HttpResponse(
        leaderboards.leaderboard_csv(event=event, user=request.user, board=board, kind=kind),
        content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{leaderboards.csv_file_name(event, board)}"')
    return response


@shows_errors
def leaderboard_table(request, name):
    """The live part of the leaderboard page, which htmx asks for every few
    seconds with the ETag it has: a 304 (nothing to swap) unless it changed."""
    event = services.event_get(name=name, user=request.user)
    board, kind = _board_and_kind(request, event)
    etag = _leaderboard_etag(request, event)
    if unchanged := conditional.not_modified(request, etag=etag,
                                             last_modified=event.leaderboard_changed_at):
        return unchanged
    response = render(request, "databoard/boards/_table.html",
                      _leaderboard_context(request, event, board, kind, etag))
    return conditional.with_validators(response, etag=etag,
                                       last_modified=event.leaderboard_changed_at)


@login_required
@require_POST
@shows_errors
def submission_select(request, pk):
    try:
        submission = services.submission_select(submission_id=pk, user=request.user)
    except NotFound:
        raise
    except ApplicationError as exc:
        # Past the membership check: the submission is the user's team's.
        event = Submission.objects.select_related("team__event").get(id=pk).team.event
        board = "competition" if event.is_competitive else "public"
        return _leaderboard_page(request, event, board, event.leaderboard_kind,
                                 error=exc.message, status=exc.status_code)
    event = submission.team.event
    messages.success(request, f"Submission {submission.name} is your team's selection "
                              f"for the competition leaderboard.")
    return redirect(f"/events/{event.name}/leaderboard/?board=competition")


# --- code, diff, import (collaborative phase) ------------------------------------

def _readable(pk, user) -> Submission:
    return collaboration.submission_readable(submission_id=pk, user=user)


def _links(submissions, user) -> list[dict]:
    return [{"submission": s, "readable": permissions.can_read_code(s, user)}
            for s in submissions]


def _code_context(request, submission: Submission) -> dict:
    event, user = submission.team.event, request.user
    team = services.team_of(event=event, user=user)
    return {
        "submission": submission, "event": event,
        "can_view": permissions.can_view_submission(submission, user),
        "can_import": team is not None and team.approved,
        "own_team": team is not None and team.id == submission.team_id,
    }


@shows_errors
def submission_code(request, pk):
    submission = _readable(pk, request.user)
    files = [(name, list(enumerate(text.splitlines(), start=1)))
             for name, text in collaboration.submission_texts(submission).items()]
    credits = collaboration.submission_credits(submission=submission)
    return render(request, "databoard/boards/code.html", {
        **_code_context(request, submission), "files": files,
        "credits": _links(credits["credits"], request.user),
        "credited_by": _links(credits["reused_by"], request.user),
    })


def side_by_side(old: list[str], new: list[str], context: int = DIFF_CONTEXT) -> list[dict]:
    """Rows of a two-column diff from ``old`` to ``new``; long unchanged runs
    are cut to ``context`` lines around the changes (a row with ``gap`` set)."""
    rows = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    opcodes = matcher.get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            pairs: list = list(zip(range(i1, i2), range(j1, j2), strict=True))
            head = pairs[:context] if n else []
            tail = pairs[len(pairs) - context:] if n < len(opcodes) - 1 else []
            if len(head) + len(tail) < len(pairs):
                pairs = [*head, None, *tail]
            for pair in pairs:
                if pair is None:
                    rows.append({"gap": True})
                else:
                    i, j = pair
                    rows.append({"old_no": i + 1, "old": old[i], "old_class": "",
                                 "new_no": j + 1, "new": new[j], "new_class": ""})
            continue
        for i, j in itertools.zip_longest(range(i1, i2), range(j1, j2)):
            rows.append({
                "old_no": None if i is None else i + 1, "old": "" if i is None else old[i],
                "old_class": "" if i is None else "diff-del",
                "new_no": None if j is None else j + 1, "new": "" if j is None else new[j],
                "new_class": "" if j is None else "diff-add",
            })
    return rows


def unified(old: list[str], new: list[str], old_name: str, new_name: str,
            context: int = DIFF_CONTEXT) -> list[dict]:
    """Lines of a unified diff, each with its class (diff-add, diff-del, diff-hunk)."""
    lines = []
    for line in collaboration.unified_lines(old, new, old_name, new_name, context):
        if line.startswith(("+++", "---")):
            css = "diff-file"
        elif line.startswith("@@"):
            css = "diff-hunk"
        elif line.startswith("+"):
            css = "diff-add"
        elif line.startswith("-"):
            css = "diff-del"
        else:
            css = ""
        lines.append({"text": line, "class": css})
    return lines


def file_diffs(old: dict[str, str], new: dict[str, str], old_label: str,
               new_label: str) -> list[dict]:
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, "").splitlines(), new.get(name, "").splitlines()
        out.append({
            "name": name, "changed": a != b, "only_old": name not in new,
            "only_new": name not in old, "rows": side_by_side(a, b),
            "unified": unified(a, b, f"{old_label}/{name}", f"{new_label}/{name}"),
        })
    return out


def _against(request, submission: Submission):
    """What the diff compares with: ``?against=<id>``, ``?against=sandbox``, or by
    default the viewer's team's latest other submission, else its sandbox."""
    event, user = submission.team.event, request.user
    wanted = request.GET.get("against", "")
    team = services.team_of(event=event, user=user)
    if not wanted and team is not None:
        latest = team.submissions.exclude(id=submission.id).order_by("-created_at").first()
        wanted = str(latest.id) if latest else ("sandbox" if team.approved else "")
    if wanted == "sandbox":
        return "sandbox", "your sandbox", services.sandbox_files(event=event, user=user)
    if not wanted:
        return None, "", None
    if not wanted.isdigit():
        raise NotFound(f"no submission {wanted!r} whose code you may read")
    other = _readable(int(wanted), user)
    return other, f"{other.team.name}/{other.name}", collaboration.submission_texts(other)


@shows_errors
def submission_diff(request, pk):
    submission = _readable(pk, request.user)
    against, label, files = _against(request, submission)
    view = "unified" if request.GET.get("view") == "unified" else "split"
    team = services.team_of(event=submission.team.event, user=request.user)
    choices = list(team.submissions.exclude(id=submission.id)) if team else []
    diffs = None
    if files is not None:
        diffs = file_diffs(files, collaboration.submission_texts(submission), label,
                           f"{submission.team.name}/{submission.name}")
    return render(request, "databoard/boards/diff.html", {
        **_code_context(request, submission), "against": against, "against_label": label,
        "diffs": diffs, "view": view, "choices": choices,
        "against_param": "sandbox" if against == "sandbox" else getattr(against, "id", ""),
    })


@login_required
@require_POST
@shows_errors
def submission_import(request, pk):
    """Copy a submission's files into the viewer's team sandbox."""
    submission = _readable(pk, request.user)
    event = submission.team.event
    names = services.sandbox_import(event=event, user=request.user, source_id=submission.id)
    team = services.team_of(event=event, user=request.user)
    files = ", ".join(names)
    if team.id == submission.team_id:
        messages.success(request, f"Imported {files} from your team's submission "
                                  f"{submission.name} into your sandbox.")
    else:
        messages.success(request, f"Imported {files} from team {submission.team.name}'s "
                                  f"submission {submission.name} into your sandbox: your next "
                                  f"submission will credit it.")
    return redirect(f"/events/{event.name}/sandbox/")


# --- pictures ------------------------------------------------------------------------

def _at(value, precision: int) -> str:
    return "—" if value is None else f"{value:.{precision}f}"


def _mib(value):
    return None if value is None else value / 2**20


@shows_errors
def event_pictures(request, name):
    event = services.event_get(name=name, user=request.user)
    history = leaderboards.score_history(event=event, user=request.user)
    zone = timezone.get_current_timezone_name()
    score_chart = None
    if history["score"] is not None:
        official, kind = history["score"], history["kind"]

        def moment(iso: str) -> datetime:
            return timezone.localtime(datetime.fromisoformat(iso))

        points = [(moment(p["t"]), p["value"],
                   f"{p['team']} / {p['submission']}: "
                   f"{_at(p['value'], official['precision'])}") for p in history["points"]]
        best = [(moment(b["t"]), b["value"]) for b in history["best"]]
        score_chart = charts.scatter(
            points, step_line=best, time_axis=True,
            title=f"{official['name']} ({kind}, validation) of every scored submission",
            x_label=f"submitted at ({zone})", y_label=official["name"])
    rows = leaderboards.resource_points(event=event)
    resources = charts.scatter(
        [(r["cpu_time"], _mib(r["peak_memory"]),
          f"{r['team__name']} / {r['submission__name']}: CPU {_at(r['cpu_time'], 2)} s, "
          f"peak memory {_at(_mib(r['peak_memory']), 0)} MiB") for r in rows],
        title="Resource use per submission (all folds)", x_label="CPU time (s)",
        y_label="peak memory (MiB)")
    return render(request, "databoard/boards/event_pictures.html", {
        "event": event, "score_chart": mark_safe(score_chart) if score_chart else None,
        "resource_chart": mark_safe(resources), "n_points": len(history["points"]),
    })


def team_history_context(event: Event, team) -> dict:
    """The team's rank over time and its best score (pictures on the team and
    my-submissions pages); empty without a scored submission."""
    history = rank_history.team_rank_history(event=event, team=team)
    official = history["score"]
    if not history["points"]:
        return {"history": history}
    precision = official["precision"]

    def moment(iso: str) -> datetime:
        return timezone.localtime(datetime.fromisoformat(iso))

    zone = timezone.get_current_timezone_name()
    rank_chart = charts.rank_steps(
        [(moment(p["t"]), p["rank"],
          f"rank {p['rank']} of {p['teams']} teams, best {official['name']} "
          f"{_at(p['best'], precision)} ({p['best_submission']})")
         for p in history["points"]],
        title=f"Rank of team {team.name} among the teams (by best public score)",
        x_label=f"submitted at ({zone})")
    score_chart = charts.scatter(
        [(moment(s["t"]), s["value"], f"{s['submission']}: {_at(s['value'], precision)}")
         for s in history["submissions"]],
        step_line=[(moment(p["t"]), p["best"]) for p in history["points"]],
        time_axis=True, title=f"{official['name']} ({history['kind']}, validation) of "
                              f"team {team.name}'s submissions",
        x_label=f"submitted at ({zone})", y_label=official["name"])
    last = history["points"][-1]
    return {"history": history, "rank_chart": mark_safe(rank_chart),
            "best_chart": mark_safe(score_chart), "rank_now": last}


@login_required
@shows_errors
def submission_pictures(request, pk):
    submission = services.submission_get(submission_id=pk, user=request.user)
    event = submission.team.event
    detail = selectors.evaluation_as_seen_by(
        datarun_selectors.evaluation_detail(submission.evaluation_id),
        event=event, user=request.user)
    private_ok = permissions.can_see_private_scores(event, request.user)
    steps = ("train", "valid", "test") if private_ok else ("train", "valid")
    folds = detail["folds"]
    score_charts = [mark_safe(charts.strip_chart(
        [(step, [(f["scores"].get(st["name"], {}).get(step),
                  f"fold {f['fold']}, {step}: "
                  f"{_at(f['scores'].get(st['name'], {}).get(step), st['precision'])}")
                 for f in folds]) for step in steps],
        title=f"{st['name']} per fold (mean as a line)", y_label=st["name"]))
        for st in datarun_selectors.score_types_for(event.problem_name)]
    fold_names = [f"fold {f['fold']}" for f in folds]
    time_chart = charts.bar_chart(
        fold_names, [("wall time", [f["wall_time"] for f in folds]),
                     ("CPU time", [f["cpu_time"] for f in folds])],
        title="Time per fold", y_label="seconds", unit=" s")
    memory_chart = charts.bar_chart(
        fold_names, [("peak memory", [_mib(f["peak_memory"]) for f in folds])],
        title="Peak memory per fold", y_label="MiB", unit=" MiB")
    return render(request, "databoard/boards/submission_pictures.html", {
        "submission": submission, "event": event, "detail": detail,
        "private_ok": private_ok, "score_charts": score_charts,
        "time_chart": mark_safe(time_chart), "memory_chart": mark_safe(memory_chart),
    })


urlpatterns = [
    path("events/<slug:name>/leaderboard/", leaderboard),
    path("events/<slug:name>/leaderboard/table/", leaderboard_table),
    path("events/<slug:name>/leaderboard.csv", leaderboard_csv),
    path("events/<slug:name>/pictures/", event_pictures),
    path("submissions/<int:pk>/select/", submission_select),
    path("submissions/<int:pk>/code/", submission_code),
    path("submissions/<int:pk>/diff/", submission_diff),
    path("submissions/<int:pk>/import/", submission_import),
    path("submissions/<int:pk>/pictures/", submission_pictures),
]
