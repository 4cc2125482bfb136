"""Each way a submission can fail ends in an error a participant can act on,
and the platform keeps working afterwards."""
import pytest

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
