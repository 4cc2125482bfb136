"""Signals other apps listen to; sent after the transaction that caused them commits."""
from django.dispatch import Signal

# Sent with ``evaluation_id`` once an evaluation is scored.
evaluation_scored = Signal()
# Sent with ``evaluation_id`` once an evaluation has failed (its error kind and
# message are on it).
evaluation_failed = Signal()
