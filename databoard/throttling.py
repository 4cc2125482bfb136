"""Login and password-reset throttling.

Failed logins are counted by django-axes, per account and per client address
(two separate counts; either one locks out), on the login page and the API's
token endpoint alike; a success resets them. Password-reset requests are
counted by django-ratelimit in the shared cache. Refusals are 429 with a
``Retry-After`` and a message that says when to try again.
"""
import math

from django.conf import settings
from django.shortcuts import render
from django_ratelimit.core import get_usage

from datarun.api.errors import error_json


def client_address(request) -> str | None:
    """The client's address: behind ``DATARUN_PROXY_COUNT`` reverse proxies,
    the address the outermost of them saw (the last ones of X-Forwarded-For
    are theirs; what comes before could be forged by the client)."""
    count = settings.DATARUN_PROXY_COUNT
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                 if a.strip()]
    if count and len(forwarded) >= count:
        return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


def _wait_text(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _refusal(request, message: str, seconds: int, template: str, context: dict):
    if request.path.startswith("/api/"):
        response = error_json("too_many_attempts", message, 429)
    else:
        response = render(request, template, {"message": message, **context}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def lockout_response(request, original_response=None, credentials=None):
    """axes' AXES_LOCKOUT_CALLABLE: what a locked-out login attempt gets.
    Every attempt during the lockout restarts the cool-off, so the wait is
    the whole of it."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    message = (f"Too many failed logins for this account or from your address: try again "
               f"in {_wait_text(seconds)}, or reset your password.")
    return _refusal(request, message, seconds, "databoard/accounts/locked_out.html", {})


def password_reset_wait(request, email: str) -> int | None:
    """Counts a password-reset request; the seconds to wait when this client
    address or this e-mail asked for too many reset mails lately, else None."""
    rate = settings.DATARUN_PASSWORD_RESET_RATE
    waits = []
    for group, key in (("password-reset-address", lambda _group, r: client_address(r) or ""),
                       ("password-reset-account", lambda _group, _r: email.strip().lower())):
        usage = get_usage(request, group=group, key=key, rate=rate, method="POST",
                          increment=True)
        if usage and usage["should_limit"]:
            waits.append(usage["time_left"])
    return max(1, *waits) if waits else None


def password_reset_refusal(request, seconds: int, form):
    message = (f"Too many password-reset requests for this e-mail or from your address: try "
               f"again in {_wait_text(seconds)}.")
    return _refusal(request, message, seconds, "databoard/accounts/password_reset_form.html",
                    {"form": form})
