"""Re-scores: the same submission files evaluated on another problem (typically
the same problem rebuilt on a newer dataset version), and each score's drift."""
import math

from django.db import transaction

from datarun import storage
from datarun.errors import InvalidSubmission, NotFound
from datarun.models import Evaluation, EvaluationScore, Problem
from datarun.services.evaluations import evaluation_create
from datarun.services.problems import problem_get


@transaction.atomic
def evaluation_rescore(*, evaluation_id: int, problem: Problem | str) -> Evaluation:
    """A new evaluation of ``evaluation_id``'s files, with its limits, on
    ``problem``; it records what it re-scores so that :func:`score_drift`
    can compare the two. The old evaluation stays as it was."""
    old = Evaluation.objects.select_related("problem").filter(id=evaluation_id).first()
    if old is None:
        raise NotFound(f"no evaluation {evaluation_id}")
    if not isinstance(problem, Problem):
        problem = problem_get(problem)
    if problem.id == old.problem_id:
        raise InvalidSubmission(
            f"evaluation {old.id} already ran on {problem.name}: re-score it on another "
            "problem (e.g. one built on a newer dataset version), or re-run it")
    files = {name: storage.blob_get(digest) for name, digest in old.files.items()}
    try:
        evaluation = evaluation_create(problem=problem, files=files, limits=old.limits,
                                       pool=old.pool, owner=old.owner)
    except InvalidSubmission as exc:
        raise InvalidSubmission(
            f"evaluation {old.id} cannot be re-scored on {problem.name}: {exc.message}"
        ) from exc
    evaluation.rescore_of = old
    evaluation.save(update_fields=["rescore_of"])
    return evaluation


def score_drift(*, evaluation_id: int) -> list[dict]:
    """Each re-score's scores next to the original's, per score type and step.

    One row per (re-score, score type, step), score types matched by name::

        {"rescore_id", "problem", "state", "score_type", "step",
         "is_lower_the_better", "old": {"mean", "bagged"},
         "new": {"mean", "bagged"}, "drift": {"mean", "bagged"}}

    ``drift`` is new - old (None where either is missing, e.g. while the
    re-score runs, or for a score type only one problem has).
    """
    original = Evaluation.objects.select_related("problem").filter(id=evaluation_id).first()
    if original is None:
        raise NotFound(f"no evaluation {evaluation_id}")
    rescores = list(original.rescores.select_related("problem").order_by("id"))
    scores = _scores([original.id, *(r.id for r in rescores)])
    old = scores.get(original.id, {})
    rows = []
    for rescore in rescores:
        new = scores.get(rescore.id, {})
        # The new problem's score types first, in its order; then any only the old had.
        keys = list(new) + [k for k in old if k not in new]
        for key in keys:
            old_value = old.get(key, {})
            new_value = new.get(key, {})
            rows.append({
                "rescore_id": rescore.id, "problem": rescore.problem.name,
                "state": rescore.state, "score_type": key[0], "step": key[1],
                "is_lower_the_better": (new_value or old_value)["is_lower_the_better"],
                "old": {k: old_value.get(k) for k in ("mean", "bagged")},
                "new": {k: new_value.get(k) for k in ("mean", "bagged")},
                "drift": {k: _minus(new_value.get(k), old_value.get(k))
                          for k in ("mean", "bagged")},
            })
    return rows


STEP_ORDER = {"train": 0, "valid": 1, "test": 2}


def _scores(evaluation_ids: list[int]) -> dict[int, dict]:
    """{evaluation id: {(score type, step): {mean, bagged, is_lower_the_better}}},
    in the problem's score-type order, then train, valid, test."""
    out: dict[int, dict] = {}
    rows = EvaluationScore.objects.filter(evaluation_id__in=evaluation_ids).select_related(
        "score_type")
    for s in sorted(rows, key=lambda s: (s.score_type.index, STEP_ORDER.get(s.step, 9))):
        out.setdefault(s.evaluation_id, {})[(s.score_type.name, s.step)] = {
            "mean": _clean(s.mean), "bagged": _clean(s.bagged),
            "is_lower_the_better": s.score_type.is_lower_the_better,
        }
    return out


def _clean(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _minus(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old
