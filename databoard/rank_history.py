"""A team's leaderboard rank over time, and its best score (a picture on the
team and my-submissions pages, and the API's team history).

Teams are ranked as on a per-team board: each by its best public
(validation) score so far, ties to the team that got there first; a team
with no scored submission yet has no rank. The history is replayed from the
leaderboard's read model in submission order: one point each time the
team's rank or best score changed.
"""
from bisect import bisect_left, insort

from databoard.models import Event, LeaderboardEntry, Team
from databoard.services.leaderboards import MISSING, leaderboard_ensure
from datarun import selectors as datarun_selectors


def team_rank_history(*, event: Event, team: Team) -> dict:
    """``points``: (t, rank, teams ranked, best score so far, the submission
    that holds it); ``submissions``: each of the team's scored submissions
    with its score (for the dots under the best-score line)."""
    leaderboard_ensure(event)
    kind = event.leaderboard_kind
    score_types = datarun_selectors.score_types_for(event.problem_name)
    official = score_types[0] if score_types else None
    out = {"event": event.name, "team": team.name, "kind": kind,
           "score": official and {k: official[k] for k in
                                  ("name", "precision", "is_lower_the_better")},
           "points": [], "submissions": []}
    if official is None:
        return out
    entries = (LeaderboardEntry.objects.filter(event=event, kind=kind)
               .exclude(valid_key=MISSING).order_by("submitted_at", "submission_id")
               .values_list("team_id", "valid_key", "submitted_at", "submission_id",
                            "submission__name", "scores"))
    best: dict[int, tuple] = {}  # team id -> (key, submitted_at, submission id)
    ranked: list[tuple] = []  # every team's best, best first
    mine = None
    for team_id, key, at, submission_id, name, scores in entries:
        value = scores[official["name"]]["valid"].get(kind)
        if team_id == team.id:
            out["submissions"].append({"t": at.isoformat(), "submission": name,
                                       "value": value})
        candidate = (key, at, submission_id)
        current = best.get(team_id)
        if current is not None and current <= candidate:
            continue  # not this team's new best: nobody's rank moves
        if current is not None:
            ranked.pop(bisect_left(ranked, current))
        insort(ranked, candidate)
        best[team_id] = candidate
        if team_id == team.id:
            mine = {"submission": name, "value": value}
        if mine is None:
            continue
        point = {"t": at.isoformat(), "rank": bisect_left(ranked, best[team.id]) + 1,
                 "teams": len(ranked), "best": mine["value"],
                 "best_submission": mine["submission"]}
        last = out["points"][-1] if out["points"] else None
        if last is None or (last["rank"], last["best"], last["teams"]) != (
                point["rank"], point["best"], point["teams"]):
            out["points"].append(point)
    return out
