"""Contributivity: each submission's share of the best blend, with RAMP's semantics.

On each cross-validation fold, Caruana's greedy forward ensemble selection with
replacement runs over the submissions' validation predictions, exactly as
ramp-workflow's ``blend_on_fold`` (what ``ramp-blend`` and ramp-board's
``compute_contributivity`` call) does:

1. start from the submission with the best official score on the fold;
2. add the submission, possibly one already in, whose addition gives the
   averaged predictions the best score, scanning submissions in order and
   keeping one only if it beats the best so far by more than
   ``min_improvement``; stop when none does, or at ``max_ensemble_size``
   members.

A submission's contributivity on a fold is its share of the selected list
(each occurrence is worth ``1 / len(list)``); its contributivity is the sum of
these shares divided by the number of folds, as ramp-board stores it, so the
values sum to 1. ramp-workflow's ``contributivities.csv`` holds the same
numbers in its ``fold_<k>`` columns and their rounded percentage in its
``contributivity`` column.

The blend is computed on running sums: candidates are scored together, in
blocks, with batch forms of the common score types (:func:`ramp_ensemble_score`)
and a per-candidate fallback for the others. Sums are accumulated in the order
rampwf's ``np.nanmean`` adds them, so scores, and ties between them, are those
ramp-workflow computes. No Django here; rampwf is imported only to recognise
its score and prediction types.
"""
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# rampwf's blend_on_fold default, and ramp-board's Event.max_n_ensemble.
MAX_ENSEMBLE_SIZE = 80
# Candidates are scored in blocks of about this size, so that the block being
# summed and scored stays in cache.
_BLOCK_BYTES = 1 << 20


def _same(x):
    return x


def _all_columns(truth, y_preds):
    return y_preds


@dataclass(frozen=True)
class EnsembleScore:
    """A score that rates many candidate blends at once.

    ``score(truth, y_preds)`` gets predictions stacked on a first axis (one
    row per candidate) and returns one score per candidate. ``truth(y_true)``
    turns a fold's true labels into what ``score`` compares with.
    ``prepare(y_preds)`` turns stacked submissions' predictions into what is
    averaged (rampwf's multiclass combine clips and normalises probabilities
    first). ``project(truth, y_preds)`` may keep only the part of stacked
    predictions that ``score`` reads; it must commute with averaging, as
    selecting columns does.
    """

    score: Callable[[Any, np.ndarray], np.ndarray]
    is_lower_the_better: bool
    truth: Callable[[Any], Any] = _same
    prepare: Callable[[np.ndarray], np.ndarray] = _same
    project: Callable[[Any, np.ndarray], np.ndarray] = _all_columns


def per_candidate(score_fn: Callable[[Any, np.ndarray], float]) -> Callable:
    """Batch form of ``score_fn(truth, y_pred) -> float``, one call per candidate."""
    def score(truth, y_preds: np.ndarray) -> np.ndarray:
        return np.array([score_fn(truth, y_pred) for y_pred in y_preds], dtype=float)
    return score


@dataclass
class Blend:
    """The blend of every fold and the contributivity it gives.

    ``ensembles[k]`` lists the submissions selected on fold ``k`` in the order
    they were added, with repetitions (empty when no submission could be
    selected); ``scores[k]`` is the official score of their averaged
    predictions (NaN when empty); ``fold_contributivity[i, k]`` is submission
    ``i``'s share on fold ``k`` divided by the number of folds blended, and
    ``contributivity`` its sum over folds.
    """

    ensembles: list[np.ndarray]
    scores: np.ndarray
    fold_contributivity: np.ndarray
    contributivity: np.ndarray


def blend(y_true_valid_per_fold: Sequence, y_pred_valid_per_fold: Sequence,
          score: EnsembleScore, *, min_improvement: float = 0.0,
          max_ensemble_size: int = MAX_ENSEMBLE_SIZE) -> Blend:
    """Blend the submissions on every fold and share the credit among them.

    Parameters
    ----------
    y_true_valid_per_fold : sequence of array-like
        The true labels of each fold's validation rows.
    y_pred_valid_per_fold : sequence of array-like
        For each fold, the submissions' predictions on its validation rows,
        shape ``(n_submissions, n_valid, ...)`` (or a list of per-submission
        arrays). A submission whose predictions on a fold are not all finite
        is never selected on that fold.
    score : EnsembleScore
        The official score, e.g. ``ramp_ensemble_score(problem.score_types[0],
        problem.Predictions)``.
    min_improvement : float
        How much a candidate must improve the blend's score to be added.
    max_ensemble_size : int
        The most members (counted with repetitions) a fold's blend may have.

    Returns
    -------
    Blend
        The folds' ensembles and scores, and the contributivities, which sum
        to 1 unless no submission could be selected on any fold. Folds where
        none could be are left out of the average.
    """
    if len(y_true_valid_per_fold) != len(y_pred_valid_per_fold):
        raise ValueError(f"{len(y_true_valid_per_fold)} folds of labels but "
                         f"{len(y_pred_valid_per_fold)} folds of predictions")
    n_submissions = len(y_pred_valid_per_fold[0]) if len(y_pred_valid_per_fold) else 0
    if any(len(y_preds) != n_submissions for y_preds in y_pred_valid_per_fold):
        raise ValueError("every fold needs the predictions of the same submissions")
    folds = [
        _select_on_fold(y_true, np.asarray(y_preds, dtype=float), score,
                        min_improvement=min_improvement,
                        max_ensemble_size=max_ensemble_size)
        for y_true, y_preds in zip(y_true_valid_per_fold, y_pred_valid_per_fold, strict=True)
    ]
    n_blended = sum(len(ensemble) > 0 for ensemble, _ in folds)
    shares = np.zeros((n_submissions, len(folds)))
    for k, (ensemble, _) in enumerate(folds):
        if len(ensemble):
            # One 1/len(list) per occurrence, added in order, as ramp-workflow does.
            np.add.at(shares[:, k], ensemble, 1.0 / len(ensemble))
    if n_blended:
        shares /= n_blended
    total = np.zeros(n_submissions)
    for k in range(len(folds)):
        total = total + shares[:, k]
    return Blend(
        ensembles=[ensemble for ensemble, _ in folds],
        scores=np.array([fold_score for _, fold_score in folds], dtype=float),
        fold_contributivity=shares,
        contributivity=total,
    )


def contributivity(y_true_valid_per_fold: Sequence, y_pred_valid_per_fold: Sequence,
                   score: EnsembleScore, *, min_improvement: float = 0.0,
                   max_ensemble_size: int = MAX_ENSEMBLE_SIZE) -> np.ndarray:
    """One contributivity per submission (see :func:`blend`), summing to 1."""
    return blend(y_true_valid_per_fold, y_pred_valid_per_fold, score,
                 min_improvement=min_improvement,
                 max_ensemble_size=max_ensemble_size).contributivity


def _select_on_fold(y_true, y_preds: np.ndarray, score: EnsembleScore, *,
                    min_improvement: float, max_ensemble_size: int
                    ) -> tuple[np.ndarray, float]:
    """Greedy forward selection with replacement on one fold: (ensemble, its score)."""
    n = len(y_preds)
    finite = np.isfinite(y_preds.reshape(n, -1)).all(axis=1) if n else np.zeros(0, bool)
    kept = np.flatnonzero(finite)
    if len(kept) == 0:
        return np.zeros(0, dtype=np.intp), float("nan")
    truth = score.truth(y_true)
    lower = score.is_lower_the_better
    raw = y_preds[kept] if len(kept) < n else y_preds

    # The first member is the best single submission, scored on its own
    # predictions (not the combined ones), as blend_on_fold does.
    single = _scores_in_blocks(score, truth, score.project(truth, raw))
    if np.all(np.isnan(single)):
        return np.zeros(0, dtype=np.intp), float("nan")
    worst = np.inf if lower else -np.inf
    single = np.where(np.isnan(single), worst, single)
    first = int(np.argmin(single) if lower else np.argmax(single))

    members = np.ascontiguousarray(score.project(truth, score.prepare(raw)))
    ensemble = [first]
    running_sum = members[first].copy()
    current = _score_one(score, truth, running_sum, 1)
    while len(ensemble) < max_ensemble_size:
        candidates = _scores_in_blocks(score, truth, members, running_sum,
                                       len(ensemble) + 1)
        added = _first_best_improvement(candidates, current, min_improvement, lower)
        if added < 0:
            break
        ensemble.append(added)
        running_sum += members[added]
        current = _score_one(score, truth, running_sum, len(ensemble))
    return kept[np.array(ensemble, dtype=np.intp)], float(current)


def _score_one(score: EnsembleScore, truth, running_sum: np.ndarray, count: int) -> float:
    return float(score.score(truth, (running_sum / count)[None])[0])


def _scores_in_blocks(score: EnsembleScore, truth, members: np.ndarray,
                      running_sum: np.ndarray | None = None, count: int = 1) -> np.ndarray:
    """Score every member, or every ``(running_sum + member) / count``."""
    n = len(members)
    row_bytes = max(members[0].nbytes, 1)
    block = max(1, min(n, _BLOCK_BYTES // row_bytes))
    out = np.empty(n)
    buffer = np.empty((block, *members.shape[1:])) if running_sum is not None else None
    for start in range(0, n, block):
        stop = min(n, start + block)
        if running_sum is None:
            y_preds = members[start:stop]
        else:
            y_preds = buffer[:stop - start]
            np.add(running_sum, members[start:stop], out=y_preds)
            np.divide(y_preds, count, out=y_preds)
        out[start:stop] = score.score(truth, y_preds)
    return out


def _first_best_improvement(candidates: np.ndarray, current: float,
                            min_improvement: float, lower: bool) -> int:
    """The candidate rampwf's in-order scan keeps, or -1.

    The scan keeps a candidate when it beats the best score so far (the
    blend's at first) by more than ``min_improvement``.
    """
    if not lower:  # negation is exact, so comparisons are unchanged
        candidates, current = -candidates, -current
    if min_improvement == 0:
        better = candidates < current
        if not better.any():
            return -1
        return int(np.argmin(np.where(better, candidates, np.inf)))
    best, threshold, start = -1, current - min_improvement, 0
    while True:
        hits = np.flatnonzero(candidates[start:] < threshold)
        if len(hits) == 0:
            return best
        best = start + int(hits[0])
        threshold, start = candidates[best] - min_improvement, best + 1


# --- rampwf score types in batch form ----------------------------------------------

def blends_by_averaging(Predictions) -> bool:
    """Whether rampwf combines these predictions by averaging them (numbers:
    classification, regression, clustering, combined types), which is what
    the blend here computes. Detection's ``combine`` matches objects across
    models instead: such problems get no contributivity."""
    from rampwf.prediction_types import multiclass
    from rampwf.prediction_types.base import BasePrediction

    combine = getattr(Predictions.combine, "__func__", None)
    return combine in (multiclass._combine.__func__, BasePrediction.combine.__func__)


def ramp_ensemble_score(score_type, Predictions) -> EnsembleScore:
    """The batch form of a rampwf score type, averaging as ``Predictions.combine`` does.

    Accuracy, classification error, negative log-likelihood, RMSE and MARE
    are computed on whole blocks of candidates; other score types call their
    own ``score_function`` once per candidate.
    """
    from rampwf import score_types
    from rampwf.prediction_types import multiclass
    from rampwf.prediction_types.base import BasePrediction

    combine = getattr(Predictions.combine, "__func__", None)
    if combine is multiclass._combine.__func__:
        prepare = _clip_and_normalise
    elif combine is BasePrediction.combine.__func__:
        prepare = _same
    else:
        raise ValueError(
            f"{Predictions.__name__}.combine does not average predictions; contributivity "
            "needs predictions that rampwf combines by averaging"
        )
    lower = bool(score_type.is_lower_the_better)
    kind = type(score_type)
    is_multiclass = prepare is _clip_and_normalise

    if is_multiclass and kind in (score_types.Accuracy, score_types.ClassificationError):
        def label_index(y_true):
            return np.asarray(Predictions(y_true=y_true).y_pred_label_index)
        batch = _accuracy if kind is score_types.Accuracy else _classification_error
        return EnsembleScore(batch, lower, truth=label_index, prepare=prepare)
    if is_multiclass and kind is score_types.NegativeLogLikelihood:
        return EnsembleScore(_negative_log_likelihood, lower, truth=_probability_truth(Predictions),
                             prepare=prepare, project=_true_class_column)
    if not is_multiclass and kind in (score_types.RMSE, score_types.MARE):
        def values(y_true):
            return np.asarray(Predictions(y_true=y_true).y_pred, dtype=float)
        batch = _rmse if kind is score_types.RMSE else _mare
        return EnsembleScore(batch, lower, truth=values, prepare=prepare)

    def truth(y_true):
        return Predictions(y_true=y_true)

    def score_fn(ground_truth, y_pred):
        return score_type.score_function(ground_truth, Predictions(y_pred=y_pred))

    return EnsembleScore(per_candidate(score_fn), lower, truth=truth, prepare=prepare)


def _clip_and_normalise(y_preds: np.ndarray) -> np.ndarray:
    """What rampwf's multiclass combine averages: probabilities clipped to
    [1e-15, 1 - 1e-15], then divided by their row's sum."""
    clipped = np.clip(y_preds, 10 ** -15, 1 - 10 ** -15)
    return clipped / np.sum(clipped, axis=-1, keepdims=True)


def _accuracy(labels: np.ndarray, y_preds: np.ndarray) -> np.ndarray:
    # sklearn's accuracy_score on argmax (first maximum) label indices.
    return np.mean(np.argmax(y_preds, axis=-1) == labels, axis=1)


def _classification_error(labels: np.ndarray, y_preds: np.ndarray) -> np.ndarray:
    return 1 - _accuracy(labels, y_preds)


@dataclass(frozen=True)
class _ProbabilityTruth:
    proba: np.ndarray
    # Set when each row is one class with probability 1: the score then
    # reads only that class's column.
    labels: np.ndarray | None


def _probability_truth(Predictions) -> Callable:
    def truth(y_true) -> _ProbabilityTruth:
        proba = np.asarray(Predictions(y_true=y_true).y_pred, dtype=float)
        one_hot = bool(np.all((proba == 0) | (proba == 1)) and np.all(proba.sum(axis=1) == 1))
        return _ProbabilityTruth(proba, np.argmax(proba, axis=1) if one_hot else None)
    return truth


def _true_class_column(truth: _ProbabilityTruth, y_preds: np.ndarray) -> np.ndarray:
    if truth.labels is None:
        return y_preds
    # Row-major, so that each candidate's mean sums as sklearn's does.
    return np.ascontiguousarray(y_preds[:, np.arange(len(truth.labels)), truth.labels])


def _negative_log_likelihood(truth: _ProbabilityTruth, y_preds: np.ndarray) -> np.ndarray:
    """sklearn's log_loss (what rampwf's NegativeLogLikelihood calls), in batch."""
    eps = np.finfo(float).eps
    with np.errstate(divide="ignore", invalid="ignore"):
        if truth.labels is not None:  # y_preds holds the true class's column only
            # -sum(xlogy(one_hot, p)) is -log(p) of the true class, exactly.
            losses = -np.log(np.clip(y_preds, eps, 1 - eps))
        else:
            logs = truth.proba * np.log(np.clip(y_preds, eps, 1 - eps))
            losses = -np.sum(np.where(truth.proba == 0, 0.0, logs), axis=-1)
    return np.mean(losses, axis=1)


def _rmse(y_true: np.ndarray, y_preds: np.ndarray) -> np.ndarray:
    squares = np.square(y_true - y_preds).reshape(len(y_preds), -1)
    return np.sqrt(np.mean(squares, axis=1))


def _mare(y_true: np.ndarray, y_preds: np.ndarray) -> np.ndarray:
    ratios = np.abs((y_true - y_preds) / y_true).reshape(len(y_preds), -1)
    return np.mean(ratios, axis=1)
