"""Each way a submission can fail ends in an error a participant can act on,
and the platform keeps working afterwards."""
import time

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from databoard.models import Event
from tests.conftest import EXAMPLES
from tests.integration.helpers import signed_up, submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLASSIFIER = """
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Bad(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        {fit_body}
        return self

    def predict_proba(self, X):
        {predict_body}


def get_estimator():
    return Bad()
"""


def estimator(fit_body: str = "pass", predict_body: str = "return np.full((len(X), 3), 1 / 3)"):
    return CLASSIFIER.format(fit_body=fit_body, predict_body=predict_body)


# A syntax error never reaches a fold: it is refused before queueing
# (tests/cli/test_participant_start.py, tests/databoard/test_views_events.py);
# the harness still reports one (tests/workers/test_harness.py).
CASES = {
    "exception_in_fit": (
        estimator(fit_body="raise RuntimeError('the data has no column spam')"),
        ["RuntimeError while training in fold", "the data has no column spam"],
    ),
    # NUL characters in what the code raised and printed are kept, replaced.
    "nul_in_error": (
        estimator(fit_body="print('out\\x00put'); raise ValueError('bad\\x00value')"),
        ["ValueError while training in fold", "bad\ufffdvalue"],
    ),
    "wrong_shape": (
        estimator(predict_body="return np.full((len(X), 2), 0.5)"),
        ["have shape (120, 2), expected (120, 3) in fold"],
    ),
    "nan_predictions": (
        estimator(predict_body="return np.full((len(X), 3), np.nan)"),
        ["contain 360 NaN or infinite values in fold"],
    ),
    "timeout": (
        estimator(fit_body="import time; time.sleep(60)"),
        ["exceeded the time limit of 3 s in fold"],
    ),
    "memory_overrun": (
        estimator(fit_body="self.junk = np.ones((3 * 2**30) // 8)"),
        ["exceeded the memory limit of 400 MiB in fold"],
    ),
}


@pytest.fixture
def iris_event(celery_worker_process):
    return signed_up(EXAMPLES / "iris", "iris", fold_time_limit_s=3, fold_memory_limit_mb=400)


@pytest.mark.parametrize("case", list(CASES))
def test_failure_is_reported_to_the_participant(iris_event, case):
    code, expected = CASES[case]
    detail = wait_final(iris_event, submit(iris_event, "iris", case, {"estimator.py": code})["id"])
    assert detail["state"] == "error"
    assert detail["error_kind"] == "participant"
    for text in expected:
        assert text in detail["error"], detail["error"]
    failed = [f for f in detail["folds"] if f["state"] == "error"]
    assert failed and all(f["error"] for f in failed)
    if case == "exception_in_fit":
        # The traceback shows the participant's own frame, not the platform's.
        assert 'File "estimator.py", line 9, in fit' in detail["error_traceback"]
        assert "workers/harness" not in detail["error_traceback"]
    if case == "memory_overrun":
        assert all(f["peak_memory"] > 400 * 2**20 for f in failed)

    # The platform keeps working: the starting kit still scores.
    good = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()
    after = wait_final(iris_event, submit(iris_event, "iris", f"after_{case}",
                                          {"estimator.py": good})["id"])
    assert after["state"] == "scored", after["error"]


# A kit's own bug: its workflow selects a column its data does not have. No
# frame of any submission is involved, so no submission can be blamed for it.
BROKEN_WORKFLOW = '''
class _Workflow(rw.workflows.Estimator):
    def train_submission(self, module_path, X, y, train_idx=None):
        X = X[["sepal_length", "petal_colour"]]
        return super().train_submission(module_path, X, y, train_idx)


workflow = _Workflow()
'''


def test_an_error_in_the_problems_code_is_not_charged_to_the_participant(
        celery_worker_process, kit_copy):
    kit_dir = kit_copy("iris")
    problem = (kit_dir / "problem.py").read_text()
    (kit_dir / "problem.py").write_text(
        problem.replace("workflow = rw.workflows.Estimator()\n", BROKEN_WORKFLOW))
    client = signed_up(kit_dir, "iris_broken", max_submissions_per_day=1)
    good = (kit_dir / "submissions" / "starting_kit" / "estimator.py").read_text()

    created = submit(client, "iris_broken", "first", {"estimator.py": good})
    detail = wait_final(client, created["id"])

    assert (detail["state"], detail["error_kind"]) == ("error", "problem")
    assert detail["error"].startswith("the problem's own code raised KeyError while training "
                                      "in fold ")
    assert "not counted against your team's quota" in detail["error"]
    # The participant reads no traceback of the organiser's files...
    assert detail["error_traceback"] == ""
    assert all(f["error_traceback"] == "" for f in detail["folds"])
    # ... the event admin reads all of it.
    admin = get_user_model().objects.create_user("organiser", password="pw-organiser-1234")
    Event.objects.get(name="iris_broken").admins.add(admin)
    admin_client = APIClient()
    admin_client.force_authenticate(admin)
    seen = admin_client.get(f"/api/v1/submissions/{created['id']}/").json()
    assert 'problem.py", line ' in seen["error_traceback"]
    assert "in train_submission" in seen["error_traceback"]
    assert "petal_colour" in seen["error_traceback"]
    # The daily quota of one is still free: the failure was not the team's.
    again = submit(client, "iris_broken", "second", {"estimator.py": good})
    assert again["state"] in ("new", "queued", "running", "error")


# Fold runs of one submission have consecutive ids, and a fold's work dir is
# named after its fold run (fold-<id>-...): the two folds the worker's two
# processes take first are one even, one odd.
ONE_FAILS_THE_OTHERS_SLEEP = estimator(fit_body="""import os, time
        fold_run = int(os.path.basename(os.getcwd()).split("-")[1])
        if fold_run % 2 == 0:
            raise ValueError("this fold fails at once")
        time.sleep(60)""")


def test_a_failed_fold_stops_the_submissions_other_folds(celery_worker_process):
    client = signed_up(EXAMPLES / "iris", "iris", fold_time_limit_s=90)
    started = time.monotonic()
    submission = submit(client, "iris", "one_fails", {"estimator.py": ONE_FAILS_THE_OTHERS_SLEEP})
    detail = wait_final(client, submission["id"])
    assert detail["state"] == "error"
    assert "ValueError while training in fold" in detail["error"], detail["error"]
    # The folds still sleeping are stopped within seconds, not after their 60 s.
    while any(f["state"] in ("queued", "running") for f in detail["folds"]):
        assert time.monotonic() - started < 30, detail["folds"]
        time.sleep(0.2)
        detail = client.get(f"/api/v1/submissions/{submission['id']}/").json()
    assert {f["state"] for f in detail["folds"]} <= {"error", "cancelled"}
    assert "cancelled" in {f["state"] for f in detail["folds"]}
    # Their places on the worker are free: the next submission scores now.
    good = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()
    after = wait_final(client, submit(client, "iris", "after", {"estimator.py": good})["id"])
    assert after["state"] == "scored", after["error"]
    assert time.monotonic() - started < 45
