"""Scoring on the trusted side, with ramp-workflow's semantics (no Django).

Per-fold scores, mean ± std over folds and bagged scores are computed with the
problem's own ``Predictions`` and ``score_types`` and ramp-workflow's bagging,
so that every number equals what ``ramp-test`` computes for the same kit.

Predictions that are not a numeric array per row (ramp-workflow's detection:
a list of objects such as ``(conf, x, y, r)`` circles per image) leave the
sandbox as an *object table*, a plain float ``.npy`` of one row per object,
``(row index, *values)``, sorted by row; the problem's ``prediction_shape`` is
then ``[OBJECTS, width]``. :func:`check_predictions` validates a table and
:func:`objects_from_table` rebuilds the lists the kit's ``Predictions`` take,
so nothing a submission wrote is ever unpickled.
"""
import copy
from collections.abc import Sequence

import numpy as np

from datarun.contract import MAX_OBJECTS_PER_ROW, OBJECTS, max_objects

STEPS = ("train", "valid", "test")


def holds_objects(truth) -> bool:
    """Whether the kit's ``Predictions(y_true=...).y_pred`` holds a list of
    objects per row (detection) rather than numbers."""
    truth = np.asarray(truth)
    return truth.dtype.kind == "O" and truth.ndim == 1


def prediction_shape(truth) -> list[int]:
    """The shape of one row of predictions, ``[OBJECTS, width]`` for lists of
    objects: one more value than the true objects have, the confidence first
    (ramp-workflow's detection: ``(x, y, r)`` true, ``(conf, x, y, r)`` predicted).
    Raises ValueError for labels that are neither."""
    truth = np.asarray(truth)
    if truth.dtype.kind in "biuf":
        return list(truth.shape[1:])
    if not holds_objects(truth):
        raise ValueError(f"the labels are an array of {truth.dtype} of shape {truth.shape}")
    widths = set()
    for objects in truth:
        if not isinstance(objects, list | tuple | np.ndarray):
            raise ValueError(f"a row of the labels is a {type(objects).__name__}, not a list "
                             "of objects")
        widths.update(len(np.atleast_1d(np.asarray(o, dtype=float))) for o in objects)
    if len(widths) != 1:
        raise ValueError("the labels' objects do not all have the same number of values"
                         if widths else "the training labels hold no object")
    return [OBJECTS, widths.pop() + 1]


def objects_from_table(table: np.ndarray, n_rows: int) -> np.ndarray:
    """The kit's y_pred from a checked object table: an object array of
    ``n_rows`` lists of tuples of floats."""
    y_pred = np.empty(n_rows, dtype=object)
    for i in range(n_rows):
        y_pred[i] = []
    for row in np.asarray(table, dtype=float):
        y_pred[int(row[0])].append(tuple(float(v) for v in row[1:]))
    return y_pred


def _check_object_table(table: np.ndarray, *, n_rows: int, width: int, what: str) -> str | None:
    if table.ndim != 2 or (len(table) and table.shape[1] != width + 1):
        return (f"predictions on the {what} must be a table of one row per object "
                f"(its row index and {width} values), not an array of shape {table.shape}")
    if len(table) > max_objects(n_rows):
        return (f"predictions on the {what} hold {len(table)} objects, more than the "
                f"{max_objects(n_rows)} allowed ({MAX_OBJECTS_PER_ROW} per row)")
    if not np.all(np.isfinite(table)):
        return f"predictions on the {what} contain NaN or infinite values"
    if len(table):
        index = table[:, 0]
        if not np.all(index == np.floor(index)) or index.min() < 0 or index.max() >= n_rows:
            return (f"the row indexes of the predictions on the {what} are not rows 0 to "
                    f"{n_rows - 1}")
        if np.any(np.diff(index) < 0):
            return f"the objects of the predictions on the {what} are not sorted by row"
    return None


def check_predictions(y_pred: np.ndarray, *, n_rows: int, row_shape: Sequence[int],
                      what: str) -> str | None:
    """Why ``y_pred`` cannot be scored, or None when it can."""
    if y_pred.dtype.kind not in "biuf":
        return f"predictions on the {what} must be numbers, not {y_pred.dtype}"
    if list(row_shape[:1]) == [OBJECTS]:
        return _check_object_table(y_pred, n_rows=n_rows, width=row_shape[1], what=what)
    expected = (n_rows, *row_shape)
    if y_pred.shape != expected:
        return f"predictions on the {what} have shape {y_pred.shape}, expected {expected}"
    if not np.all(np.isfinite(y_pred)):
        n_bad = int(np.size(y_pred) - np.count_nonzero(np.isfinite(y_pred)))
        return f"predictions on the {what} contain {n_bad} NaN or infinite values"
    return None


def _score(score_type, truth, pred) -> float:
    return float(score_type.score_function(truth, pred))


def _as_kit_y_pred(truth, y_pred):
    """``y_pred`` as the kit's ``Predictions`` take it, given the
    ``Predictions`` of the labels of all its rows: an object table rebuilt
    into lists of objects when the labels are such lists."""
    if holds_objects(truth.y_pred):
        return objects_from_table(y_pred, len(truth.y_pred))
    return y_pred


def fold_scores(problem, y_train, y_test, fold, y_pred_train, y_pred_test) -> dict:
    """``{step: {score name: value}}`` for one fold, as ramp-test scores it."""
    train_is, valid_is = fold
    P = problem.Predictions
    truth = {
        "train": P(y_true=y_train, fold_is=train_is),
        "valid": P(y_true=y_train, fold_is=valid_is),
        "test": P(y_true=y_test),
    }
    if holds_objects(truth["test"].y_pred):
        y_pred_train = objects_from_table(y_pred_train, len(y_train))
        y_pred_test = objects_from_table(y_pred_test, len(y_test))
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
    P = problem.Predictions
    truth_train, truth_test = P(y_true=y_train), P(y_true=y_test)
    y_pred_trains = [_as_kit_y_pred(truth_train, y) for y in y_pred_trains]
    y_pred_tests = [_as_kit_y_pred(truth_test, y) for y in y_pred_tests]
    valid_preds = [
        P(y_pred=y, fold_is=valid_is) for y, (_, valid_is) in zip(y_pred_trains, folds,
                                                                 strict=True)
    ]
    test_preds = [P(y_pred=y) for y in y_pred_tests]
    valid = _bag(valid_preds, truth_train, [valid_is for _, valid_is in folds])
    test = _bag(test_preds, truth_test, [range(len(p.y_pred)) for p in test_preds])
    # Each score type gets its own copies, as in rampwf: a kit's score
    # function may change what it is given.
    return {step: {st.name: float(st.score_function(*copy.deepcopy(bagged)))
                   for st in problem.score_types}
            for step, bagged in (("valid", valid), ("test", test))}


def _bag(predictions_list, ground_truths, test_is_list):
    """The truth and the combined predictions of every fold, each sliced to the
    rows some fold predicted: what rampwf's ``get_score_cv_bags`` scores last
    (its other bags, of the first folds only, are not needed here), computed
    the same way, once for all score types."""
    Predictions = type(ground_truths)
    bags = [Predictions(n_samples=len(ground_truths.y_pred)) for _ in predictions_list]
    for bag, predictions, test_is in zip(bags, predictions_list, test_is_list, strict=True):
        bag.set_valid_in_train(predictions, test_is)
    combined = Predictions.combine(bags)
    valid_indexes = combined.valid_indexes
    truth = copy.deepcopy(ground_truths)
    truth.set_slice(valid_indexes)
    combined.set_slice(valid_indexes)
    return truth, combined


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
