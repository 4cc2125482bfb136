"""Pages with wide tables (the reproduction's hashes, the per-fold table) fit
the window at 1280 px and on a phone (390 px): the tables scroll or wrap
inside their card, the page never scrolls sideways. Screenshots go to
artifacts/screenshots/."""
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from databoard import services
from databoard.models import Profile
from datarun.models import Evaluation
from tests.browser.test_journey import PASSWORD, iris_event
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait_scored(evaluation_id: int, within_s: float = 300) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        state = Evaluation.objects.get(id=evaluation_id).state
        if state in ("scored", "error", "cancelled"):
            assert state == "scored", Evaluation.objects.get(id=evaluation_id).error_message
            return
        time.sleep(1)
    raise AssertionError(f"evaluation {evaluation_id} not scored within {within_s} s")


def test_the_run_and_submission_pages_fit_a_laptop_and_a_phone(visit, celery_worker_process):
    from playwright.sync_api import expect

    event = iris_event()
    user = get_user_model().objects.create(
        username="browser-dora", password=PBKDF2PasswordHasher().encode(
            PASSWORD, PBKDF2PasswordHasher().salt()))
    Profile.objects.create(user=user)
    services.event_signup(event=event, user=user)
    event.admins.add(user)
    code = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()
    submission = services.submission_create(event=event, user=user, name="wide",
                                            files={"estimator.py": code})
    _wait_scored(submission.evaluation_id)
    reproduction = services.submission_reproduce(submission_id=submission.id, user=user)
    _wait_scored(reproduction)

    page = visit.page
    page.goto(f"/accounts/login/?next=/submissions/{submission.id}/runs/{reproduction}/")
    page.get_by_label("Username").fill("browser-dora")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page.locator("#reproduction-state")).to_contain_text("Identical")
    visit.shot("run-page-reproduction")
    page.goto(f"/submissions/{submission.id}/")
    expect(page.locator("#isolation")).to_contain_text("Every fold ran with")
    assert page.locator("table.folds th", has_text="Isolation").count() == 0
    visit.shot("submission-page")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/submissions/{submission.id}/runs/{reproduction}/")
    expect(page.locator("#reproduction-state")).to_contain_text("Identical")
    visit.shot("run-page-reproduction-phone")
    page.goto(f"/submissions/{submission.id}/")
    visit.shot("submission-page-phone")
    assert visit.problems() == []
