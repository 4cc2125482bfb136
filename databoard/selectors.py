"""Reads on the databoard side: submissions, starting kits, test scores hidden.

Leaderboards are read in ``databoard.leaderboard_selectors``."""
import io
import json
import zipfile

from databoard import permissions
from databoard.models import Event, Submission
from databoard.services.events import event_fold_limits
from databoard.services.kits import KIT_IMPORT_ACTION
from datarun import selectors as datarun_selectors
from datarun.ramp_kits import KIT_LIMITS_FILE
from datarun.states import ErrorKind


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


def evaluation_as_seen_by(evaluation: dict, *, event: Event, user) -> dict:
    """The evaluation as ``user`` may see it: without test scores until the
    event closes and, unless they administer the event, without the
    tracebacks of errors in the problem's own code (they show its files)."""
    if not event.is_admin(user):
        for row in [evaluation, *evaluation.get("folds", [])]:
            if row.get("error_kind") == ErrorKind.PROBLEM and "error_traceback" in row:
                row["error_traceback"] = ""
    return without_test_scores(evaluation, event=event, user=user)


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


def kit_import_report(event: Event) -> dict | None:
    """What the kit upload that opened ``event`` made (None when it was not
    opened from an uploaded kit): the problem's rows, folds, score types and
    submission files, and the starting kit's run with its validation scores."""
    entry = event.audit_entries.filter(action=KIT_IMPORT_ACTION).first()
    if entry is None:
        return None
    problem = datarun_selectors.problem_summary(event.problem_name)
    evaluation_id = entry.data.get("starting_kit_evaluation")
    starting_kit = None
    if evaluation_id:
        summary = datarun_selectors.evaluation_summaries([evaluation_id]).get(evaluation_id, {})
        scores = summary.get("scores") or {}
        starting_kit = {
            "evaluation_id": evaluation_id,
            "state": summary.get("state"),
            "error": summary.get("error") or "",
            # Validation scores only: the test scores stay private to the event.
            "scores": [{"name": st["name"],
                        "valid": ((scores.get(st["name"]) or {}).get("valid") or {}).get("mean"),
                        "precision": st.get("precision", 3)}
                       for st in (problem or {}).get("score_types", [])],
        }
    return {
        "archive": entry.data.get("archive", ""),
        "imported_at": entry.created_at,
        "problem": problem,
        "description_from_readme": bool(event.description),
        "starting_kit": starting_kit,
        "starting_kit_note": entry.data.get("starting_kit_note", ""),
    }
