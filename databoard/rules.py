"""The submission rules of an event, as a pure function of times.

Both the web pages and the API submit through ``services.submission_create``,
which asks :func:`check_submission` first; a refusal names the rule and when
it next allows a submission.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class SubmissionRules:
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    min_interval: timedelta = timedelta(0)
    max_per_day: int | None = None


@dataclass(frozen=True)
class Refusal:
    rule: str  # "not_open", "closed", "min_interval" or "daily_quota"
    message: str
    next_allowed_at: datetime | None  # None: never again


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_text(delta: timedelta) -> str:
    seconds = int(round(delta.total_seconds()))
    parts = []
    for unit, size in (("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts)


def check_submission(rules: SubmissionRules, *, now: datetime,
                     counted: list[datetime]) -> Refusal | None:
    """Whether a team may submit at ``now``.

    ``counted`` holds the times of the team's earlier submissions that count
    (those failed by the platform or cancelled do not).
    """
    if rules.closes_at and now >= rules.closes_at:
        return Refusal("closed", f"the event closed for submissions at {_when(rules.closes_at)}",
                       None)
    if rules.opens_at and now < rules.opens_at:
        return Refusal("not_open", "the event opens for submissions at "
                       f"{_when(rules.opens_at)}", rules.opens_at)
    if rules.min_interval and counted:
        last = max(counted)
        next_at = last + rules.min_interval
        if now < next_at:
            return Refusal(
                "min_interval",
                f"the minimum time between two submissions of a team is "
                f"{duration_text(rules.min_interval)}: your team last submitted at {_when(last)}, "
                f"so its next submission is allowed from {_when(next_at)}",
                next_at)
    if rules.max_per_day is not None:
        window = sorted(t for t in counted if t > now - DAY)
        if len(window) >= rules.max_per_day:
            # The oldest submissions leave the 24-hour window first.
            next_at = window[len(window) - rules.max_per_day] + DAY
            return Refusal(
                "daily_quota",
                f"the daily quota is {rules.max_per_day} submission"
                f"{'s' if rules.max_per_day != 1 else ''} per team in any 24 hours and your "
                f"team has made {len(window)}: the next submission is allowed from "
                f"{_when(next_at)}",
                next_at)
    return None
