"""The run page in a real browser: a fold's log lines appear while it is
still running, then the run ends with its timeline, metadata and artifacts."""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from databoard import services
from databoard.models import Profile
from tests.browser.test_journey import PASSWORD, iris_event
from tests.integration.test_runs import TALKATIVE

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_run_page_shows_log_lines_while_the_fold_runs(visit, celery_worker_process):
    from playwright.sync_api import expect

    event = iris_event()
    user = get_user_model().objects.create(
        username="browser-carol", password=PBKDF2PasswordHasher().encode(
            PASSWORD, PBKDF2PasswordHasher().salt()))
    Profile.objects.create(user=user)
    services.event_signup(event=event, user=user)
    submission = services.submission_create(
        event=event, user=user, name="talkative",
        files={"estimator.py": TALKATIVE.replace("SLEEP", "6").encode()})
    page = visit.page
    page.goto(f"/accounts/login/?next=/submissions/{submission.id}/runs/")
    page.get_by_label("Username").fill("browser-carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Run #{submission.evaluation_id} of submission talkative")

    log = page.locator("#run-log")
    # The first line arrives while its fold sleeps before the second.
    expect(log).to_contain_text("first line: fitting 96 rows", timeout=60_000)
    # Every fold sleeps 6 s between its two lines: none has printed its second.
    assert "second line" not in log.inner_text()
    expect(page.locator("#run-state")).to_have_text("running")
    expect(page.locator(".span-running").first).to_be_visible()
    visit.shot("run-page-live")

    expect(page.locator("#run-state")).to_have_text("scored", timeout=120_000)
    expect(log).to_contain_text("second line: done")
    expect(log).to_contain_text("a warning on stderr")
    expect(page.locator(".span-scored")).to_have_count(5)
    main = page.get_by_role("main")
    expect(main).to_contain_text("data hash")
    expect(main.get_by_role("link", name="submission/estimator.py")).to_be_visible()
    expect(main.get_by_role("link", name="fold_0/y_pred_test.npy")).to_be_visible()
    visit.shot("run-page")
    assert visit.problems() == []
