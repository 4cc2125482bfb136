"""A submission retried with the same ``Idempotency-Key`` (the first answer
was lost: a timeout, a dropped connection) is accepted once and answered
with the first answer; the key cannot be reused for another submission."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from databoard.models import Event, Submission
from tests.databoard.test_api import (
    STARTING_KIT,
    assert_error,
    client_for,
    make_event,
    signed_up,
)

pytestmark = pytest.mark.django_db


def post(client, name: str, key: str | None, content: bytes = STARTING_KIT):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post("/api/v1/events/iris-2025/submissions/",
                       {"name": name, "files": [SimpleUploadedFile("estimator.py", content)]},
                       format="multipart", **headers)


@pytest.fixture
def alice():
    event = make_event()
    return client_for(signed_up("alice", event))


def test_a_retry_with_the_same_key_returns_the_first_answer(alice):
    first = post(alice, "first", "key-1")
    assert first.status_code == 201
    retry = post(alice, "first", "key-1")
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert Submission.objects.count() == 1


def test_the_same_key_for_another_submission_is_refused(alice):
    assert post(alice, "first", "key-1").status_code == 201
    assert_error(post(alice, "second", "key-1"), 422, "idempotency_key_reused",
                 "already used for another request")
    assert_error(post(alice, "first", "key-1", content=STARTING_KIT + b"\n# v2\n"), 422,
                 "idempotency_key_reused")
    assert Submission.objects.count() == 1


def test_keys_are_per_user_and_a_refused_request_is_not_remembered(alice):
    bob = client_for(signed_up("bob", Event.objects.get()))
    assert post(alice, "first", "shared").status_code == 201
    assert post(bob, "first", "shared").status_code == 201
    # Refused (a name already taken), then retried under the same key once fixed.
    assert_error(post(alice, "first", "k2"), 400, "invalid_submission")
    assert post(alice, "second", "k2").status_code == 201
    assert Submission.objects.count() == 3


def test_a_malformed_key_is_refused(alice):
    assert_error(post(alice, "first", "x" * 201), 400, "idempotency_key_invalid")
    assert not Submission.objects.exists()
