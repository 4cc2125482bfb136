"""The collaborative phase: reading, comparing and crediting other teams'
code. The web pages, the API (and through it the CLI and the Python client)
call these, so the same phase rules hold everywhere (see
:func:`databoard.permissions.can_read_code`). Importing, and the credit it
earns on the team's next submission, are in :mod:`.submissions`."""
import difflib

from databoard import permissions
from databoard.models import Submission
from datarun import selectors as datarun_selectors
from datarun.errors import NotFound

DIFF_CONTEXT = 3  # unchanged lines kept around each change


def submission_readable(*, submission_id: int, user) -> Submission:
    """A submission whose code ``user`` may read, else NotFound (whether or not
    it exists, so that code hidden before the public opening stays hidden)."""
    submission = Submission.objects.select_related("team__event").filter(
        id=submission_id).first()
    if submission is None or not permissions.can_read_code(submission, user):
        raise NotFound(f"no submission {submission_id} whose code you may read")
    return submission


def submission_texts(submission: Submission) -> dict[str, str]:
    """The submission's files as text, by name."""
    return {name: data.decode("utf-8", errors="replace") for name, data in
            datarun_selectors.evaluation_files(submission.evaluation_id).items()}


def unified_lines(old: list[str], new: list[str], old_name: str, new_name: str,
                  context: int = DIFF_CONTEXT) -> list[str]:
    """A unified diff from ``old`` to ``new`` (lines without line ends)."""
    return list(difflib.unified_diff(old, new, old_name, new_name, n=context, lineterm=""))


def code_diff(*, old: Submission, new: Submission) -> list[dict]:
    """File by file, what changed from ``old`` to ``new`` (two readable
    submissions): ``changed``, ``only_old``, ``only_new`` and a unified diff."""
    old_files, new_files = submission_texts(old), submission_texts(new)
    old_label, new_label = (f"{s.team.name}/{s.name}" for s in (old, new))
    out = []
    for name in sorted(set(old_files) | set(new_files)):
        a = old_files.get(name, "").splitlines()
        b = new_files.get(name, "").splitlines()
        out.append({
            "name": name, "changed": a != b, "only_old": name not in new_files,
            "only_new": name not in old_files,
            "diff": "\n".join(unified_lines(a, b, f"{old_label}/{name}",
                                            f"{new_label}/{name}")),
        })
    return out


def submission_credits(*, submission: Submission) -> dict[str, list[Submission]]:
    """The submissions this one took code from (``credits``) and those that
    took code from it (``reused_by``), oldest first."""
    return {
        "credits": [c.source for c in submission.credits.select_related("source__team__event")
                    .order_by("source__created_at")],
        "reused_by": [c.submission for c in
                      submission.credited_by.select_related("submission__team__event")
                      .order_by("submission__created_at")],
    }
