"""``datarun upload-kit`` and ``datarun kit-report`` against the live server
and the real worker: a kit folder zipped by the client becomes an event whose
starting kit is scored."""
import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.cli.conftest import PASSWORD
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_superuser_uploads_a_kit_folder_and_follows_its_starting_kit(cli):
    hasher = PBKDF2PasswordHasher()
    get_user_model().objects.create(username="root", is_staff=True, is_superuser=True,
                                    password=hasher.encode(PASSWORD, hasher.salt()))
    cli.login("root")
    result = cli("upload-kit", str(EXAMPLES / "iris"), "--name", "iris-cli")
    assert result.returncode == 0, result.stderr
    assert "event iris-cli created (unlisted): Iris species classification" in result.stdout
    assert "rows: 120 training, 30 test; 5 folds" in result.stdout
    assert "scores: acc (official), error, nll" in result.stdout
    assert "description: the kit's README" in result.stdout
    deadline = time.monotonic() + 120
    while "starting kit: scored" not in (report := cli("kit-report", "iris-cli")).stdout:
        assert report.returncode == 0, report.stderr
        assert time.monotonic() < deadline, report.stdout
        time.sleep(1)
    assert re.search(r"starting kit: scored, validation acc 0\.\d{3}", report.stdout)


def test_a_participant_is_told_who_uploads_kits(cli, tmp_path):
    hasher = PBKDF2PasswordHasher()
    get_user_model().objects.create(username="alice",
                                    password=hasher.encode(PASSWORD, hasher.salt()))
    cli.login("alice")
    result = cli("upload-kit", str(EXAMPLES / "iris"), "--name", "iris-cli")
    assert result.returncode != 0
    assert "only a superuser uploads kits" in result.stderr
    missing = cli("upload-kit", str(tmp_path / "nowhere"), "--name", "x")
    assert missing.returncode != 0 and "is neither a kit folder nor a .zip file" in missing.stderr
