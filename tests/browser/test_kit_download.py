"""A participant downloads the starting kit from the event page in a real
browser, and `datarun test` runs on exactly that zip, unzipped: the starting
kit is scored on the kit's public test set."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.browser.test_journey import TITLE, iris_event
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_kit_downloaded_from_the_event_page_runs_with_datarun_test(visit, tmp_path):
    from playwright.sync_api import expect

    iris_event()
    page = visit.page
    page.goto("/events/iris/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    visit.shot("event-page")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the starting kit").click()
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    assert archive.name == "iris-starting-kit.zip"
    with zipfile.ZipFile(archive) as kit:
        kit.extractall(tmp_path)
    kit_dir = tmp_path / "iris"
    assert (kit_dir / "data" / "test.csv").read_bytes() != (
        EXAMPLES / "iris" / "data" / "test.csv").read_bytes()

    tested = subprocess.run(
        [str(Path(sys.executable).parent / "datarun"), "test", str(kit_dir), "--json"],
        capture_output=True, text=True, timeout=400)

    assert tested.returncode == 0, tested.stderr
    report = json.loads(tested.stdout)
    assert report["state"] == "scored" and len(report["folds"]) == 5
    assert report["public_split"]["source"] == "carved"
    assert report["scores"]["acc"]["test"]["bagged"] > 0.8
    assert visit.problems() == []
