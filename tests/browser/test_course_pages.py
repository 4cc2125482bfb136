"""The pages a course adds, in a real browser, each shot at 1280 px and at
390 px (a phone) with no horizontal overflow: a team's rank over time (team
and my-submissions pages), the leaderboard's CSV export downloaded and
parsed, the sandbox of an external-data workflow (its data file a link, not an
editor), the profile's e-mail choice, and the organiser's event page with its
admins and an announcement, which the event page then shows.

Scores come from the scorer's own signal on committed rows (no worker runs:
the tests read pages, not folds).
"""
import csv
import io
import re
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone

from databoard.models import Event, Submission
from databoard.services.leaderboards import leaderboard_update
from datarun import services as datarun_services
from tests.browser.test_journey import EVENT, PASSWORD, iris_event
from tests.browser.test_organiser import both_widths, log_in_as_superuser
from tests.conftest import ROOT
from tests.databoard.test_api import signed_up, submit_scored

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def log_in(page, username: str) -> None:
    """As an existing user, given a password the live server's hasher reads
    (the tests' own hasher is a fast one the server does not have)."""
    from playwright.sync_api import expect

    get_user_model().objects.filter(username=username).update(
        password=PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt()))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation").get_by_role("link", name=username)).to_be_visible()


def test_a_participant_follows_the_team_rank_and_exports_the_leaderboard(visit, no_worker):
    from playwright.sync_api import expect

    event = iris_event()
    submit_scored(event, "alice", valid=0.80, name="a1")
    alice = get_user_model().objects.get(username="alice")
    submit_scored(event, "bob", valid=0.90, name="b1")
    submit_scored(event, "", valid=0.95, name="a2", user=alice)
    submit_scored(event, "carol", valid=0.99, name="c1")
    # Over the course's last days, as a real one would be (the picture's time axis).
    for day, name in enumerate(["a1", "b1", "a2", "c1"]):
        Submission.objects.filter(name=name).update(
            created_at=timezone.now() - timedelta(days=4 - day, hours=day))
    leaderboard_update(event_id=event.id)
    page = visit.page
    log_in(page, "alice")

    page.goto(f"/events/{EVENT}/team/")
    history = page.locator("#rank-over-time")
    expect(history).to_contain_text("Team alice is 2 of 3 teams with a score")
    expect(history.locator("svg.chart")).to_have_count(2)
    # One dot per change: first of one, second of two, first of two, second of three.
    expect(history.locator("svg.chart").first.locator("circle")).to_have_count(4)
    both_widths(visit, "team-rank-over-time")

    page.goto(f"/my/submissions/?event={EVENT}")
    expect(page.locator("#rank-over-time")).to_contain_text("is 2 of 3 teams")
    both_widths(visit, "my-submissions-rank-over-time")

    page.goto(f"/events/{EVENT}/leaderboard/")
    both_widths(visit, "leaderboard")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download as CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [(r["rank"], r["team"], r["submission"]) for r in rows] == [
        ("1", "carol", "c1"), ("2", "alice", "a2"), ("3", "bob", "b1"), ("4", "alice", "a1")]
    assert [float(r["acc_valid_bagged"]) for r in rows] == [0.99, 0.95, 0.90, 0.80]

    page.goto("/accounts/profile/")
    expect(page.get_by_label(re.compile("E-mail me when my team's submissions"))).to_be_checked()
    both_widths(visit, "profile")
    assert visit.problems() == []


def test_a_data_file_in_the_sandbox_is_a_link_with_its_size(visit, no_worker, tmp_path):
    from playwright.sync_api import expect

    kit_dir = tmp_path / "external_data"
    shutil.copytree(ROOT / "tests" / "conformance" / "kits" / "external_data", kit_dir)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit_dir, check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    datarun_services.problem_import_ramp_kit(path=kit_dir)
    event = Event.objects.create(name="external-data", title="Prices with external data",
                                 problem_name="external_data")
    signed_up("dora", event)
    page = visit.page
    log_in(page, "dora")

    response = page.goto("/events/external-data/sandbox/")
    assert len(response.body()) < 60_000, len(response.body())
    expect(page.get_by_role("heading", name="estimator.py")).to_be_visible()
    expect(page.locator(".CodeMirror")).to_have_count(1)  # the code only
    link = page.get_by_role("link", name="Download external_data.csv")
    expect(link).to_be_visible()
    expect(page.locator(".sandbox-download")).to_contain_text(
        re.compile(r"\d+\.\d\s[KM]B, more than the editor opens"))
    expect(page.locator("form.card").filter(has_text="Upload a file")).to_contain_text(
        "replaces (estimator.py, external_data.csv)")
    both_widths(visit, "sandbox-data-file")
    with page.expect_download() as download_info:
        link.click()
    size = (kit_dir / "submissions" / "starting_kit" / "external_data.csv").stat().st_size
    assert len(open(download_info.value.path(), "rb").read()) == size
    assert visit.problems() == []


def test_an_organiser_adds_an_admin_and_announces(visit, no_worker):
    from playwright.sync_api import expect

    iris_event()
    get_user_model().objects.create_user("teaching-assistant", password="pw-ta-12345678")
    page = visit.page
    log_in_as_superuser(page)

    page.goto(f"/events/{EVENT}/organise/")
    page.get_by_label("Add an admin").fill("teaching-assistant")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#event-admins")).to_contain_text("teaching-assistant")
    page.get_by_label("Subject").fill("Deadline moved")
    page.get_by_label("Text (Markdown)").fill("The event now closes on **Friday**.")
    page.get_by_role("button", name="Publish and e-mail the participants").click()
    expect(page.locator(".messages")).to_contain_text("Announcement published")
    both_widths(visit, "organiser-event-admins-announce")

    page.goto(f"/events/{EVENT}/")
    announcement = page.locator("#announcements")
    expect(announcement).to_contain_text("Deadline moved")
    expect(announcement.locator("strong")).to_have_text("Friday")
    both_widths(visit, "event-page-announcement")

    page.goto("/organiser/queue/")
    both_widths(visit, "organiser-queue")
    assert visit.problems() == []
