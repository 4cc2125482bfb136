"""The e-mail about a scored submission leaves from the real worker: the
scorer's signal queues the task on the scoring queue, the worker sends it
(with the console backend the session's worker has: into its log)."""
import time

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()


def test_the_team_is_mailed_when_its_submission_is_scored(celery_worker_process, kit_copy):
    client = signed_up(kit_copy("iris"), "mailed")
    get_user_model().objects.filter(username="alice").update(email="alice@example.org")
    sub = submit(client, "mailed", "first-mail", {"estimator.py": STARTING_KIT})
    detail = wait_final(client, sub["id"])
    assert detail["state"] == "scored"
    acc = detail["scores"]["acc"]["valid"]["bagged"]
    deadline = time.monotonic() + 30
    log = ""
    while "Subject: [mailed] first-mail is scored" not in log:
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.2)
        log = celery_worker_process.log_path.read_text()
    mail = log[log.index("Subject: [mailed] first-mail is scored"):]
    assert "To: alice@example.org" in log
    assert f"acc (official): {acc:.3f}" in mail
