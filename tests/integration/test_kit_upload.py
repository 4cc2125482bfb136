"""An uploaded kit's starting kit runs on a real Celery worker, and its
validation scores appear in the import report the organiser reads."""
import time

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.databoard.test_kit_upload import api_upload, kit_zip

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_starting_kit_of_an_uploaded_kit_is_scored_in_the_report(celery_worker_process):
    root = get_user_model().objects.create_superuser("root", password="pw-root-1234")
    client = APIClient()
    client.force_authenticate(root)
    response = api_upload(client, kit_zip(), name="iris-uploaded")
    assert response.status_code == 201, response.content
    deadline = time.monotonic() + 120
    while True:
        report = client.get("/api/v1/events/iris-uploaded/kit-report/").json()
        if report["starting_kit"]["state"] in ("scored", "error"):
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.2)
    assert report["starting_kit"]["state"] == "scored", report["starting_kit"]["error"]
    scores = {s["name"]: s["valid"] for s in report["starting_kit"]["scores"]}
    # Standardisation + logistic regression on iris: about 0.9 accuracy.
    assert 0.8 <= scores["acc"] <= 1.0
    assert scores["error"] == pytest.approx(1 - scores["acc"])
    client.force_login(root)
    page = client.get("/events/iris-uploaded/organise/")
    assert page.status_code == 200
    assert f"acc {scores['acc']:.3f}" in page.content.decode()
