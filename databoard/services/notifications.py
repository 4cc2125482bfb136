"""E-mail to a team's members when one of its submissions is scored or fails.

datarun says an evaluation finished (``evaluation_scored`` /
``evaluation_failed``, after commit); the mail leaves from a task on the
``scoring`` queue, so that a slow or absent mail server never holds up the
scorer. One message per member (no member sees another's address), only to
members with an address who did not opt out on their profile; validation
scores only (test scores stay private until the event closes).
"""
import logging

from celery import current_app as celery_app
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from databoard.models import Profile, Submission
from datarun import selectors as datarun_selectors
from datarun.states import ErrorKind, RunState

logger = logging.getLogger(__name__)

NOTIFY_TASK = "databoard.tasks.notify_submission_finished"


def notifications_schedule(*, evaluation_id: int) -> None:
    """Queue the e-mail about ``evaluation_id`` when it is a submission's current one."""
    if Submission.objects.filter(evaluation_id=evaluation_id).exists():
        transaction.on_commit(lambda: celery_app.send_task(
            NOTIFY_TASK, args=[evaluation_id], queue="scoring"))


def submission_notify(*, evaluation_id: int) -> int:
    """Mail the members of the team whose submission ``evaluation_id`` finished;
    return how many messages left."""
    submission = (Submission.objects.filter(evaluation_id=evaluation_id)
                  .select_related("team__event").first())
    if submission is None:
        return 0
    summary = datarun_selectors.evaluation_summaries([evaluation_id]).get(evaluation_id)
    if summary is None or summary["state"] not in (RunState.SCORED, RunState.ERROR):
        return 0
    opted_out = set(Profile.objects.filter(notify_submissions=False)
                    .values_list("user_id", flat=True))
    recipients = [m.user for m in submission.team.memberships.select_related("user")
                  if m.user.email and m.user.is_active and m.user_id not in opted_out]
    if not recipients:
        return 0
    subject, body = _message(submission, summary)
    messages = [EmailMessage(subject, body, to=[user.email]) for user in recipients]
    sent = get_connection().send_messages(messages) or 0
    logger.info("submission %s (%s): %s e-mail(s) sent", submission.id, summary["state"], sent)
    return sent


def _message(submission: Submission, summary: dict) -> tuple[str, str]:
    event = submission.team.event
    url = f"{settings.DATARUN_SITE_URL}/submissions/{submission.id}/"
    profile_url = f"{settings.DATARUN_SITE_URL}/accounts/profile/"
    if summary["state"] == RunState.SCORED:
        scores = datarun_selectors.score_types_for(event.problem_name)
        lines = []
        for st in scores:
            valid = (summary["scores"].get(st["name"]) or {}).get("valid") or {}
            value = valid.get(event.leaderboard_kind)
            if value is not None:
                official = " (official)" if st["official"] else ""
                lines.append(f"  {st['name']}{official}: {value:.{st['precision']}f}")
        subject = f"[{event.title}] {submission.name} is scored"
        what = ("was scored. Its validation scores "
                f"({event.get_leaderboard_kind_display()}):\n\n" + "\n".join(lines)
                + "\n\nTest scores are shown when the event closes.")
    else:
        subject = f"[{event.title}] {submission.name} failed"
        if summary.get("error_kind") == ErrorKind.PLATFORM:
            what = ("failed because of the platform, not your code; it is not counted "
                    f"against your team's quota:\n\n  {summary.get('error') or ''}")
        else:
            what = f"failed:\n\n  {summary.get('error') or 'an error in the submission'}"
            what += "\n\nThe traceback from your code is on the submission's page."
    body = (f"Your team {submission.team.name}'s submission {submission.name} to "
            f"{event.title} {what}\n\n{url}\n\n"
            f"You receive this because you are in the team. To stop these e-mails, untick "
            f"them on your profile: {profile_url}\n")
    return subject, body
