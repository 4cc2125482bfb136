"""Submissions: the rules at submit time, the web sandbox, organiser actions."""
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from databoard import permissions
from databoard.models import (
    Event,
    SandboxFile,
    SandboxImport,
    Submission,
    SubmissionCredit,
    Team,
)
from databoard.rules import check_submission
from databoard.services.events import audit, event_limits, event_rules
from databoard.services.leaderboards import leaderboard_teams_update, leaderboard_update
from databoard.services.teams import team_get
from datarun import run_selectors, submission_files
from datarun import selectors as datarun_selectors
from datarun import services as datarun_services
from datarun.errors import ApplicationError, InvalidSubmission, NotFound, PermissionDenied
from datarun.states import NOT_CHARGED

SUBMISSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SubmissionRefused(ApplicationError):
    """A rule of the event refuses the submission now (``extra`` says which and until when)."""

    status_code = 429
    code = "submission_refused"


def submission_get(*, submission_id: int, user) -> Submission:
    """A submission the user may see in detail (their team's, or as event admin)."""
    submission = (Submission.objects.seen_by(user).select_related("team__event", "submitted_by")
                  .filter(id=submission_id).first())
    if submission is not None and "viewer_is_admin" in submission.__dict__:
        submission.team.event.remember_admin(user, submission.viewer_is_admin)
    if submission is None or not permissions.can_view_submission(submission, user):
        raise NotFound(f"no submission {submission_id} of yours")
    return submission


def counted_submission_times(team: Team) -> list:
    """When the team submitted, leaving out what the platform or the problem's
    own code failed or an admin cancelled: those never count against the team."""
    submissions = list(team.submissions.values_list("evaluation_id", "created_at"))
    states = datarun_selectors.evaluation_states([e for e, _ in submissions])
    counted = []
    for evaluation_id, created_at in submissions:
        state = states.get(evaluation_id, {})
        if state.get("state") == "cancelled":
            continue
        if state.get("state") == "error" and state.get("error_kind") in NOT_CHARGED:
            continue
        counted.append(created_at)
    return counted


def _check_rules(event: Event, team: Team, user) -> None:
    if event.is_admin(user):
        return
    refusal = check_submission(event_rules(event), now=timezone.now(),
                               counted=counted_submission_times(team))
    if refusal is not None:
        status = 403 if refusal.rule in ("closed", "not_open") else 429
        error = SubmissionRefused(
            refusal.message,
            extra={"rule": refusal.rule,
                   "next_allowed_at": refusal.next_allowed_at.isoformat()
                   if refusal.next_allowed_at else None})
        error.status_code = status
        raise error


def submission_create(*, event: Event, user, name: str, files: dict[str, bytes]) -> Submission:
    """Check the event's rules, then hand the files to datarun for evaluation.

    The team's pending imports (other teams' code it imported) are credited
    on this submission, whichever way it arrives (web sandbox, API, CLI,
    Python client), and stop being pending."""
    if not SUBMISSION_NAME.match(name or ""):
        raise InvalidSubmission(
            "a submission name is 1-100 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    team = team_get(event=event, user=user)
    problem = datarun_services.problem_get(event.problem_name)
    # Before the rules and the lock: refused code is never counted.
    datarun_services.precheck_submission_files(problem, files)
    try:
        with transaction.atomic():
            # One submission at a time per team, so that two at once cannot
            # both pass the quota.
            team = Team.objects.select_for_update().get(id=team.id)
            _check_rules(event, team, user)
            if team.submissions.filter(name=name).exists():
                raise InvalidSubmission(f"your team already has a submission named {name!r}")
            evaluation = datarun_services.evaluation_create(
                problem=problem, files=files, limits=event_limits(event),
                started_by=user.username, pool=event.pool, owner=f"team:{team.id}",
            )
            submission = Submission.objects.create(
                team=team, name=name, submitted_by=user, evaluation_id=evaluation.id,
            )
            imports = list(team.sandbox_imports.all())
            SubmissionCredit.objects.bulk_create(
                SubmissionCredit(submission=submission, source_id=i.source_id) for i in imports)
            SandboxImport.objects.filter(id__in=[i.id for i in imports]).delete()
            return submission
    except IntegrityError as exc:
        raise InvalidSubmission(f"your team already has a submission named {name!r}") from exc


# --- the web sandbox --------------------------------------------------------

def _expected_files(event: Event) -> list[str]:
    problem = datarun_services.problem_get(event.problem_name)
    return submission_files.expected_file_names(problem.workflow_elements)


def sandbox_contents(*, event: Event, user) -> dict[str, bytes]:
    """The team's sandbox, file by file, as a submission from it gets it;
    files never saved are the starting kit's (binary ones too)."""
    team = team_get(event=event, user=user)
    saved = dict(team.sandbox_files.values_list("file_name", "content"))
    kit = datarun_selectors.starting_kit_files(event.problem_name)
    return {name: saved[name].encode() if name in saved
            else kit.get(f"{event.problem_name}/submissions/starting_kit/{name}", b"")
            for name in _expected_files(event)}


def sandbox_files(*, event: Event, user) -> dict[str, str]:
    """The team's sandbox as text (what the editors and the diff show)."""
    return {name: data.decode("utf-8", errors="replace")
            for name, data in sandbox_contents(event=event, user=user).items()}


@transaction.atomic
def sandbox_file_save(*, event: Event, user, file_name: str, content: str | bytes) -> None:
    team = team_get(event=event, user=user)
    if file_name not in _expected_files(event):
        raise InvalidSubmission(f"{file_name!r} is not a file of this problem's submissions "
                                f"({', '.join(_expected_files(event))})")
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSubmission(f"{file_name} is not UTF-8 text") from exc
    submission_files.check_file_size(file_name, len(content.encode()))
    SandboxFile.objects.update_or_create(
        team=team, file_name=file_name, defaults={"content": content, "updated_by": user})


@transaction.atomic
def sandbox_import(*, event: Event, user, source_id: int) -> dict[str, str]:
    """Copy a readable submission's files into the team's sandbox and return
    them; when it is another team's, the team's next submission (from the
    sandbox or not) credits it."""
    team = team_get(event=event, user=user)
    source = Submission.objects.select_related("team__event").filter(
        id=source_id, team__event=event).first()
    if source is None or not permissions.can_read_code(source, user):
        raise NotFound(f"no submission {source_id} whose code you may read")
    files = {name: data.decode("utf-8", errors="replace") for name, data in
             datarun_selectors.evaluation_files(source.evaluation_id).items()}
    for name, text in files.items():
        SandboxFile.objects.update_or_create(
            team=team, file_name=name, defaults={"content": text, "updated_by": user})
    if source.team_id != team.id:
        SandboxImport.objects.get_or_create(team=team, source=source)
    audit(event=event, user=user, action="sandbox_import", source=source.id)
    return files


def submission_create_from_sandbox(*, event: Event, user, name: str) -> Submission:
    return submission_create(event=event, user=user, name=name,
                             files=sandbox_contents(event=event, user=user))


# --- team and organiser actions ---------------------------------------------

@transaction.atomic
def submission_select(*, submission_id: int, user) -> Submission:
    """Put a submission forward for the competition leaderboard."""
    submission = Submission.objects.select_related("team__event").filter(
        id=submission_id).first()
    if submission is None or not permissions.is_team_member(submission, user):
        raise NotFound(f"no submission {submission_id} of your team")
    event = submission.team.event
    if not event.is_competitive:
        raise ApplicationError(f"{event.name} has no competition leaderboard")
    if permissions.is_closed(event) and not event.is_admin(user):
        raise ApplicationError(f"{event.name} has closed: the selection is final")
    Team.objects.filter(id=submission.team_id).update(selected_submission=submission)
    leaderboard_teams_update(event_id=event.id, team_ids=[submission.team_id])
    audit(event=event, user=user, action="submission_select", submission=submission.id)
    return submission


def _admin_submission(submission_id: int, user, action: str = "re-runs or cancels"
                      ) -> Submission:
    # Only the submission's row: locking the joined team and event rows too
    # (a plain FOR UPDATE over a join) deadlocks against a worker that holds
    # submission rows and waits for the event's (contributivity, leaderboard).
    submission = (Submission.objects.select_for_update(of=("self",))
                  .select_related("team__event").filter(id=submission_id).first())
    if submission is None or not permissions.can_view_submission(submission, user):
        raise NotFound(f"no submission {submission_id}")
    if not submission.team.event.is_admin(user):
        raise PermissionDenied(
            f"only an admin of {submission.team.event.name} {action} submissions")
    return submission


@transaction.atomic
def submission_rerun(*, submission_id: int, user) -> Submission:
    """Evaluate the same files again; the earlier evaluation stays readable."""
    submission = _admin_submission(submission_id, user)
    evaluation = datarun_services.evaluation_rerun(evaluation_id=submission.evaluation_id,
                                                   started_by=user.username)
    submission.previous_evaluation_ids = [*submission.previous_evaluation_ids,
                                          submission.evaluation_id]
    submission.evaluation_id = evaluation.id
    submission.contributivity = None
    submission.save(update_fields=["previous_evaluation_ids", "evaluation_id",
                                   "contributivity"])
    leaderboard_update(event_id=submission.team.event_id, submission_ids=[submission.id])
    audit(event=submission.team.event, user=user, action="submission_rerun",
          submission=submission.id, evaluation=evaluation.id)
    return submission


def submissions_rerun_failed(*, event: Event, user) -> list[Submission]:
    if not event.is_admin(user):
        raise PermissionDenied(f"only an admin of {event.name} re-runs submissions")
    submissions = list(Submission.objects.of_event(event))
    states = datarun_selectors.evaluation_states([s.evaluation_id for s in submissions])
    failed = [s for s in submissions if states.get(s.evaluation_id, {}).get("state") == "error"]
    return [submission_rerun(submission_id=s.id, user=user) for s in failed]


def submission_runs(*, submission: Submission) -> list[dict]:
    """Every run of a submission, newest first: its first evaluation, the
    re-runs and the reproductions; ``current`` is the one on the leaderboard."""
    own = [*submission.previous_evaluation_ids, submission.evaluation_id]
    runs = run_selectors.runs_of(own)
    first = min(own)
    for run in runs:
        run["current"] = run["id"] == submission.evaluation_id
        run["kind"] = ("reproduction" if run["reproduces"] else
                       "run" if run["id"] == first else "rerun")
    return runs


def submission_run_id(*, submission: Submission, run_id: int | None) -> int:
    """``run_id`` if it is a run of the submission (None: its current run)."""
    if run_id is None:
        return submission.evaluation_id
    if run_id not in {r["id"] for r in submission_runs(submission=submission)}:
        raise NotFound(f"submission {submission.id} has no run {run_id}")
    return run_id


@transaction.atomic
def submission_reproduce(*, submission_id: int, user, run_id: int | None = None) -> int:
    """Run a scored run of the submission again on its recorded inputs (event
    admins); the leaderboard keeps the run it had. Returns the new run's id."""
    submission = _admin_submission(submission_id, user, action="reproduces")
    run_id = submission_run_id(submission=submission, run_id=run_id)
    evaluation = datarun_services.evaluation_reproduce(evaluation_id=run_id,
                                                       started_by=user.username)
    audit(event=submission.team.event, user=user, action="submission_reproduce",
          submission=submission.id, evaluation=run_id, reproduction=evaluation.id)
    return evaluation.id


@transaction.atomic
def submission_cancel(*, submission_id: int, user) -> Submission:
    submission = _admin_submission(submission_id, user)
    datarun_services.evaluation_cancel(evaluation_id=submission.evaluation_id)
    leaderboard_update(event_id=submission.team.event_id, submission_ids=[submission.id])
    audit(event=submission.team.event, user=user, action="submission_cancel",
          submission=submission.id)
    return submission


@transaction.atomic
def submissions_rescore(*, event: Event, user, submission_ids: list[int],
                        problem_name: str) -> dict[int, int]:
    """Re-score chosen submissions of the event on another problem (e.g. the
    event's problem rebuilt on a newer dataset version), to see each score's
    drift. The submissions, their evaluations and the leaderboard stay as
    they were. Returns {submission id: re-score evaluation id}."""
    if not event.is_admin(user):
        raise PermissionDenied(f"only an admin of {event.name} re-scores submissions")
    ids = list(dict.fromkeys(submission_ids))
    submissions = {s.id: s for s in Submission.objects.of_event(event).filter(id__in=ids)}
    if missing := [i for i in ids if i not in submissions]:
        raise NotFound(f"no submission {', '.join(map(str, missing))} in {event.name}")
    rescored = {
        i: datarun_services.evaluation_rescore(
            evaluation_id=submissions[i].evaluation_id, problem=problem_name).id
        for i in ids
    }
    audit(event=event, user=user, action="submissions_rescore", problem=problem_name,
          rescores={str(i): e for i, e in rescored.items()})
    return rescored
