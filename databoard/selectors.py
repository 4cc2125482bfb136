"""Reads on the databoard side: submissions, leaderboards, the score history."""
import io
import json
import zipfile

from databoard import permissions
from databoard.models import Event, Submission
from databoard.services.events import event_fold_limits
from datarun import selectors as datarun_selectors
from datarun.errors import PermissionDenied
from datarun.ramp_kits import KIT_LIMITS_FILE

LEADERBOARDS = ("public", "private", "competition")


def starting_kit_zip(event: Event) -> bytes:
    """problem.py, the README, the starting kit and the training data, zipped,
    with the limits the event's folds run under (which ``datarun test`` reads)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file_name, data in datarun_selectors.starting_kit_files(event.problem_name).items():
            archive.writestr(file_name, data)
        limits = {"event": event.name, "limits": event_fold_limits(event),
                  "about": "Per fold: wall time (s), memory (MiB), CPUs. A fold over "
                           "them is stopped; `datarun test` in this folder applies them."}
        archive.writestr(f"{event.problem_name}/{KIT_LIMITS_FILE}",
                         json.dumps(limits, indent=2) + "\n")
    return buffer.getvalue()


def submissions_of_user(*, user, event: Event | None = None):
    qs = Submission.objects.filter(team__memberships__user=user).select_related(
        "team__event", "submitted_by"
    )
    if event is not None:
        qs = qs.filter(team__event=event)
    return qs


def without_test_scores(evaluation: dict, *, event: Event, user) -> dict:
    """The evaluation as ``user`` may see it: test scores are private until
    the event closes (event admins see them always)."""
    if permissions.can_see_private_scores(event, user):
        return evaluation
    for by_step in evaluation.get("scores", {}).values():
        by_step.pop("test", None)
    for fold in evaluation.get("folds", []):
        for by_step in fold["scores"].values():
            by_step.pop("test", None)
        fold["test_time"] = None
    if "test_time" in evaluation:
        evaluation["test_time"] = None
    if "metrics" in evaluation:
        evaluation["metrics"] = [m for m in evaluation["metrics"]
                                 if m["key"] != "test_time" and "test" not in m["key"].split("/")]
    return evaluation


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
            r["submitted_at"],
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


def leaderboard_rows(*, event: Event, user, kind: str | None = None,
                     board: str = "public") -> dict:
    """Scored submissions ranked by the official score.

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


def score_history(*, event: Event, user) -> dict:
    """Every scored submission's official validation score over time, with
    the best-so-far line (for the event's score-over-time picture)."""
    board = leaderboard_rows(event=event, user=user, board="public")
    official = board["score_types"][0] if board["score_types"] else None
    if official is None:
        return {"score": None, "points": [], "best": []}
    name, kind = official["name"], board["kind"]
    points = sorted(
        ({"t": r["submitted_at"].isoformat(), "value": r["scores"][name]["valid"].get(kind),
          "team": r["team"], "submission": r["submission"]} for r in board["rows"]),
        key=lambda p: p["t"])
    best, current = [], None
    for p in points:
        if p["value"] is None:
            continue
        if current is None or (p["value"] < current if official["is_lower_the_better"]
                               else p["value"] > current):
            current = p["value"]
        best.append({"t": p["t"], "value": current})
    return {"score": official, "kind": kind, "points": points, "best": best}
