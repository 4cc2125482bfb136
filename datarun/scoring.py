"""Scoring on the trusted side, with ramp-workflow's semantics (no Django).

Per-fold scores, mean ± std over folds and bagged scores are computed with the
problem's own ``Predictions`` and ``score_types`` and ramp-workflow's bagging,
so that every number equals what ``ramp-test`` computes for the same kit.
"""
from collections.abc import Sequence

import numpy as np

STEPS = ("train", "valid", "test")


def check_predictions(y_pred: np.ndarray, *, n_rows: int, row_shape: Sequence[int],
                      what: str) -> str | None:
    """Why ``y_pred`` cannot be scored, or None when it can."""
    expected = (n_rows, *row_shape)
    if y_pred.dtype.kind not in "biuf":
        return f"predictions on the {what} must be numbers, not {y_pred.dtype}"
    if y_pred.shape != expected:
        return f"predictions on the {what} have shape {y_pred.shape}, expected {expected}"
    if not np.all(np.isfinite(y_pred)):
        n_bad = int(np.size(y_pred) - np.count_nonzero(np.isfinite(y_pred)))
        return f"predictions on the {what} contain {n_bad} NaN or infinite values"
    return None


def _score(score_type, truth, pred) -> float:
    return float(score_type.score_function(truth, pred))


def fold_scores(problem, y_train, y_test, fold, y_pred_train, y_pred_test) -> dict:
    """``{step: {score name: value}}`` for one fold, as ramp-test scores it."""
    train_is, valid_is = fold
    P = problem.Predictions
    truth = {
        "train": P(y_true=y_train, fold_is=train_is),
        "valid": P(y_true=y_train, fold_is=valid_is),
        "test": P(y_true=y_test),
    }
    pred = {
        "train": P(y_pred=y_pred_train, fold_is=train_is),
        "valid": P(y_pred=y_pred_train, fold_is=valid_is),
        "test": P(y_pred=y_pred_test),
    }
    return {
        step: {st.name: _score(st, truth[step], pred[step]) for st in problem.score_types}
        for step in STEPS
    }


def bagged_scores(problem, y_train, y_test, folds, y_pred_trains, y_pred_tests) -> dict:
    """``{"valid"|"test": {score name: value}}`` bagged over all folds.

    Valid: each fold's out-of-fold predictions placed at its validation rows and
    averaged where folds overlap. Test: the average of the fold models'
    predictions on the test set.
    """
    from rampwf.utils.combine import get_score_cv_bags

    P = problem.Predictions
    valid_preds = [
        P(y_pred=y, fold_is=valid_is) for y, (_, valid_is) in zip(y_pred_trains, folds,
                                                                 strict=True)
    ]
    test_preds = [P(y_pred=y) for y in y_pred_tests]
    valid_is_list = [valid_is for _, valid_is in folds]
    out = {"valid": {}, "test": {}}
    for st in problem.score_types:
        _, valid_curve = get_score_cv_bags(st, valid_preds, P(y_true=y_train),
                                           test_is_list=valid_is_list)
        _, test_curve = get_score_cv_bags(st, test_preds, P(y_true=y_test))
        out["valid"][st.name] = float(valid_curve[-1])
        out["test"][st.name] = float(test_curve[-1])
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std over folds, as ramp-test prints them."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def check_and_score_fold(trusted, ticket, outcome) -> dict | None:
    """The fold's ``{step: {score: value}}`` from the trusted inputs
    (:class:`datarun.ramp_kits.TrustedInputs`), or None with ``outcome.error``
    saying why. The server and ``datarun test`` share it, so that both give
    the same numbers for the same predictions."""
    if outcome.error:
        return None
    for y, n, what in ((outcome.y_pred_train, ticket.n_train, "training set"),
                       (outcome.y_pred_test, ticket.n_test, "test set")):
        problem_with = check_predictions(
            y, n_rows=n, row_shape=ticket.prediction_shape, what=what)
        if problem_with:
            outcome.error = f"{problem_with} in fold {ticket.fold_index}"
            return None
    try:
        return fold_scores(
            trusted.problem, trusted.y_train, trusted.y_test,
            trusted.folds[ticket.fold_index], outcome.y_pred_train, outcome.y_pred_test,
        )
    except Exception as exc:  # noqa: BLE001 - the predictions may break a score function
        outcome.error = (f"the predictions of fold {ticket.fold_index} could not be scored: "
                         f"{type(exc).__name__}: {exc}")
        return None
