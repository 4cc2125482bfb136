"""Create requests that commit all or nothing, and that a client may send
again: with an ``Idempotency-Key`` header, a retry by the same user with the
same key and the same request gets the first answer back, not a second
creation (a timed-out upload, a client restarted mid-request)."""
import functools
import hashlib
import json

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from datarun.errors import ApplicationError
from datarun.models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200

PARAMETER = OpenApiParameter(
    HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="A key of your choice (e.g. a UUID), at most 200 characters: sending the "
                "same request again with the same key returns the first answer "
                "(header `Idempotent-Replayed: true`) instead of creating it twice.")


class IdempotencyKeyInvalid(ApplicationError):
    code = "idempotency_key_invalid"
    status_code = 400


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    status_code = 422


def _fingerprint(request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data = request.data
    if hasattr(data, "lists"):  # form data: fields, then files by content
        fields = sorted((k, v) for k, values in data.lists() for v in values
                        if isinstance(v, str))
        digest.update(json.dumps(fields).encode())
        for field, uploads in sorted(request.FILES.lists()):
            for upload in uploads:
                try:
                    content = hashlib.sha256(upload.read()).hexdigest()
                except ValueError:  # over the limit, not kept: the view refuses it
                    content = upload.size
                if hasattr(upload, "seek"):
                    upload.seek(0)
                digest.update(f"{field}:{upload.name}:{content}\n".encode())
    else:
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def idempotent_create(post):
    """Wrap an API view's ``post``: one transaction around the whole request
    (nothing is stored unless the answer is a success), and the
    ``Idempotency-Key`` header honoured for signed-in users."""

    @functools.wraps(post)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        with transaction.atomic():
            if key is None or not request.user.is_authenticated:
                return post(self, request, *args, **kwargs)
            if not (0 < len(key) <= MAX_KEY_LENGTH) or not key.isprintable():
                raise IdempotencyKeyInvalid(
                    f"the {HEADER} header is 1-{MAX_KEY_LENGTH} printable characters")
            fingerprint = _fingerprint(request)
            # A concurrent request with the same key waits here for the first
            # one's commit, then reads its answer.
            record, created = IdempotentRequest.objects.get_or_create(
                user=request.user, key=key, defaults={"fingerprint": fingerprint})
            if not created:
                if record.fingerprint != fingerprint:
                    raise IdempotencyKeyReused(
                        f"the {HEADER} {key!r} was already used for another request: "
                        "use a new key for a new request")
                replay = Response(record.response, status=record.status_code)
                replay["Idempotent-Replayed"] = "true"
                return replay
            response = post(self, request, *args, **kwargs)
            record.status_code = response.status_code
            # As rendered, so that the replay is the same bytes.
            record.response = json.loads(JSONRenderer().render(response.data))
            record.save(update_fields=["status_code", "response"])
            return response

    return wrapper
