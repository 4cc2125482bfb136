"""evaluations_contributivity on evaluations whose fold predictions are in storage.

The evaluations are written as the scorer leaves them (state scored, each
fold's ``y_pred_train.npy`` in storage); no worker is needed. The expected
values come from ramp-workflow's own ``blend_on_fold``.
"""
import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rampwf.utils.combine import blend_on_fold

from datarun import ramp_kits, storage
from datarun.errors import ApplicationError
from datarun.models import Evaluation
from datarun.services import evaluations_contributivity, problem_import_ramp_kit
from datarun.states import RunState
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db
CORPUS = Path(__file__).resolve().parents[1] / "conformance" / "kits"


@pytest.fixture
def iris():
    problem = problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-contrib")
    trusted = ramp_kits.load_trusted(str(storage.resolve(problem.storage_dir)),
                                     problem.data_hash)
    return problem, trusted


def evaluation(problem, fold_predictions, state=RunState.SCORED) -> Evaluation:
    """An evaluation with these predictions on all training rows, one array per fold."""
    created = Evaluation.objects.create(problem=problem, files={}, code_hash="0" * 64,
                                        limits={}, sandbox_backend="local", state=state)
    for k, y_pred_train in enumerate(fold_predictions):
        storage.artifact_put(
            storage.artifact_key(created.id, storage.predictions_name(k, "train")),
            storage.predictions_bytes(y_pred_train))
    return created


def noisy_predictions(trusted, rng, skill: float):
    """Per fold, probabilities on all training rows, better with more skill."""
    truth = trusted.problem.Predictions(y_true=trusted.y_train).y_pred
    out = []
    for _ in trusted.folds:
        logits = skill * truth + rng.normal(size=truth.shape)
        out.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    return out


def ramp_contributivity(trusted, predictions_per_evaluation) -> list[float]:
    """What ramp-blend computes: shares of each fold's blend, averaged over folds."""
    P = trusted.problem.Predictions
    score_type = trusted.problem.score_types[0]
    totals = np.zeros(len(predictions_per_evaluation))
    for k, (_, valid_is) in enumerate(trusted.folds):
        predictions = [P(y_pred=preds[k], fold_is=valid_is)
                       for preds in predictions_per_evaluation]
        with contextlib.redirect_stdout(io.StringIO()):
            selected = blend_on_fold(predictions, P(y_true=trusted.y_train, fold_is=valid_is),
                                     score_type)
        for i in selected:
            totals[i] += 1 / len(selected) / len(trusted.folds)
    return totals.tolist()


def test_scored_evaluations_share_the_credit_as_ramp_blend_does(iris):
    problem, trusted = iris
    rng = np.random.default_rng(0)
    predictions = [noisy_predictions(trusted, rng, skill) for skill in (0.5, 1.0, 1.5, 1.0, 2.0)]
    evaluations = [evaluation(problem, p) for p in predictions]

    result = evaluations_contributivity(evaluation_ids=[e.id for e in evaluations])

    assert list(result) == [e.id for e in evaluations]
    assert list(result.values()) == pytest.approx(ramp_contributivity(trusted, predictions),
                                                  abs=1e-12)
    assert sum(result.values()) == pytest.approx(1.0)
    assert sum(v > 0 for v in result.values()) >= 2  # a real blend, not one winner


def test_a_perfect_evaluation_gets_all_the_credit_and_unscored_ones_take_no_part(iris):
    problem, trusted = iris
    rng = np.random.default_rng(1)
    truth = trusted.problem.Predictions(y_true=trusted.y_train).y_pred
    noisy = evaluation(problem, noisy_predictions(trusted, rng, 1.0))
    perfect = evaluation(problem, [truth] * len(trusted.folds))
    running = evaluation(problem, [truth] * len(trusted.folds), state=RunState.RUNNING)

    result = evaluations_contributivity(evaluation_ids=[noisy.id, perfect.id, running.id])

    assert result == {noisy.id: 0.0, perfect.id: 1.0}


def test_no_scored_evaluation_gives_an_empty_result(iris):
    problem, trusted = iris
    running = evaluation(problem, [], state=RunState.RUNNING)
    assert evaluations_contributivity(evaluation_ids=[running.id, 10**9]) == {}


def test_evaluations_of_two_problems_are_refused(iris):
    problem, trusted = iris
    other = problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-contrib-2")
    truth = trusted.problem.Predictions(y_true=trusted.y_train).y_pred
    ids = [evaluation(p, [truth] * len(trusted.folds)).id for p in (problem, other)]
    with pytest.raises(ApplicationError, match="one problem"):
        evaluations_contributivity(evaluation_ids=ids)


def test_reading_many_predictions_gives_what_numpy_reads(settings, tmp_path):
    # The fast path parses each distinct .npy header once: arrays of several
    # shapes, dtypes and memory orders, interleaved, come back as np.load
    # gives them, value for value.
    settings.DATARUN_STORAGE_DIR = str(tmp_path)
    rng = np.random.default_rng(0)
    arrays = {
        1: rng.random((120, 3)),
        2: np.asfortranarray(rng.random((120, 3))),
        3: rng.integers(0, 5, size=120),
        4: rng.random((120, 3)),
        5: rng.random((7, 2)).astype(np.float32),
        6: np.asfortranarray(rng.random((120, 3))),
    }
    for evaluation_id, array in arrays.items():
        storage.artifact_put(storage.artifact_key(evaluation_id,
                                                  storage.predictions_name(0, "train")),
                             storage.predictions_bytes(array))
    got = list(storage.load_many_predictions(list(arrays), 0, "train"))
    for (evaluation_id, array), read in zip(arrays.items(), got, strict=True):
        assert read.dtype == array.dtype and read.shape == array.shape, evaluation_id
        np.testing.assert_array_equal(read, array)
        np.testing.assert_array_equal(read, storage.load_predictions(evaluation_id, 0, "train"))


def test_a_detection_problem_gets_no_contributivity_rather_than_a_wrong_one(tmp_path):
    kit = tmp_path / "detection"
    shutil.copytree(CORPUS / "detection", kit)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit, check=True,
                   capture_output=True, timeout=120)
    problem = problem_import_ramp_kit(path=kit, name="detection-contrib")
    trusted = ramp_kits.load_trusted(str(storage.resolve(problem.storage_dir)),
                                     problem.data_hash)
    # Object tables as the harness writes them: one circle per image.
    table = np.array([[i, 0.9, 10.0, 10.0, 2.0] for i in range(len(trusted.y_train))])
    ids = [evaluation(problem, [table] * len(trusted.folds)).id for _ in range(2)]

    assert evaluations_contributivity(evaluation_ids=ids) == {}
