"""Contributivity of scored evaluations to the blend of all of them (RAMP semantics)."""

import numpy as np

from datarun import contributivity, ramp_kits, storage
from datarun.errors import ApplicationError
from datarun.models import Evaluation, Problem


def evaluations_contributivity(*, evaluation_ids: list[int],
                               min_improvement: float = 0.0) -> dict[int, float]:
    """Each scored evaluation's share of the best blend, on the official score.

    Blends the evaluations' validation predictions fold by fold (see
    :mod:`datarun.contributivity`); the values sum to 1. Evaluations that are
    not scored take no part and are left out of the result. On ties the
    earlier evaluation is kept, as ramp-board keeps the earlier submission.
    Problems whose predictions rampwf does not combine by averaging
    (detection) and pool problems get none (an empty result).
    """
    rows = list(Evaluation.objects.scored().filter(id__in=evaluation_ids).order_by("id")
                .values_list("id", "problem_id"))
    if not rows:
        return {}
    if len({problem_id for _, problem_id in rows}) > 1:
        raise ApplicationError("contributivity blends evaluations of one problem; these "
                               "evaluate several")
    evaluations = [evaluation_id for evaluation_id, _ in rows]
    problem = Problem.objects.get(id=rows[0][1])
    if problem.pool_id is not None:
        # Blending needs every submission's predictions, which stay on the
        # data owner's machines with the labels: not available.
        return {}
    trusted = ramp_kits.load_trusted(str(storage.resolve(problem.storage_dir)),
                                     problem.data_hash)
    kit = trusted.problem
    if not contributivity.blends_by_averaging(kit.Predictions):
        # Detection: rampwf blends lists of objects by matching them across
        # models, which this blend does not do; no contributivity rather
        # than a wrong one.
        return {}
    score = contributivity.ramp_ensemble_score(kit.score_types[0], kit.Predictions)
    y_true, y_pred = [], []
    for k, (_, valid_is) in enumerate(trusted.folds):
        # The fold's validation rows, sliced as rampwf slices them.
        y_true.append(trusted.y_train[valid_is])
        y_pred.append(np.stack([
            predictions[valid_is] for predictions in
            storage.load_many_predictions(evaluations, k, "train")
        ]))
    values = contributivity.contributivity(y_true, y_pred, score,
                                           min_improvement=min_improvement)
    return {evaluation_id: float(value)
            for evaluation_id, value in zip(evaluations, values, strict=True)}
