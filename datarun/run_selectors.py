"""Reads of tracked runs, as plain data for databoard, the API and the run page."""
import math

import numpy as np

from datarun import storage
from datarun.models import Evaluation, RunArtifact, RunLogLine, RunMetric
from datarun.selectors import evaluation_detail
from datarun.states import FINAL_STATES, RunState

LOG_PAGE_LINES = 2000


def runs_of(evaluation_ids: list[int]) -> list[dict]:
    """The evaluations ``evaluation_ids`` and the reproductions of them,
    newest first."""
    rows = Evaluation.objects.filter(id__in=evaluation_ids) | Evaluation.objects.filter(
        reproduces_id__in=evaluation_ids)
    return [
        {"id": e.id, "state": e.state, "started_by": e.started_by,
         "reproduces": e.reproduces_id, "created_at": e.created_at,
         "started_at": e.started_at, "finished_at": e.finished_at}
        for e in rows.order_by("-id")
    ]


def run_detail(evaluation_id: int) -> dict:
    """Everything about one run: its evaluation detail (folds, scores),
    metadata, metrics, artifacts, log state and reproduction report."""
    detail = evaluation_detail(evaluation_id)
    evaluation = Evaluation.objects.get(id=evaluation_id)
    fold_envs = dict(evaluation.fold_runs.values_list("fold_index", "environment"))
    for fold in detail["folds"]:
        fold["environment"] = fold_envs.get(fold["fold"]) or {}
    detail.update({
        "metadata": evaluation.metadata,
        "started_by": evaluation.started_by,
        "reproduces": evaluation.reproduces_id,
        "logs_truncated": evaluation.logs_truncated,
        "log_bytes": evaluation.log_bytes,
        "metrics": [
            {"key": m.key, "value": _finite(m.value), "step": m.step,
             "timestamp": m.timestamp, "fold": m.step if m.fold_run_id else None}
            for m in RunMetric.objects.filter(evaluation_id=evaluation_id).order_by("id")
        ],
        "artifacts": [
            {"name": a.name, "size_bytes": a.size_bytes, "sha256": a.sha256,
             "fold": a.fold_run.fold_index if a.fold_run_id else None}
            for a in RunArtifact.objects.filter(evaluation_id=evaluation_id)
            .select_related("fold_run").order_by("name")
        ],
        "reproduction": (reproduction_report(evaluation)
                         if evaluation.reproduces_id else None),
    })
    return detail


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def run_log(evaluation_id: int, *, after: int = 0, limit: int = LOG_PAGE_LINES) -> dict:
    """Log lines of a run with ``seq`` greater than ``after``, oldest first.
    ``finished``: the run is over and no line is left to read."""
    state, truncated = Evaluation.objects.values_list("state", "logs_truncated").get(
        id=evaluation_id)
    rows = list(
        RunLogLine.objects.filter(evaluation_id=evaluation_id, id__gt=after)
        .select_related("fold_run").order_by("id")[:limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "lines": [{"seq": r.id, "fold": r.fold_run.fold_index, "attempt": r.attempt,
                   "stream": r.stream, "at": r.at, "text": r.text} for r in rows],
        "next": rows[-1].id if rows else after,
        "finished": state in FINAL_STATES and not more,
        "truncated": truncated,
        "state": state,
    }


def reproduction_report(evaluation: Evaluation) -> dict:
    """How a reproduction compares with the run it reproduces: the inputs,
    the software, and fold by fold whether the predictions are identical."""
    original = evaluation.reproduces
    report = {"of": evaluation.reproduces_id, "state": "pending", "folds": [],
              "inputs": [], "software": []}
    if original is None:
        report["state"] = "original deleted"
        return report
    new_meta, old_meta = evaluation.metadata or {}, original.metadata or {}
    for key in ("code_hash", "data_hash", "folds_hash"):
        report["inputs"].append({"what": key.replace("_", " "), "original": old_meta.get(key),
                                 "reproduction": new_meta.get(key),
                                 "same": old_meta.get(key) == new_meta.get(key)})
    old_env = _first_environment(original)
    new_env = _first_environment(evaluation)
    for name in sorted(set(old_env.get("packages", {})) | set(new_env.get("packages", {}))):
        a, b = old_env.get("packages", {}).get(name), new_env.get("packages", {}).get(name)
        report["software"].append({"what": name, "original": a, "reproduction": b,
                                   "same": a == b})
    old_images = set(original.fold_runs.values_list("runtime_image", flat=True))
    new_images = set(evaluation.fold_runs.values_list("runtime_image", flat=True))
    if old_images != {""} or new_images != {""}:
        report["software"].append({"what": "runtime image", "original": sorted(old_images),
                                   "reproduction": sorted(new_images),
                                   "same": old_images == new_images})
    if evaluation.state != RunState.SCORED or original.state != RunState.SCORED:
        if evaluation.state in FINAL_STATES:
            report["state"] = f"reproduction {evaluation.state}"
        return report
    identical = True
    for k in range(evaluation.problem.n_folds):
        row = {"fold": k}
        for which in ("train", "test"):
            a = storage.load_predictions(original.id, k, which)
            b = storage.load_predictions(evaluation.id, k, which)
            same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
            diff = (float(np.max(np.abs(a.astype(float) - b.astype(float))))
                    if a.shape == b.shape and a.size else None)
            row[which] = {"identical": bool(same), "max_abs_diff": diff}
            identical = identical and same
        report["folds"].append(row)
    report["state"] = "identical" if identical else "different"
    return report


def _first_environment(evaluation: Evaluation) -> dict:
    for env in evaluation.fold_runs.order_by("fold_index").values_list("environment",
                                                                       flat=True):
        if env:
            return env
    return {}
