"""Driving the platform as a participant would: through the REST API."""
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from databoard.models import Event
from datarun import services

FINAL = {"scored", "error", "cancelled"}


def make_event(kit_dir: Path, name: str, **limits) -> Event:
    services.problem_import_ramp_kit(path=kit_dir, name=name, replace=True)
    return Event.objects.create(name=name, title=name, problem_name=name, **limits)


def participant(username: str = "alice") -> APIClient:
    user = get_user_model().objects.create_user(username, password="pw-" + username + "-1234")
    client = APIClient()
    client.force_authenticate(user)
    return client


def signed_up(kit_dir: Path, name: str, **limits) -> APIClient:
    """An event on the kit ``kit_dir`` and a participant signed up to it."""
    make_event(kit_dir, name, **limits)
    client = participant()
    client.post(f"/api/v1/events/{name}/signup/")
    return client


def submit(client: APIClient, event: str, name: str, files: dict[str, str | bytes]) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploads = [SimpleUploadedFile(fname, content.encode() if isinstance(content, str) else content)
               for fname, content in files.items()]
    response = client.post(f"/api/v1/events/{event}/submissions/",
                           {"name": name, "files": uploads}, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


def wait_final(client: APIClient, submission_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        detail = client.get(f"/api/v1/submissions/{submission_id}/").json()
        if detail["state"] in FINAL:
            return detail
        if time.monotonic() > deadline:
            raise AssertionError(f"submission still {detail['state']} after {timeout} s: "
                                 f"{detail}")
        time.sleep(0.1)
