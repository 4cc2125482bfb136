"""Reads of the leaderboards: a page of ranked rows from the read model
(``LeaderboardEntry``, kept by ``databoard.services.leaderboards``), the
version that makes a board's ETag, the score history, and the full
recomputation from the evaluations that the read model must always equal.

A rank is a row's place in (sort key, submission time, submission id) order;
missing scores rank last, ties go to the earlier submission.
"""
import csv
import hashlib
import io

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from databoard import permissions
from databoard.models import Event, LeaderboardEntry, Submission, Team, TeamMember
from databoard.services.leaderboards import leaderboard_ensure
from datarun import selectors as datarun_selectors
from datarun.api.pagination import PageRequest
from datarun.errors import PermissionDenied

LEADERBOARDS = ("public", "private", "competition")

_ENTRY, _SUBMISSION, _TEAM = (LeaderboardEntry._meta.db_table, Submission._meta.db_table,
                              Team._meta.db_table)
_JOINED = (f"s.name AS submission_name, s.contributivity AS submission_contributivity, "
           f"t.name AS team_name, t.selected_submission_id AS team_selection FROM {{rows}} e "
           f"JOIN {_SUBMISSION} s ON s.id = e.submission_id JOIN {_TEAM} t ON t.id = e.team_id")
_FIELDS = ("id", "event_id", "kind", "submission_id", "team_id", "submitted_at", "valid_key",
           "test_key", "in_competition", "scores", "train_time", "valid_time", "test_time",
           "cpu_time", "peak_memory")
_COLUMNS = ", ".join(f"e.{f}" for f in _FIELDS)


def _order(key: str) -> str:
    return f"{key}, submitted_at, submission_id"


def _board_filter(event: Event, kind: str, board: str) -> tuple[str, list]:
    where = "event_id = %s AND kind = %s"
    if board == "competition":
        where += " AND in_competition"
    return where, [event.id, kind]


def _order_key(event: Event, board: str, private_ok: bool) -> str:
    """The column that ranks: test scores on the private board and on the
    competition board once the event has closed, validation scores otherwise."""
    final = board == "competition" and permissions.is_closed(event) and private_ok
    return "test_key" if board == "private" or final else "valid_key"


def leaderboard_rows(*, event: Event, user, kind: str | None = None, board: str = "public",
                     page: PageRequest | None = None, team: str = "",
                     search: str = "", with_selection: bool = False,
                     score_types: list[dict] | None = None) -> dict:
    """One page of a board's rows, ranked by the official score.

    ``board``: "public" ranks by validation scores (everyone); "private" by
    test scores (event admins; everyone once the event has closed);
    "competition" keeps each team's selected submission (its best by the
    public score when it selected none), ranked by the private score once the
    event has closed (by the public one before), with each row's change of
    rank from public to private. ``kind``: "bagged" (RAMP's default) or
    "mean" over folds; the event's own kind when None. ``team`` (a team's
    name) and ``search`` (part of a team's or a submission's name, any case)
    keep the matching rows with their ranks on the whole board. ``my_team``
    says where the viewer's team's best row is (its rank and page).
    ``with_selection``: each row also says whether its team selected it.
    ``score_types``: the problem's, when the caller has read them already.
    """
    kind = kind or event.leaderboard_kind
    page = page or PageRequest()
    if score_types is None:
        score_types = datarun_selectors.score_types_for(event.problem_name)
    private_ok = permissions.can_see_private_scores(event, user)
    if board == "private" and not private_ok:
        raise PermissionDenied("the private leaderboard opens when the event closes")
    leaderboard_ensure(event)
    steps = ("valid", "test") if private_ok else ("valid",)
    key = _order_key(event, board, private_ok)
    where, params = _board_filter(event, kind, board)
    filters, filter_params = [], []
    if team:
        filters.append("t.name = %s")
        filter_params.append(team)
    if search:
        pattern = "%" + search.upper().replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        filters.append("(UPPER(t.name) LIKE %s ESCAPE '\\' OR UPPER(s.name) LIKE %s "
                       "ESCAPE '\\')")
        filter_params += [pattern, pattern]
    viewer_team = permissions.member_team(event, user)
    ranked = bool(filters) or board == "competition"
    count, my_rank = _count_and_rank(event, where, params, key, viewer_team,
                                     (filters, filter_params) if filters else None)
    if ranked:
        entries = list(LeaderboardEntry.objects.raw(
            f"SELECT {_COLUMNS}, e.rank, e.public_rank, "
            + _JOINED.format(rows=_ranked_sql(where, key))
            + (" WHERE " + " AND ".join(filters) if filters else "")
            + " ORDER BY e.rank LIMIT %s OFFSET %s",
            [*params, *filter_params, page.size, page.offset]))
    else:
        entries = list(LeaderboardEntry.objects.raw(
            f"SELECT {_COLUMNS}, " + _JOINED.format(
                rows=f"(SELECT * FROM {_ENTRY} WHERE {where} ORDER BY {_order(key)} "
                     f"LIMIT %s OFFSET %s)") + f" ORDER BY {_order('e.' + key)}",
            [*params, page.size, page.offset]))
        for n, entry in enumerate(entries, start=page.offset + 1):
            entry.rank = entry.public_rank = n
    final = board == "competition" and key == "test_key"
    rows = [_row(entry, steps, board, final) for entry in entries]
    if with_selection:
        for row, entry in zip(rows, entries, strict=True):
            row["selected"] = entry.team_selection == entry.submission_id
    my_team = None if my_rank is None else {
        "name": viewer_team.name, "rank": my_rank, "page": (my_rank - 1) // page.size + 1}
    return {"event": event.name, "board": board, "kind": kind, "score_types": score_types,
            "test_scores_shown": private_ok, **page.info(count), "my_team": my_team,
            "rows": rows}


def _ranked_sql(where: str, key: str) -> str:
    public_rank = ("rank" if key == "valid_key"
                   else f"ROW_NUMBER() OVER (ORDER BY {_order('valid_key')})")
    return (f"(SELECT *, {public_rank} AS public_rank FROM (SELECT *, ROW_NUMBER() OVER "
            f"(ORDER BY {_order(key)}) AS rank FROM {_ENTRY} WHERE {where}) ranked)")


def _count_and_rank(event: Event, where: str, params: list, key: str, viewer_team,
                    filtered: tuple[list, list] | None) -> tuple[int, int | None]:
    """In one statement: the rows of the board (those ``filtered`` keeps) and
    the best rank of the viewer's team (None: no team, or no row). Kept in
    the cache for the board's version: counting 10,000 rows for each of 200
    refreshing viewers costs more than the rest of their page."""
    if filtered:
        filters, filter_params = filtered
        count_sql = (f"SELECT COUNT(*) FROM (SELECT * FROM {_ENTRY} WHERE {where}) e "
                     f"JOIN {_SUBMISSION} s ON s.id = e.submission_id "
                     f"JOIN {_TEAM} t ON t.id = e.team_id WHERE " + " AND ".join(filters))
        count_params = [*params, *filter_params]
    else:
        count_sql, count_params = f"SELECT COUNT(*) FROM {_ENTRY} WHERE {where}", params
    if viewer_team is None:
        rank_sql, rank_params = "NULL", []
    else:
        # 1 + the rows ahead of the team's best one: an index range, not a sort
        # of the whole board (no row: no best one, so NULL).
        order = _order(key)
        rank_sql = (f"SELECT (SELECT COUNT(*) FROM {_ENTRY} WHERE {where} "
                    f"AND ({order}) < (b.{key}, b.submitted_at, b.submission_id)) + 1 "
                    f"FROM (SELECT {order} FROM {_ENTRY} WHERE {where} AND team_id = %s "
                    f"ORDER BY {order} LIMIT 1) b")
        rank_params = [*params, *params, viewer_team.id]
    sql, sql_params = f"SELECT ({count_sql}), ({rank_sql})", [*count_params, *rank_params]
    cache_key = None
    if event.leaderboard_changed_at is not None:
        # A new version (any change to the board) is a new key: nothing stale is read.
        cache_key = "leaderboard-count:" + hashlib.sha256(repr(
            (event.id, event.leaderboard_changed_at.isoformat(), sql, sql_params)).encode()
        ).hexdigest()
        cached = cache.get(cache_key)
        if cached is not None:
            return tuple(cached)
    with connection.cursor() as cursor:
        cursor.execute(sql, sql_params)
        count, rank = cursor.fetchone()
    if cache_key is not None:
        cache.set(cache_key, [count, rank], timeout=600)
    return count, rank


def _row(entry: LeaderboardEntry, steps: tuple[str, ...], board: str, final: bool) -> dict:
    row = {
        "submission_id": entry.submission_id, "submission": entry.submission_name,
        "team": entry.team_name, "team_id": entry.team_id, "submitted_at": entry.submitted_at,
        "scores": {name: {step: by_step[step] for step in steps}
                   for name, by_step in entry.scores.items()},
        "train_time": entry.train_time, "valid_time": entry.valid_time,
        "test_time": entry.test_time if "test" in steps else None,
        "cpu_time": entry.cpu_time, "peak_memory": entry.peak_memory,
        "contributivity": entry.submission_contributivity, "rank": entry.rank,
    }
    if board == "competition":
        row["public_rank"] = entry.public_rank
        row["rank_change"] = entry.public_rank - entry.rank if final else None
    return row


def leaderboard_version(*, event: Event, user, query: str) -> str:
    """A board page's ETag: it changes when the board changes, when the
    viewer's rights or team change, when the event closes or opens its code,
    and with the query (board, kind, page, filters) and the viewer's time zone."""
    leaderboard_ensure(event)
    team = permissions.member_team(event, user)
    now = timezone.now()
    parts = [event.leaderboard_changed_at.isoformat(), str(getattr(user, "pk", None)),
             f"{team.id}:{team.approved}" if team else "-", str(event.is_admin(user)),
             str(permissions.is_closed(event, now)), str(permissions.is_collaborative(event, now)),
             query, timezone.get_current_timezone_name()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def score_history(*, event: Event, user) -> dict:
    """Every scored submission's official validation score over time, with
    the best-so-far line (for the event's score-over-time picture)."""
    leaderboard_ensure(event)
    kind = event.leaderboard_kind
    score_types = datarun_selectors.score_types_for(event.problem_name)
    official = score_types[0] if score_types else None
    if official is None:
        return {"score": None, "points": [], "best": []}
    name = official["name"]
    entries = (LeaderboardEntry.objects.filter(event=event, kind=kind)
               .order_by("submitted_at", "submission_id")
               .values_list("submitted_at", "scores", "team__name", "submission__name"))
    points = [{"t": at.isoformat(), "value": scores[name]["valid"].get(kind),
               "team": team, "submission": submission}
              for at, scores, team, submission in entries]
    best, current = [], None
    for p in points:
        if p["value"] is None:
            continue
        if current is None or (p["value"] < current if official["is_lower_the_better"]
                               else p["value"] > current):
            current = p["value"]
        best.append({"t": p["t"], "value": current})
    return {"score": official, "kind": kind, "points": points, "best": best}


def resource_points(*, event: Event) -> list[dict]:
    """CPU time and peak memory of every scored submission (a picture)."""
    leaderboard_ensure(event)
    return list(LeaderboardEntry.objects.filter(event=event, kind=event.leaderboard_kind)
                .order_by("valid_key", "submitted_at", "submission_id")
                .values("cpu_time", "peak_memory", "team__name", "submission__name"))


# --- the full recomputation ---------------------------------------------------------
def _sort_key(value, lower_is_better: bool):
    # Missing scores rank last whatever the direction.
    if value is None:
        return (1, 0.0)
    return (0, value if lower_is_better else -value)


def _rank(rows: list[dict], official: dict | None, step: str, kind: str) -> list[dict]:
    if official:
        rows.sort(key=lambda r: (
            _sort_key(r["scores"][official["name"]][step].get(kind),
                      official["is_lower_the_better"]),
            r["submitted_at"], r["submission_id"],
        ))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _rows(event: Event, submissions: list[Submission], score_types: list[dict],
          steps: tuple[str, ...]) -> list[dict]:
    summaries = datarun_selectors.evaluation_summaries([s.evaluation_id for s in submissions])
    rows = []
    for sub in submissions:
        summary = summaries.get(sub.evaluation_id)
        if summary is None or summary["state"] != "scored":
            continue
        scores = {}
        for st in score_types:
            by_step = summary["scores"].get(st["name"], {})
            scores[st["name"]] = {step: by_step.get(step, {}) for step in steps}
        rows.append({
            "submission_id": sub.id, "submission": sub.name, "team": sub.team.name,
            "team_id": sub.team_id,
            "submitted_at": sub.created_at, "scores": scores,
            "train_time": summary["train_time"], "valid_time": summary["valid_time"],
            "test_time": summary["test_time"] if "test" in steps else None,
            "cpu_time": summary["cpu_time"], "peak_memory": summary["peak_memory"],
            "contributivity": sub.contributivity,
        })
    return rows


def leaderboard_recomputed(*, event: Event, user, kind: str | None = None,
                           board: str = "public") -> dict:
    """Every row of a board, recomputed from the evaluations (what the read
    model must equal; the tests and ``bench/leaderboard.py`` compare them).

    ``board``: "public" ranks by validation scores (everyone); "private" by
    test scores (event admins; everyone once the event has closed);
    "competition" keeps each team's selected submission (its best by the
    public score when it selected none), ranked by the private score once the
    event has closed (by the public one before), with each row's change of
    rank from public to private. ``kind``: "bagged" (RAMP's default) or
    "mean" over folds; the event's own kind when None.
    """
    kind = kind or event.leaderboard_kind
    score_types = datarun_selectors.score_types_for(event.problem_name)
    official = score_types[0] if score_types else None
    private_ok = permissions.can_see_private_scores(event, user)
    if board == "private" and not private_ok:
        raise PermissionDenied("the private leaderboard opens when the event closes")
    submissions = list(Submission.objects.of_event(event).select_related("team"))
    steps = ("valid", "test") if private_ok else ("valid",)
    rows = _rows(event, submissions, score_types, steps)
    if board == "public":
        rows = _rank(rows, official, "valid", kind)
    elif board == "private":
        rows = _rank(rows, official, "test", kind)
    else:
        rows = _competition(event, rows, official, kind, private_ok)
    return {"event": event.name, "board": board, "kind": kind, "score_types": score_types,
            "test_scores_shown": private_ok, "rows": rows}


def _competition(event: Event, rows: list[dict], official, kind: str, private_ok: bool):
    public_ranked = _rank(list(rows), official, "valid", kind)
    selected = dict(event.teams.exclude(selected_submission=None)
                    .values_list("id", "selected_submission_id"))
    chosen: dict[int, dict] = {}
    for row in public_ranked:  # best public first
        team = row["team_id"]
        if team in selected:
            if row["submission_id"] == selected[team]:
                chosen[team] = row
        elif team not in chosen:
            chosen[team] = row
    picked = [dict(r) for r in chosen.values()]
    public_rank = {r["submission_id"]: i for i, r in
                   enumerate(_rank([dict(r) for r in picked], official, "valid", kind), 1)}
    final = permissions.is_closed(event) and private_ok
    ranked = _rank(picked, official, "test" if final else "valid", kind)
    for row in ranked:
        row["public_rank"] = public_rank[row["submission_id"]]
        row["rank_change"] = row["public_rank"] - row["rank"] if final else None
    return ranked




def leaderboard_csv(*, event: Event, user, kind: str | None = None,
                    board: str = "public") -> str:
    """The whole board as CSV, for grading: one row per ranked submission
    with its team's members, its scores (as the board shows them to
    ``user``), times and contributivity. The same permissions as the board."""
    first = leaderboard_rows(event=event, user=user, kind=kind, board=board,
                             page=PageRequest(1, CSV_PAGE_SIZE))
    rows = list(first["rows"])
    for number in range(2, first["pages"] + 1):
        rows += leaderboard_rows(event=event, user=user, kind=kind, board=board,
                                 page=PageRequest(number, CSV_PAGE_SIZE))["rows"]
    stat = first["kind"]
    steps = ("valid", "test") if first["test_scores_shown"] else ("valid",)
    names = [st["name"] for st in first["score_types"]]
    members = _members_by_team({row["team_id"] for row in rows})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    competition = board == "competition"
    writer.writerow(["rank", *(["public_rank", "rank_change"] if competition else []),
                     "team", "members", "submission", "submission_id", "submitted_at",
                     *(f"{name}_{step}_{stat}" for name in names for step in steps),
                     "train_time_s", "valid_time_s", "contributivity"])
    for row in rows:
        writer.writerow([
            row["rank"], *([row["public_rank"], _blank(row["rank_change"])] if competition
                           else []),
            row["team"], " ".join(members.get(row["team_id"], [])), row["submission"],
            row["submission_id"], row["submitted_at"].isoformat(),
            *(_blank(row["scores"].get(name, {}).get(step, {}).get(stat))
              for name in names for step in steps),
            _blank(row["train_time"]), _blank(row["valid_time"]),
            _blank(row["contributivity"])])
    return buffer.getvalue()


CSV_PAGE_SIZE = 500


def csv_file_name(event: Event, board: str) -> str:
    return f"{event.name}-{board}-leaderboard.csv"


def _blank(value) -> str:
    return "" if value is None else str(value)


def _members_by_team(team_ids: set[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for team_id, username in (TeamMember.objects.filter(team_id__in=team_ids)
                              .order_by("user__username")
                              .values_list("team_id", "user__username")):
        out.setdefault(team_id, []).append(username)
    return out
