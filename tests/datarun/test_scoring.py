"""Scoring on arrays: the numbers a leaderboard shows, checked by hand."""
from types import SimpleNamespace

import numpy as np
import pytest
from rampwf.prediction_types import make_regression
from rampwf.score_types import RMSE

from datarun import scoring

N_TRAIN, N_TEST = 10, 4
# Overlapping validation folds (rows 2, 3 and 5 are validated twice) and rows
# 8 and 9 in no validation fold, as ShuffleSplit can produce.
VALID_FOLDS = [[0, 1, 2, 3], [2, 3, 4, 5], [5, 6, 7]]
FOLDS = [
    (np.setdiff1d(np.arange(N_TRAIN), valid), np.array(valid)) for valid in VALID_FOLDS
]


@pytest.fixture
def problem():
    return SimpleNamespace(Predictions=make_regression(), score_types=[RMSE(name="rmse")])


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        y_train=rng.normal(size=N_TRAIN),
        y_test=rng.normal(size=N_TEST),
        y_pred_trains=[rng.normal(size=N_TRAIN) for _ in FOLDS],
        y_pred_tests=[rng.normal(size=N_TEST) for _ in FOLDS],
    )


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)))


# --- check_predictions ------------------------------------------------------------

@pytest.mark.parametrize("y_pred", [
    np.zeros((5, 3)), np.ones((5, 3), dtype=np.float32), np.ones((5, 3), dtype=np.int64),
])
def test_check_predictions_accepts_finite_numbers_of_the_right_shape(y_pred):
    assert scoring.check_predictions(y_pred, n_rows=5, row_shape=[3], what="test set") is None


@pytest.mark.parametrize("y_pred", [
    np.array([["a", "b", "c"]] * 5), np.array([[None, 1, 2]] * 5, dtype=object),
])
def test_check_predictions_refuses_non_numbers(y_pred):
    message = scoring.check_predictions(y_pred, n_rows=5, row_shape=[3], what="test set")
    assert message == f"predictions on the test set must be numbers, not {y_pred.dtype}"


def test_check_predictions_names_both_shapes():
    message = scoring.check_predictions(np.zeros((5, 2)), n_rows=5, row_shape=[3],
                                        what="training set")
    assert message == "predictions on the training set have shape (5, 2), expected (5, 3)"


def test_check_predictions_refuses_a_flat_array_for_one_column_per_class():
    message = scoring.check_predictions(np.zeros(15), n_rows=5, row_shape=[3], what="test set")
    assert "(15,)" in message and "(5, 3)" in message


def test_check_predictions_counts_nan_and_infinite_values():
    y_pred = np.zeros((5, 3))
    y_pred[0, 0] = np.nan
    y_pred[1, 2] = np.inf
    y_pred[4, 1] = -np.inf
    message = scoring.check_predictions(y_pred, n_rows=5, row_shape=[3], what="test set")
    assert message == "predictions on the test set contain 3 NaN or infinite values"


# --- mean_std ----------------------------------------------------------------------

def test_mean_std_is_the_population_mean_and_std():
    values = [0.8, 0.9, 1.0, 0.7]
    mean = sum(values) / 4
    std = (sum((v - mean) ** 2 for v in values) / 4) ** 0.5  # divided by n, not n - 1
    assert scoring.mean_std(values) == pytest.approx((mean, std))


def test_mean_std_of_one_fold_has_zero_std():
    assert scoring.mean_std([0.5]) == (0.5, 0.0)


# --- fold_scores --------------------------------------------------------------------

def test_fold_scores_score_each_step_on_its_own_rows(problem, data):
    train_is, valid_is = FOLDS[1]
    y_pred_train, y_pred_test = data.y_pred_trains[1], data.y_pred_tests[1]

    scores = scoring.fold_scores(problem, data.y_train, data.y_test, FOLDS[1],
                                 y_pred_train, y_pred_test)

    assert scores == {
        "train": {"rmse": pytest.approx(rmse(data.y_train[train_is], y_pred_train[train_is]))},
        "valid": {"rmse": pytest.approx(rmse(data.y_train[valid_is], y_pred_train[valid_is]))},
        "test": {"rmse": pytest.approx(rmse(data.y_test, y_pred_test))},
    }


# --- bagged_scores ------------------------------------------------------------------

def test_bagged_scores_combine_out_of_fold_and_test_predictions(problem, data):
    # Valid: each row validated by at least one fold gets the mean of those
    # folds' predictions; rows in no validation fold are left out.
    total, count = np.zeros(N_TRAIN), np.zeros(N_TRAIN)
    for y_pred, valid in zip(data.y_pred_trains, VALID_FOLDS, strict=True):
        total[valid] += y_pred[valid]
        count[valid] += 1
    seen = count > 0
    assert not seen[[8, 9]].any() and (count[[2, 3, 5]] == 2).all()
    expected_valid = rmse(data.y_train[seen], total[seen] / count[seen])
    # Test: the mean of the fold models' predictions.
    expected_test = rmse(data.y_test, np.mean(data.y_pred_tests, axis=0))

    scores = scoring.bagged_scores(problem, data.y_train, data.y_test, FOLDS,
                                   data.y_pred_trains, data.y_pred_tests)

    assert scores == {"valid": {"rmse": pytest.approx(expected_valid)},
                      "test": {"rmse": pytest.approx(expected_test)}}


def test_bagged_valid_score_is_not_the_mean_of_fold_scores(problem, data):
    """Guards the hand computation above: bagging must differ from averaging."""
    bagged = scoring.bagged_scores(problem, data.y_train, data.y_test, FOLDS,
                                   data.y_pred_trains, data.y_pred_tests)
    fold_valid = [
        scoring.fold_scores(problem, data.y_train, data.y_test, fold, y_tr, y_te)["valid"]["rmse"]
        for fold, y_tr, y_te in zip(FOLDS, data.y_pred_trains, data.y_pred_tests, strict=True)
    ]
    assert bagged["valid"]["rmse"] != pytest.approx(np.mean(fold_valid))


def test_bagged_scores_of_one_fold_equal_its_fold_scores(problem, data):
    fold = FOLDS[0]
    bagged = scoring.bagged_scores(problem, data.y_train, data.y_test, [fold],
                                   data.y_pred_trains[:1], data.y_pred_tests[:1])
    single = scoring.fold_scores(problem, data.y_train, data.y_test, fold,
                                 data.y_pred_trains[0], data.y_pred_tests[0])
    assert bagged["valid"] == pytest.approx(single["valid"])
    assert bagged["test"] == pytest.approx(single["test"])


def test_bagged_scores_equal_the_last_bag_of_rampwf_with_text_labels():
    """Only the bag of every fold is scored (rampwf's ``get_score_cv_bags``
    also scores the bags of the first folds, which nobody shows): the numbers
    are rampwf's, bit for bit, for several score types sharing one bag."""
    from rampwf.prediction_types import make_multiclass
    from rampwf.score_types import Accuracy, NegativeLogLikelihood
    from rampwf.utils.combine import get_score_cv_bags

    labels = ["setosa", "versicolor", "virginica"]
    problem = SimpleNamespace(Predictions=make_multiclass(label_names=labels),
                              score_types=[Accuracy(name="acc"),
                                           NegativeLogLikelihood(name="nll")])
    rng = np.random.default_rng(7)
    y_train = rng.choice(labels, size=N_TRAIN).astype(object)
    y_test = rng.choice(labels, size=N_TEST).astype(object)

    def probabilities(n):
        p = rng.random((n, len(labels)))
        return p / p.sum(axis=1, keepdims=True)

    trains = [probabilities(N_TRAIN) for _ in FOLDS]
    tests = [probabilities(N_TEST) for _ in FOLDS]

    scores = scoring.bagged_scores(problem, y_train, y_test, FOLDS, trains, tests)

    P = problem.Predictions
    valid_preds = [P(y_pred=y, fold_is=valid) for y, (_, valid) in zip(trains, FOLDS,
                                                                        strict=True)]
    for st in problem.score_types:
        _, valid_curve = get_score_cv_bags(st, valid_preds, P(y_true=y_train),
                                           test_is_list=[valid for _, valid in FOLDS])
        _, test_curve = get_score_cv_bags(st, [P(y_pred=y) for y in tests], P(y_true=y_test))
        assert scores["valid"][st.name] == float(valid_curve[-1])
        assert scores["test"][st.name] == float(test_curve[-1])
