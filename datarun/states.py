"""Evaluation and fold-run states, with the allowed transitions in one place."""
from django.db import models

from datarun.errors import InvalidTransition


class RunState(models.TextChoices):
    NEW = "new"
    QUEUED = "queued"
    RUNNING = "running"
    SCORED = "scored"
    ERROR = "error"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({RunState.SCORED, RunState.ERROR, RunState.CANCELLED})

ALLOWED_TRANSITIONS = {
    RunState.NEW: {RunState.QUEUED, RunState.CANCELLED, RunState.ERROR},
    # queued -> queued is a re-dispatch of a fold whose message may be lost.
    RunState.QUEUED: {RunState.QUEUED, RunState.RUNNING, RunState.ERROR, RunState.CANCELLED},
    # running -> queued is a re-run after the worker was lost.
    RunState.RUNNING: {RunState.QUEUED, RunState.SCORED, RunState.ERROR, RunState.CANCELLED},
    RunState.SCORED: set(),
    RunState.ERROR: set(),
    RunState.CANCELLED: set(),
}


class ErrorKind(models.TextChoices):
    NONE = "", "none"
    PARTICIPANT = "participant", "the submission failed"
    PLATFORM = "platform", "the platform failed"
    PROBLEM = "problem", "the problem's code failed"


# Errors never charged to the team's quota.
NOT_CHARGED = frozenset({ErrorKind.PLATFORM, ErrorKind.PROBLEM})


def check_transition(current: str, new: str, what: str) -> None:
    if new not in ALLOWED_TRANSITIONS[RunState(current)]:
        raise InvalidTransition(f"{what} cannot go from {current} to {new}")
