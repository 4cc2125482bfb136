"""Reads of the evaluation service, as plain data for databoard and the API."""
import json
import math
from collections import defaultdict

from datarun import environments, public_split, ramp_kits
from datarun.models import Evaluation, EvaluationScore, FoldRun, FoldScore, Problem, ScoreType


def _clean(value: float | None) -> float | None:
    """Scores as JSON can carry them: NaN and infinities become None (missing)."""
    if value is None or not math.isfinite(value):
        return None
    return value


def score_types_for(problem_name: str) -> list[dict]:
    return [
        {"name": st.name, "is_lower_the_better": st.is_lower_the_better,
         "precision": st.precision, "minimum": st.minimum, "maximum": st.maximum,
         "official": st.index == 0}
        for st in ScoreType.objects.filter(problem__name=problem_name).order_by("index")
    ]


def problem_summary(name: str) -> dict | None:
    problem = Problem.objects.select_related("environment").defer(
        "environment__log").filter(name=name).first()
    if problem is None:
        return None
    return {
        "name": problem.name, "title": problem.title,
        "workflow_elements": problem.workflow_elements, "n_train": problem.n_train,
        "n_test": problem.n_test, "n_folds": problem.n_folds,
        "data_hash": problem.data_hash, "folds_hash": problem.folds_hash,
        "score_types": score_types_for(problem.name),
        "environment": environment_summary(problem),
    }


def environment_summary(problem: Problem) -> dict | None:
    """The problem's own environment (None: the shared runtime): its lock
    hash, build state and packages at their locked versions."""
    environment = problem.environment
    if environment is None:
        return None
    return {"lock_hash": environment.lock_hash, "state": environment.state,
            "prepared": problem.environment_prepared == environment.lock_hash,
            "python": environment.python, "error": environment.error,
            "packages": [{"name": p["name"], "version": p["version"]}
                         for p in environment.packages]}


def environment_log(problem_name: str) -> str:
    return Problem.objects.filter(name=problem_name).values_list(
        "environment__log", flat=True).first() or ""


# What summaries and lists read of a fold run and an evaluation: never the
# logs (stdout, stderr), the environment, files, limits or tracebacks.
FOLD_TIME_FIELDS = ("evaluation_id", "state", "train_time", "valid_time", "test_time",
                    "cpu_time", "peak_memory")
SUMMARY_FIELDS = ("id", "problem__name", "state", "error_kind", "error_message", "created_at",
                  "started_at", "finished_at")


def _evaluation_scores(evaluation_ids, steps=None) -> dict[int, dict]:
    out: dict[int, dict] = defaultdict(lambda: defaultdict(dict))
    rows = EvaluationScore.objects.filter(evaluation_id__in=evaluation_ids)
    if steps is not None:
        rows = rows.filter(step__in=steps)
    for evaluation_id, name, step, mean, std, bagged in rows.values_list(
        "evaluation_id", "score_type__name", "step", "mean", "std", "bagged"
    ):
        out[evaluation_id][name][step] = {
            "mean": _clean(mean), "std": _clean(std), "bagged": _clean(bagged),
        }
    return out


def _fold_row(fr: FoldRun, scores: dict) -> dict:
    return {
        "fold": fr.fold_index, "state": fr.state, "attempt": fr.attempt,
        "worker_host": fr.worker_host, "isolation": fr.isolation,
        "runtime_image": fr.runtime_image,
        "train_time": fr.train_time, "valid_time": fr.valid_time, "test_time": fr.test_time,
        "wall_time": fr.wall_time, "cpu_time": fr.cpu_time, "peak_memory": fr.peak_memory,
        "started_at": fr.started_at, "finished_at": fr.finished_at,
        "error_kind": fr.error_kind, "error": fr.error_message,
        "error_traceback": fr.error_traceback,
        "scores": scores,
    }


def evaluation_detail(evaluation_id: int) -> dict:
    return evaluation_history(evaluation_id, [])[0]


def evaluation_history(evaluation_id: int, earlier_ids) -> tuple[dict, dict[int, dict]]:
    """An evaluation's detail, and the summaries with scores of ``earlier_ids``
    (the evaluations its re-runs replaced): four queries however many."""
    ids = [evaluation_id, *earlier_ids]
    evaluations = {e.id: e for e in Evaluation.objects.filter(id__in=ids)
                   .select_related("problem")}
    if evaluation_id not in evaluations:
        raise Evaluation.DoesNotExist(f"no evaluation {evaluation_id}")
    evaluation = evaluations[evaluation_id]
    fold_scores: dict[int, dict] = defaultdict(lambda: defaultdict(dict))
    for fold_run_id, name, step, value in FoldScore.objects.filter(
            fold_run__evaluation_id=evaluation_id).values_list(
            "fold_run_id", "score_type__name", "step", "value"):
        fold_scores[fold_run_id][name][step] = _clean(value)
    fold_runs = defaultdict(list)
    for fr in FoldRun.objects.filter(evaluation_id__in=ids).defer(
            "stdout", "stderr", "environment").order_by("evaluation_id", "fold_index"):
        fold_runs[fr.evaluation_id].append(fr)
    scores = _evaluation_scores(ids)
    detail = {
        **evaluation_summary(evaluation, fold_runs[evaluation_id]),
        "limits": evaluation.limits,
        "sandbox_backend": evaluation.sandbox_backend,
        "code_hash": evaluation.code_hash,
        "files": evaluation.files,
        "error_traceback": evaluation.error_traceback,
        "folds": [_fold_row(fr, fold_scores.get(fr.id, {})) for fr in fold_runs[evaluation_id]],
        "scores": scores.get(evaluation_id, {}),
    }
    earlier = {i: {**evaluation_summary(evaluations[i], fold_runs[i]), "scores": scores.get(i, {})}
               for i in earlier_ids if i in evaluations}
    return detail, earlier


def _fold_totals(fold_runs) -> dict:
    """Times summed and the peak memory over the scored folds (None: none scored)."""
    done = [fr for fr in fold_runs if fr.state == "scored"]
    return {
        "n_folds": len(fold_runs), "n_folds_done": len(done),
        "train_time": sum(fr.train_time or 0 for fr in done) if done else None,
        "valid_time": sum(fr.valid_time or 0 for fr in done) if done else None,
        "test_time": sum(fr.test_time or 0 for fr in done) if done else None,
        "cpu_time": sum(fr.cpu_time or 0 for fr in done) if done else None,
        "peak_memory": max((fr.peak_memory or 0 for fr in done), default=None),
    }


def evaluation_summary(evaluation: Evaluation, fold_runs=None) -> dict:
    fold_runs = list(fold_runs if fold_runs is not None
                     else evaluation.fold_runs.only(*FOLD_TIME_FIELDS))
    return {
        "id": evaluation.id, "problem": evaluation.problem.name, "state": evaluation.state,
        "error_kind": evaluation.error_kind, "error": evaluation.error_message,
        "created_at": evaluation.created_at, "started_at": evaluation.started_at,
        "finished_at": evaluation.finished_at,
        **_fold_totals(fold_runs),
    }


def _fold_runs_by_evaluation(evaluation_ids) -> dict[int, list]:
    fold_runs = defaultdict(list)
    for fr in FoldRun.objects.filter(evaluation_id__in=evaluation_ids).only(
            *FOLD_TIME_FIELDS).order_by("evaluation_id", "fold_index"):
        fold_runs[fr.evaluation_id].append(fr)
    return fold_runs


def evaluation_summaries(evaluation_ids) -> dict[int, dict]:
    """Summaries with scores for many evaluations in a fixed number of queries."""
    evaluations = Evaluation.objects.filter(id__in=evaluation_ids).select_related(
        "problem").only(*SUMMARY_FIELDS)
    fold_runs = _fold_runs_by_evaluation(evaluation_ids)
    scores = _evaluation_scores(evaluation_ids)
    return {
        e.id: {**evaluation_summary(e, fold_runs[e.id]), "scores": scores.get(e.id, {})}
        for e in evaluations
    }


def leaderboard_summaries(evaluation_ids) -> dict[int, dict]:
    """What a leaderboard row shows of each *scored* evaluation: validation and
    test scores and the fold totals (three queries, no logs or blobs)."""
    scored = list(Evaluation.objects.filter(id__in=evaluation_ids, state="scored")
                  .values_list("id", flat=True))
    fold_runs = _fold_runs_by_evaluation(scored)
    scores = _evaluation_scores(scored, steps=("valid", "test"))
    return {
        evaluation_id: {"scores": scores.get(evaluation_id, {}),
                        **_fold_totals(fold_runs[evaluation_id])}
        for evaluation_id in scored
    }


def evaluation_states(evaluation_ids) -> dict[int, dict]:
    """State, error kind, creation and end of many evaluations (one query)."""
    return {
        row["id"]: row for row in Evaluation.objects.filter(id__in=evaluation_ids).values(
            "id", "state", "error_kind", "created_at", "finished_at")
    }


def scored_evaluation_ids(evaluation_ids) -> list[int]:
    """Those of ``evaluation_ids`` (ids, or a query of ids) that are scored,
    in id order (one query)."""
    return list(Evaluation.objects.scored().filter(id__in=evaluation_ids).order_by("id")
                .values_list("id", flat=True))


def queue_positions(evaluation_ids) -> dict[int, int]:
    """For queued evaluations: how many fold runs of other evaluations are
    queued ahead of their first queued fold (the sandbox queue is shared).
    One query, with the count for each evaluation as a subquery."""
    from django.db.models import Count, OuterRef, Subquery
    from django.db.models.functions import Coalesce

    queued = FoldRun.objects.filter(state="queued")
    first = (queued.filter(evaluation_id=OuterRef("evaluation_id"))
             .order_by("queued_at").values("queued_at")[:1])
    ahead = (queued.filter(queued_at__lt=OuterRef("queued_at"))
             .exclude(evaluation_id=OuterRef("evaluation_id"))
             .order_by().values("state").annotate(n=Count("id")).values("n"))
    return dict(queued.filter(evaluation_id__in=evaluation_ids, queued_at=Subquery(first))
                .annotate(ahead=Coalesce(Subquery(ahead), 0))
                .values_list("evaluation_id", "ahead"))


def evaluation_files(evaluation_id: int) -> dict[str, bytes]:
    """The submitted files of an evaluation, by name."""
    from datarun import storage

    evaluation = Evaluation.objects.get(id=evaluation_id)
    return {name: storage.blob_get(digest) for name, digest in sorted(evaluation.files.items())}


def starting_kit_files(problem_name: str) -> dict[str, bytes]:
    """What a participant downloads: problem.py, the README and notebooks, the
    starting kit's files and the public data (``data/train*`` and a public
    ``data/test*`` that is not the private test set: see
    :mod:`datarun.public_split`), with ``public_split.json`` saying where the
    public test set comes from. Never the private test data."""
    from datarun import storage

    problem = Problem.objects.get(name=problem_name)
    prepared = storage.resolve(problem.storage_dir)
    kit = prepared / "kit"
    out = {}
    for path in sorted(kit.rglob("*")):
        relative = path.relative_to(kit).as_posix()
        if not path.is_file():
            continue
        top = relative.split("/")[0]
        if (relative.startswith("submissions/starting_kit/")
                or (top == relative and not relative.startswith("."))):
            out[f"{problem.name}/{relative}"] = path.read_bytes()
    if problem.environment_id is not None:
        # The exact packages the folds run with, installable as they are.
        environment = problem.environment
        lock = environments.Lock.from_json(environment.requirements, environment.packages,
                                           environment.python)
        name = environments.KIT_LOCK_FILE
        out[f"{problem.name}/{name}"] = (
            f"# The packages this problem's folds run with (Python {environment.python}),\n"
            f"# environment {environment.lock_hash}. `datarun test` here runs in them; or\n"
            f"#   pip install --require-hashes -r {name}\n{lock.text}").encode()
    if problem.pool_id is None:
        # A sensitive-data problem's data never leaves its pool.
        data_dir, record = ramp_kits.public_data(prepared)
        # With the folders of the kit's data the workflow reads (images).
        for path in sorted(data_dir.rglob("*")) if data_dir.is_dir() else []:
            if path.is_file():
                out[f"{problem.name}/data/{path.relative_to(data_dir).as_posix()}"] = (
                    path.read_bytes())
        out[f"{problem.name}/{public_split.KIT_RECORD_FILE}"] = (
            json.dumps({**record, "about": PUBLIC_SPLIT_ABOUT}, indent=2) + "\n").encode()
    return out


PUBLIC_SPLIT_ABOUT = (
    "data/ holds a public training set and a public test set so that `datarun test` and "
    "`ramp-test` run here as is. The public test set is not the private test set the "
    "server scores 'test' on: organiser-provided, or carved from the training data by "
    "the rule above. Test scores here are therefore not the leaderboard's.")


def running_fold_runs() -> list[dict]:
    """Folds running now, for the organiser's queue page."""
    return list(
        FoldRun.objects.filter(state="running").order_by("started_at").values(
            "id", "evaluation_id", "fold_index", "attempt", "worker_host", "started_at",
            "heartbeat_at")
    )


def queued_fold_runs_count() -> int:
    return FoldRun.objects.filter(state="queued").count()


def problem_names() -> list[str]:
    """Every problem's name, for choosing one when creating an event."""
    return list(Problem.objects.order_by("name").values_list("name", flat=True))


def platform_queues() -> list[str]:
    """The Celery queues the platform sends tasks to."""
    from django.conf import settings

    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE}
                  | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()})


def celery_workers(timeout: float = 1.0) -> dict:
    """The Celery workers that answer within ``timeout`` seconds: node name,
    queues, pool concurrency; ``unread_queues``: the platform's queues none of
    them reads. ``error`` says why nothing could be asked (the broker is
    down); the call never waits much longer than twice ``timeout``."""
    from celery import current_app as app
    from kombu.exceptions import OperationalError

    with app.connection_for_write() as connection:
        try:
            # Fail fast instead of kombu's default endless reconnecting.
            connection.ensure_connection(max_retries=1, timeout=timeout)
            replies = app.control.ping(timeout=timeout, connection=connection)
            names = sorted(name for reply in replies for name in reply)
            queues, stats = {}, {}
            if names:
                # Asking known nodes returns as soon as they have all answered.
                inspect = app.control.inspect(destination=names, timeout=timeout,
                                              connection=connection)
                queues = inspect.active_queues() or {}
                stats = inspect.stats() or {}
        except (OperationalError, OSError) as exc:
            return {"workers": [], "unread_queues": [],
                    "error": f"the broker did not answer: {exc}"}
    workers = []
    for name in names:
        pool = (stats.get(name) or {}).get("pool") or {}
        workers.append({
            "name": name,
            "queues": sorted(q["name"] for q in queues.get(name) or []),
            "concurrency": pool.get("max-concurrency"),
            "pid": (stats.get(name) or {}).get("pid"),
        })
    read = {queue for worker in workers for queue in worker["queues"]}
    unread = [queue for queue in platform_queues() if queue not in read] if workers else []
    return {"workers": workers, "unread_queues": unread, "error": None}
