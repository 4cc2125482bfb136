"""An organiser in a real browser: uploads a RAMP kit zip, reads the import
report (the starting kit scored by the real worker), opens the event's
competition page, and creates a class's accounts from a CSV. Every changed
page is shot at 1280 px and at 390 px (a phone) with no horizontal overflow.
"""
import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from databoard.models import Profile
from tests.databoard.test_kit_upload import kit_zip

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-Long-browser-passw0rd"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def both_widths(visit, name: str) -> None:
    visit.page.set_viewport_size(DESKTOP)
    visit.shot(name)
    visit.page.set_viewport_size(PHONE)
    visit.shot(f"{name}-phone")
    visit.page.set_viewport_size(DESKTOP)


def log_in_as_superuser(page) -> None:
    from playwright.sync_api import expect

    user = get_user_model().objects.create(
        username="organiser-root", is_staff=True, is_superuser=True,
        password=PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt()))
    Profile.objects.create(user=user)
    page.goto("/accounts/login/?next=/organiser/")
    page.get_by_label("Username").fill("organiser-root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile("/organiser/$"))


def test_an_organiser_uploads_a_kit_and_opens_the_event(visit, celery_worker_process, tmp_path):
    from playwright.sync_api import expect

    page = visit.page
    log_in_as_superuser(page)
    page.get_by_role("link", name="Upload a RAMP kit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Upload a RAMP kit")
    both_widths(visit, "kit-upload")

    archive = tmp_path / "iris-kit.zip"
    archive.write_bytes(kit_zip())
    page.get_by_label("RAMP kit (zip)").set_input_files(str(archive))
    page.get_by_label("Event name").fill("iris-class")
    page.get_by_role("button", name="Import the kit").click()
    expect(page).to_have_url(re.compile("/events/iris-class/organise/$"))
    report = page.locator("#kit-report")
    expect(report).to_contain_text("120 training, 30 test")
    expect(report).to_contain_text("acc (official), error, nll")
    # The starting kit runs on the real worker; the report shows its scores.
    deadline = time.monotonic() + 120
    while "scored" not in report.inner_text():
        assert time.monotonic() < deadline, report.inner_text()
        time.sleep(1)
        page.reload()
    expect(report).to_contain_text(re.compile(r"validation acc 0\.\d{3}"))
    both_widths(visit, "organiser-event-kit-report")

    page.goto("/events/iris-class/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Iris species classification")
    expect(page.locator("#overview")).to_contain_text("Multiclass classification")
    page.get_by_role("link", name="Data", exact=True).click()
    expect(page).to_have_url(re.compile("#data$"))
    expect(page.locator("#target-classes")).to_contain_text("setosa")
    hashes = page.locator("#evaluation .hash-short code")
    expect(hashes.first).to_have_text(re.compile(r"^[0-9a-f]{12}…$"))
    # A hash stays on one line: its box is one line high.
    height = hashes.first.evaluate("e => e.getBoundingClientRect().height")
    line = hashes.first.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 24")
    assert height <= line * 1.5
    both_widths(visit, "event-page")
    assert visit.problems() == []


def test_an_organiser_creates_a_class_from_a_csv(visit, tmp_path):
    from playwright.sync_api import expect

    page = visit.page
    log_in_as_superuser(page)
    page.get_by_role("link", name="Accounts from a CSV").click()
    both_widths(visit, "accounts-import")
    roster = tmp_path / "class.csv"
    roster.write_text("username,email\nada,ada@example.org\nbad name,x@example.org\n")
    page.get_by_label("CSV file").set_input_files(str(roster))
    page.get_by_role("button", name="Create the accounts").click()
    expect(page.locator("#import-report")).to_contain_text("1 created, 1 skipped")
    expect(page.locator("#import-report")).to_contain_text("created invited")
    assert get_user_model().objects.filter(username="ada", email="ada@example.org").exists()
    both_widths(visit, "accounts-import-report")
    assert visit.problems() == []
