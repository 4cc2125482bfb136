"""What is waiting in the broker: lets the reaper tell a queued fold whose
message is gone from one that is only waiting its turn, without sending
a second message for every fold of a long queue.

Redis and the embedded broker (``filesystem://``) can be looked into; on
another broker the reaper waits longer before it sends a message again.
Only messages not yet delivered are seen: a message a worker holds is not
waiting, and its fold is re-sent if it is not claimed in time (claims are
idempotent, so a second message costs nothing but a no-op task).
"""
import base64
import json
import logging

from celery import current_app as celery_app

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps one list per priority step besides the plain one.
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _first_arg(raw: bytes | str) -> object | None:
    """The first positional argument of a Celery message (protocol 2), or None."""
    try:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return args[0] if args else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _task_name(raw: bytes | str) -> str | None:
    try:
        return json.loads(raw).get("headers", {}).get("task")
    except (ValueError, AttributeError):
        return None


def waiting_first_args(*, queue: str, task: str) -> set | None:
    """The first argument of every ``task`` message waiting in ``queue``;
    None when the broker cannot be looked into (the caller then assumes
    nothing was lost). Raises nothing when the broker is down: None."""
    try:
        with celery_app.connection_for_read() as connection:
            transport = connection.transport_cls
            if transport == "filesystem":
                # config.filesystem_broker's channel knows its folder's naming.
                raws = connection.default_channel.waiting(queue)
            elif transport not in ("redis", "rediss"):
                return None
            else:
                client = connection.default_channel.client
                raws = []
                for suffix in _REDIS_PRIORITY_SUFFIXES:
                    raws.extend(client.lrange(queue + suffix, 0, -1))
    except Exception as exc:  # noqa: BLE001 - any broker failure means "cannot tell"
        logger.warning("could not look into the broker's %s queue: %s", queue, exc)
        return None
    return {_first_arg(raw) for raw in raws if _task_name(raw) == task} - {None}

