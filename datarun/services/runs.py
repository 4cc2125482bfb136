"""Tracked runs: what each evaluation was given (metadata), what it measured
(append-only metrics), what it printed (log lines, streamed while folds run)
and what it produced (artifacts); and reproductions of scored runs."""

from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from datarun import storage
from datarun.errors import ApplicationError, InvalidTransition, NotFound
from datarun.models import (
    Evaluation,
    FoldRun,
    Problem,
    RunArtifact,
    RunLogLine,
    RunMetric,
)
from datarun.software import software
from datarun.states import RunState

# A line longer than this is kept in pieces.
MAX_LINE_CHARS = 4000


def run_metadata(*, problem: Problem, files: dict[str, str], code_hash: str, limits: dict,
                 sandbox_backend: str) -> dict:
    """What a run is given, recorded when it is created."""
    meta = {
        "problem": {"name": problem.name, "kind": problem.kind, "title": problem.title,
                    "n_train": problem.n_train, "n_test": problem.n_test,
                    "n_folds": problem.n_folds},
        "data_hash": problem.data_hash,
        "folds_hash": problem.folds_hash,
        "code_hash": code_hash,
        "files": dict(files),
        "limits": dict(limits),
        "sandbox": {"backend": sandbox_backend},
        "server": software(),
    }
    if problem.dataset_version_id:
        version = problem.dataset_version
        meta["dataset_version"] = {"name": str(version),
                                   "manifest_hash": version.manifest_hash,
                                   "table_sha256": version.table_sha256}
    if problem.split_id:
        meta["split_hash"] = problem.split.split_hash
    if problem.environment_id:
        # Its folds run in this environment (the runner reads the lock hash
        # from here), a reproduction too.
        environment = problem.environment
        meta["environment"] = {"lock_hash": environment.lock_hash,
                               "python": environment.python,
                               "packages": {p["name"]: p["version"]
                                            for p in environment.packages}}
    if sandbox_backend == "docker" and settings.DATARUN_RUNTIME_IMAGE:
        # Else each runner picks the image matching its harness, and records
        # its digest with each fold.
        meta["sandbox"]["image"] = settings.DATARUN_RUNTIME_IMAGE
    return meta


# --- metrics ------------------------------------------------------------------------

def metrics_add(*, evaluation_id: int, values: dict[str, float | None], step: int = 0,
                fold_run_id: int | None = None, at: datetime | None = None) -> None:
    """Add one row per key; rows already there are never changed."""
    at = at or timezone.now()
    RunMetric.objects.bulk_create(
        RunMetric(evaluation_id=evaluation_id, fold_run_id=fold_run_id, key=key,
                  value=None if value is None else float(value), step=step, timestamp=at)
        for key, value in values.items()
    )


def fold_metrics(outcome, scores: dict | None) -> dict[str, float | None]:
    """A finished fold's measurements and scores as metric keys."""
    values = {name: getattr(outcome, name) for name in (
        "train_time", "valid_time", "test_time", "wall_time", "cpu_time", "peak_memory")}
    if getattr(outcome, "gpu_memory_peak", None) is not None:
        values["gpu_memory_peak"] = outcome.gpu_memory_peak
    for step, by_name in (scores or {}).items():
        for name, value in by_name.items():
            values[f"{step}/{name}"] = value
    return values


# --- logs ----------------------------------------------------------------------------

def _split_long(text: str) -> list[str]:
    return [text[i:i + MAX_LINE_CHARS] for i in range(0, max(len(text), 1), MAX_LINE_CHARS)]


def run_log_append(*, fold_run_id: int, attempt: int, lines: list[tuple[str, str]],
                   at: datetime | None = None) -> bool:
    """Keep the lines ``[(stream, text), ...]`` a fold printed. Returns False
    once the run's log is full (the caller may stop reading): the first
    refused line adds a note saying where the log was cut."""
    if not lines:
        return True
    at = at or timezone.now()
    fold_run = FoldRun.objects.filter(id=fold_run_id, attempt=attempt,
                                      state=RunState.RUNNING).only(
        "id", "evaluation_id", "fold_index").first()
    if fold_run is None:
        return False  # cancelled, or taken over by another attempt: stop reading
    rows = [(stream, piece) for stream, text in lines for piece in _split_long(text)]
    limit = settings.DATARUN_RUN_LOG_LIMIT_BYTES
    sizes = [len(text.encode()) + 1 for _, text in rows]

    def reserve(size: int) -> bool:
        # A conditional increment: concurrent folds of one run never pass the
        # limit together; once a line was cut, nothing later is kept (no
        # silent gaps).
        return bool(Evaluation.objects.filter(
            id=fold_run.evaluation_id, logs_truncated=False, log_bytes__lte=limit - size,
        ).update(log_bytes=F("log_bytes") + size))

    with transaction.atomic():
        # The whole batch at once; line by line only when it would not fit.
        if reserve(sum(sizes)):
            n_kept = len(rows)
        else:
            n_kept = 0
            while n_kept < len(rows) and reserve(sizes[n_kept]):
                n_kept += 1
        _insert_lines(fold_run, attempt, at, rows[:n_kept])
        if n_kept == len(rows):
            return True
        if Evaluation.objects.filter(id=fold_run.evaluation_id,
                                     logs_truncated=False).update(logs_truncated=True):
            RunLogLine.objects.create(
                fold_run_id=fold_run.id, evaluation_id=fold_run.evaluation_id,
                attempt=attempt, stream=RunLogLine.Stream.NOTE, at=at,
                text=f"log cut: this run printed more than {_size(limit)}, the most kept "
                     f"per run; later lines (from fold {fold_run.fold_index} on) are not kept")
    return False


def _insert_lines(fold_run: FoldRun, attempt: int, at: datetime,
                  rows: list[tuple[str, str]]) -> None:
    """Multi-row INSERTs: a fold may print tens of thousands of lines, and a
    model instance or a round trip per line costs more than the lines
    (bench/log_stream.py)."""
    if not rows:
        return
    meta = RunLogLine._meta
    columns = [meta.get_field(name).column for name in (
        "fold_run", "evaluation", "attempt", "stream", "at", "text")]
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(quote, columns))}) VALUES "
    one = f"({', '.join(['%s'] * len(columns))})"
    when = connection.ops.adapt_datetimefield_value(at)
    # Many rows per statement, within the backend's limit on parameters.
    per_statement = max(1, min(1000, (connection.features.max_query_params or 6000)
                               // len(columns)))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            cursor.execute(head + ", ".join([one] * len(chunk)), [
                value for stream, text in chunk
                for value in (fold_run.id, fold_run.evaluation_id, attempt, stream, when, text)])


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} bytes"


# --- artifacts -----------------------------------------------------------------------

def artifact_add(*, evaluation_id: int, name: str, data: bytes,
                 fold_run_id: int | None = None) -> RunArtifact:
    key = storage.artifact_key(evaluation_id, name)
    storage.artifact_put(key, data)
    return RunArtifact.objects.create(
        evaluation_id=evaluation_id, fold_run_id=fold_run_id, name=name, storage_key=key,
        sha256=storage.sha256_bytes(data), size_bytes=len(data))


def artifact_read(*, evaluation_id: int, name: str) -> tuple[RunArtifact, bytes]:
    artifact = RunArtifact.objects.filter(evaluation_id=evaluation_id, name=name).first()
    if artifact is None:
        raise NotFound(f"run {evaluation_id} has no artifact {name!r}")
    return artifact, storage.artifact_get(artifact.storage_key)


# --- reproductions -------------------------------------------------------------------

@transaction.atomic
def evaluation_reproduce(*, evaluation_id: int, started_by: str = "") -> Evaluation:
    """Run a scored evaluation again on its recorded inputs: the same files,
    limits and problem (whose data and folds must not have changed)."""
    from datarun.services.evaluations import evaluation_create

    old = Evaluation.objects.select_related("problem").get(id=evaluation_id)
    if old.state != RunState.SCORED:
        raise InvalidTransition(f"only a scored run can be reproduced; run {old.id} is "
                                f"{old.state}")
    problem = old.problem
    if problem.pool_id is not None:
        raise ApplicationError(
            f"run {old.id} cannot be reproduced here: its predictions stay on the data "
            "owner's machines, which compare nothing they do not send")
    recorded = old.metadata or {}
    for key in ("data_hash", "folds_hash"):
        if recorded.get(key) and recorded[key] != getattr(problem, key):
            raise ApplicationError(
                f"run {old.id} cannot be reproduced: the problem's {key.replace('_', ' ')} "
                f"changed since it ran ({recorded[key][:12]} then, "
                f"{getattr(problem, key)[:12]} now)")
    then = (recorded.get("environment") or {}).get("lock_hash", "")
    now = problem.environment.lock_hash if problem.environment_id else ""
    if then != now:
        def where(lock_hash: str) -> str:
            return f"environment {lock_hash[:12]}" if lock_hash else "the shared runtime"

        raise ApplicationError(f"run {old.id} cannot be reproduced: it ran in {where(then)}, "
                               f"the problem now runs in {where(now)}")
    files = {name: storage.blob_get(digest) for name, digest in old.files.items()}
    return evaluation_create(problem=problem, files=files, limits=old.limits,
                             started_by=started_by, reproduces=old, pool=old.pool,
                             owner=old.owner)
