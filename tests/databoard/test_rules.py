"""The submission rules as a pure function of times."""
from datetime import UTC, datetime, timedelta

from databoard.rules import SubmissionRules, check_submission

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def test_no_rules_allow_everything():
    assert check_submission(SubmissionRules(), now=NOW, counted=[NOW] * 100) is None


def test_closed_event_refuses_for_good():
    refusal = check_submission(SubmissionRules(closes_at=NOW - H), now=NOW, counted=[])
    assert refusal.rule == "closed"
    assert refusal.next_allowed_at is None
    assert "closed for submissions at 2026-03-01 11:00:00 UTC" in refusal.message


def test_closing_time_itself_is_closed():
    assert check_submission(SubmissionRules(closes_at=NOW), now=NOW, counted=[]).rule == "closed"


def test_not_yet_open_says_when():
    refusal = check_submission(SubmissionRules(opens_at=NOW + H), now=NOW, counted=[])
    assert (refusal.rule, refusal.next_allowed_at) == ("not_open", NOW + H)


def test_minimum_interval_counts_from_the_last_counted_submission():
    rules = SubmissionRules(min_interval=timedelta(minutes=15))
    refusal = check_submission(rules, now=NOW, counted=[NOW - 2 * H, NOW - timedelta(minutes=5)])
    assert refusal.rule == "min_interval"
    assert refusal.next_allowed_at == NOW + timedelta(minutes=10)
    assert "15 min" in refusal.message and "2026-03-01 12:10:00 UTC" in refusal.message
    assert check_submission(rules, now=NOW + timedelta(minutes=10),
                            counted=[NOW - timedelta(minutes=5)]) is None


def test_daily_quota_is_a_rolling_24_hours():
    rules = SubmissionRules(max_per_day=3)
    counted = [NOW - timedelta(hours=30), NOW - 20 * H, NOW - 5 * H, NOW - H]
    refusal = check_submission(rules, now=NOW, counted=counted)
    assert refusal.rule == "daily_quota"
    # The oldest of the three inside the window leaves it first.
    assert refusal.next_allowed_at == NOW - 20 * H + timedelta(hours=24)
    assert "3 submissions per team in any 24 hours" in refusal.message
    assert check_submission(rules, now=NOW, counted=counted[:3]) is None


def test_quota_of_one_and_a_burst_over_it():
    rules = SubmissionRules(max_per_day=1)
    counted = [NOW - 3 * H, NOW - 2 * H]  # e.g. made while an admin was exempt
    refusal = check_submission(rules, now=NOW, counted=counted)
    assert refusal.next_allowed_at == NOW - 2 * H + timedelta(hours=24)
    assert "1 submission per team" in refusal.message


def test_closing_beats_the_other_rules():
    rules = SubmissionRules(closes_at=NOW - H, min_interval=H, max_per_day=1)
    assert check_submission(rules, now=NOW, counted=[NOW]).rule == "closed"
