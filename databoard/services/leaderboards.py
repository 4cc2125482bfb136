"""The leaderboard read model (``LeaderboardEntry``), written whenever what a
board shows changes, so that pages and the API read ranked rows with one
indexed query instead of recomputing every evaluation on every view.

What changes a board, and what each caller does here:

- an evaluation is scored (datarun's ``evaluation_scored``), re-run or
  cancelled: :func:`leaderboard_update` rewrites that submission's rows;
- a team selects a submission: :func:`leaderboard_teams_update` re-picks the
  team's competition row;
- contributivity, a team's name or the event's settings change (read from
  their own tables when a board is read): :func:`leaderboard_touch` only moves
  the event's ``leaderboard_changed_at`` (the ETag of its boards).

Closing an event changes no row: which columns and which order a viewer gets
(test scores, the final competition ranking) is decided when the board is
read, from the clock and the viewer's rights.
"""
import math
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from databoard.models import Event, LeaderboardEntry, Submission
from datarun import selectors as datarun_selectors

KINDS = tuple(Event.LeaderboardKind.values)
STEPS = ("valid", "test")
# Sort key of a missing score: after every real one, whatever the direction.
MISSING = math.inf


def sort_key(value: float | None, *, lower_is_better: bool) -> float:
    """Ascending order is best first; a missing score ranks last."""
    if value is None:
        return MISSING
    return value if lower_is_better else -value


@transaction.atomic
def leaderboard_update(*, event_id: int, submission_ids: Iterable[int] | None = None) -> int:
    """Rewrite the rows of ``submission_ids`` (every submission of the event
    when None) from their current evaluations: a scored evaluation has one row
    per score kind, any other state none. Then re-pick the competition rows of
    their teams. Returns how many rows were written."""
    # The event's row lock serialises the updates of one event's boards.
    event = Event.objects.select_for_update().filter(id=event_id).first()
    if event is None:
        return 0
    if event.leaderboard_changed_at is None:
        submission_ids = None  # never built: build it whole
    submissions = Submission.objects.of_event(event)
    stale = LeaderboardEntry.objects.filter(event=event)
    if submission_ids is not None:
        submission_ids = list(submission_ids)
        submissions = submissions.filter(id__in=submission_ids)
        stale = stale.filter(submission_id__in=submission_ids)
    submissions = list(submissions.values_list("id", "team_id", "evaluation_id", "created_at"))
    summaries = datarun_selectors.leaderboard_summaries([s[2] for s in submissions])
    score_types = datarun_selectors.score_types_for(event.problem_name)
    stale.delete()
    entries = [
        entry for submission_id, team_id, evaluation_id, created_at in submissions
        if (summary := summaries.get(evaluation_id)) is not None
        for entry in _entries(event, score_types, summary, submission_id=submission_id,
                              team_id=team_id, submitted_at=created_at)
    ]
    LeaderboardEntry.objects.bulk_create(entries, batch_size=2000)
    teams = None if submission_ids is None else {s[1] for s in submissions}
    _competition_update(event, teams)
    _changed(event.id)
    return len(entries)


def _entries(event: Event, score_types: list[dict], summary: dict, **fields
             ) -> list[LeaderboardEntry]:
    scores = {st["name"]: {step: summary["scores"].get(st["name"], {}).get(step, {})
                           for step in STEPS}
              for st in score_types}
    official = score_types[0] if score_types else None

    def key(step: str, kind: str) -> float:
        if official is None:
            return MISSING
        return sort_key(scores[official["name"]][step].get(kind),
                        lower_is_better=official["is_lower_the_better"])

    return [
        LeaderboardEntry(
            event=event, kind=kind, valid_key=key("valid", kind), test_key=key("test", kind),
            scores=scores, train_time=summary["train_time"], valid_time=summary["valid_time"],
            test_time=summary["test_time"], cpu_time=summary["cpu_time"],
            peak_memory=summary["peak_memory"], **fields)
        for kind in KINDS
    ]


def _competition_update(event: Event, team_ids: set[int] | None) -> None:
    """Per team and kind, the row it puts forward: its selected submission,
    or its best public row when it selected none (a selection not scored puts
    nothing forward)."""
    entries = LeaderboardEntry.objects.filter(event=event)
    teams = event.teams.all()
    if team_ids is not None:
        entries = entries.filter(team_id__in=team_ids)
        teams = teams.filter(id__in=team_ids)
    selected = dict(teams.values_list("id", "selected_submission_id"))
    picks: dict[tuple[int, str], int] = {}
    for entry_id, team_id, kind, submission_id in entries.order_by(
            "valid_key", "submitted_at", "submission_id").values_list(
            "id", "team_id", "kind", "submission_id"):
        choice = selected.get(team_id)
        if (team_id, kind) not in picks and choice in (None, submission_id):
            picks[team_id, kind] = entry_id
    chosen = list(picks.values())
    entries.filter(in_competition=True).exclude(id__in=chosen).update(in_competition=False)
    entries.filter(id__in=chosen, in_competition=False).update(in_competition=True)


@transaction.atomic
def leaderboard_teams_update(*, event_id: int, team_ids: Iterable[int]) -> None:
    """Re-pick the competition rows of ``team_ids`` (after a selection)."""
    event = Event.objects.select_for_update().filter(id=event_id).first()
    if event is None:
        return
    if event.leaderboard_changed_at is None:
        leaderboard_update(event_id=event_id)
        return
    _competition_update(event, set(team_ids))
    _changed(event.id)


def leaderboard_evaluation_scored(*, evaluation_id: int) -> None:
    """datarun scored ``evaluation_id``: its submission's rows, if it is the
    current evaluation of one (not a reproduction or a re-score)."""
    submission = (Submission.objects.filter(evaluation_id=evaluation_id)
                  .values("id", "team__event_id").first())
    if submission is not None:
        leaderboard_update(event_id=submission["team__event_id"],
                           submission_ids=[submission["id"]])


def leaderboard_touch(*, event_id: int) -> None:
    """Something a board reads from elsewhere changed (contributivity, a
    team's name, the event's settings): its ETag must change too."""
    # A board never built stays so: its first read builds it whole.
    Event.objects.filter(id=event_id, leaderboard_changed_at__isnull=False).update(
        leaderboard_changed_at=timezone.now())


def leaderboard_ensure(event: Event) -> None:
    """Build the board of an event that has never had one (an event from before
    the read model): once, on its first read."""
    if event.leaderboard_changed_at is None:
        leaderboard_update(event_id=event.id)
        event.refresh_from_db(fields=["leaderboard_changed_at"])


def _changed(event_id: int) -> None:
    Event.objects.filter(id=event_id).update(leaderboard_changed_at=timezone.now())
