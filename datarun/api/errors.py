"""One JSON error shape for the whole API: ``{"error": {"code", "message", "details"}}``."""
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from datarun.errors import ApplicationError

logger = logging.getLogger(__name__)

# Seconds a client is told to wait when the database cannot be reached.
DATABASE_RETRY_AFTER_S = 2


def _body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            text = _first_message(value)
            return text if key == "non_field_errors" else f"{key}: {text}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        response = Response(_body(exc.code, exc.message, exc.extra), status=exc.status_code)
        retry_at = exc.extra.get("next_allowed_at")
        if retry_at:
            # Seconds until a refused submission would be accepted.
            from datetime import datetime

            from django.utils import timezone

            wait = datetime.fromisoformat(retry_at) - timezone.now()
            response["Retry-After"] = str(max(1, int(wait.total_seconds()) + 1))
        return response
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is restarting or unreachable: a platform failure that
        # goes away, answered so that clients retry (runners do; create
        # requests commit all or nothing, and an Idempotency-Key makes their
        # retry safe).
        logger.error("database unavailable: %s", exc)
        response = Response(_body("unavailable", "the platform's database is unavailable for "
                                  "a moment: send the same request again shortly"),
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a platform error: Django logs it and answers 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = _body("invalid", _first_message(exc.detail), exc.detail)
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = _body(code, _first_message(exc.detail))
    return response


def error_json(code: str, message: str, status_code: int) -> JsonResponse:
    """The error shape outside DRF's views (URL resolution, middleware)."""
    return JsonResponse(_body(code, message), status=status_code)


@csrf_exempt  # a POST to an unknown URL is a 404, not a CSRF failure page
def not_found_json(request, exception=None):
    return error_json("not_found", "no such URL", status.HTTP_404_NOT_FOUND)
