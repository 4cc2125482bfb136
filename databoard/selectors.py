"""Reads on the databoard side: submissions and leaderboards."""
from databoard.models import Event, Submission
from datarun import selectors as datarun_selectors


def submissions_of_user(*, user, event: Event | None = None):
    qs = Submission.objects.filter(event_team__team__members=user).select_related(
        "event_team__event", "event_team__team", "submitted_by"
    )
    if event is not None:
        qs = qs.filter(event_team__event=event)
    return qs


def submission_visible_to(*, submission: Submission, user) -> bool:
    return bool(
        submission.event_team.team.members.filter(id=user.id).exists()
        or submission.event_team.event.is_admin(user)
    )


def without_test_scores(evaluation: dict, *, event: Event, user) -> dict:
    """The evaluation as ``user`` may see it: test scores are for event admins."""
    if event.is_admin(user):
        return evaluation
    for by_step in evaluation.get("scores", {}).values():
        by_step.pop("test", None)
    for fold in evaluation.get("folds", []):
        for by_step in fold["scores"].values():
            by_step.pop("test", None)
    return evaluation


def _sort_key(value, lower_is_better: bool):
    # Missing scores rank last whatever the direction.
    if value is None:
        return (1, 0.0)
    return (0, value if lower_is_better else -value)


def leaderboard_rows(*, event: Event, user, kind: str = "bagged") -> dict:
    """Scored submissions ranked by the official validation score.

    Validation scores are public; test scores only reach event admins.
    ``kind`` is "bagged" (RAMP's default) or "mean" (mean over folds).
    """
    score_types = datarun_selectors.score_types_for(event.problem_name)
    show_test = event.is_admin(user)
    submissions = list(
        Submission.objects.filter(event_team__event=event).select_related("event_team__team")
    )
    summaries = datarun_selectors.evaluation_summaries([s.evaluation_id for s in submissions])
    rows = []
    for sub in submissions:
        summary = summaries.get(sub.evaluation_id)
        if summary is None or summary["state"] != "scored":
            continue
        scores = {}
        for st in score_types:
            by_step = summary["scores"].get(st["name"], {})
            steps = ("valid", "test") if show_test else ("valid",)
            scores[st["name"]] = {step: by_step.get(step, {}) for step in steps}
        rows.append({
            "submission_id": sub.id, "submission": sub.name, "team": sub.event_team.team.name,
            "submitted_at": sub.created_at, "scores": scores,
            "train_time": summary["train_time"], "valid_time": summary["valid_time"],
            "test_time": summary["test_time"] if show_test else None,
            "cpu_time": summary["cpu_time"], "peak_memory": summary["peak_memory"],
        })
    if score_types:
        official = score_types[0]
        rows.sort(key=lambda r: (
            _sort_key(r["scores"][official["name"]]["valid"].get(kind),
                      official["is_lower_the_better"]),
            r["submitted_at"],
        ))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {"event": event.name, "kind": kind, "score_types": score_types,
            "test_scores_shown": show_test, "rows": rows}
