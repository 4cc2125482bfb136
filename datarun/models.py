"""The evaluation service's records: problems, evaluations, fold runs, scores."""
from django.conf import settings
from django.db import models

from datarun.states import ErrorKind, RunState, check_transition


class Dataset(models.Model):
    """A named dataset; its content lives in immutable versions."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    # The software-defined dataset's spec (parsed YAML), empty for uploads.
    spec = models.JSONField(default=dict, blank=True)
    # Seconds between re-checks of the spec's sources (null: never).
    refresh_interval_s = models.PositiveIntegerField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    """Immutable content: the same source bytes (and transform) always give
    the same ``manifest_hash``, hence the same version."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, ... within the dataset")
    manifest_hash = models.CharField(max_length=64, help_text="sha256 of the sorted "
                                     "(file name, sha256) list and the transform")
    # The materialised table (Parquet), storage-relative, and its sha256.
    table_path = models.CharField(max_length=500)
    table_sha256 = models.CharField(max_length=64)
    n_rows = models.BigIntegerField()
    size_bytes = models.BigIntegerField(help_text="sum of the source files' sizes")
    schema = models.JSONField(help_text="[{name, type, nullable}] from DuckDB")
    transform_sql = models.TextField(blank=True)
    sources = models.JSONField(default=list, help_text="where each file came from")
    croissant = models.JSONField(help_text="Croissant 1.1 JSON-LD, validated at creation")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number"),
            models.UniqueConstraint(fields=["dataset", "manifest_hash"],
                                    name="dataset_version_content"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}@{self.number}"


class DatasetFile(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64, help_text="also its blob in storage")
    size_bytes = models.BigIntegerField()
    source = models.CharField(max_length=1000, help_text="upload, path, http(s) or s3 URL")
    encoding_format = models.CharField(max_length=100, default="text/csv")

    class Meta:
        ordering = ["version", "name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="dataset_file_unique"),
        ]


class Split(models.Model):
    """A version's rows assigned once to train/test, CV folds and named splits,
    materialised as a per-row table (never recomputed silently)."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="splits")
    spec = models.JSONField()
    spec_hash = models.CharField(max_length=64)
    table_path = models.CharField(max_length=500, help_text="Parquet: row, split, fold")
    split_hash = models.CharField(max_length=64, help_text="sha256 of the per-row table")
    summary = models.JSONField(default=dict, help_text="rows per split and fold")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "spec_hash"], name="split_unique"),
        ]


class RuntimeEnvironment(models.Model):
    """The packages a problem's folds run with, locked (exact versions and
    hashes) and named by the lock's hash: one venv per distinct lock, shared
    by the problems that declare the same packages
    (:mod:`datarun.environments`)."""

    class State(models.TextChoices):
        QUEUED = "queued"
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    lock_hash = models.CharField(max_length=64, unique=True)
    requirements = models.TextField(help_text="the declared lines it was resolved from")
    packages = models.JSONField(help_text="[{name, version, sha256, filename}], by name")
    python = models.CharField(max_length=20, help_text="the interpreter's version")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    error = models.TextField(blank=True, help_text="why the build failed: package and reason")
    log = models.TextField(blank=True, help_text="the build's log (pip's output)")
    size_bytes = models.BigIntegerField(null=True)
    build_seconds = models.FloatField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When its last build started: a build "building" for longer than
    # DATARUN_ENV_BUILD_TIMEOUT_S was lost with its worker and is started again.
    build_started_at = models.DateTimeField(null=True)
    built_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return self.lock_hash[:12]


class Problem(models.Model):
    class Kind(models.TextChoices):
        RAMP_KIT = "ramp_kit", "RAMP kit"
        DECLARATIVE = "declarative", "declarative (dataset version + spec)"

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.RAMP_KIT)
    # Storage-relative folder holding the kit and the prepared data.
    storage_dir = models.CharField(max_length=500)
    workflow_elements = models.JSONField(help_text="file names a submission must contain")
    prediction_shape = models.JSONField(help_text="shape of one row of predictions")
    n_train = models.PositiveIntegerField()
    n_test = models.PositiveIntegerField()
    n_folds = models.PositiveIntegerField()
    data_hash = models.CharField(max_length=64)
    folds_hash = models.CharField(max_length=64)
    # Declarative problems: what they were built from.
    dataset_version = models.ForeignKey(DatasetVersion, null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="problems")
    split = models.ForeignKey(Split, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="problems")
    spec = models.JSONField(default=dict, blank=True, help_text="declarative spec")
    # A sensitive-data problem: prepared on this pool's machines, where its
    # data and labels stay; the platform keeps only metadata, hashes and the
    # published starting kit, and the pool scores its folds.
    pool = models.ForeignKey("ComputePool", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="problems")
    # Such a problem's fold inputs by hash, one {input: sha256} per fold.
    fold_inputs = models.JSONField(default=list, blank=True)
    # Its own packages (None: the shared runtime). Its folds wait until the
    # environment is built and the kit's data prepared in it: then
    # ``environment_prepared`` is the environment's lock hash.
    environment = models.ForeignKey(RuntimeEnvironment, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="problems")
    environment_prepared = models.CharField(max_length=64, blank=True)
    # Queue a run of the starting kit once the environment is ready (a kit upload).
    starting_kit_pending = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ScoreType(models.Model):
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="score_types")
    index = models.PositiveSmallIntegerField(help_text="0 is the official score")
    name = models.CharField(max_length=100)
    is_lower_the_better = models.BooleanField()
    precision = models.PositiveSmallIntegerField()
    minimum = models.FloatField(null=True, help_text="null when unbounded")
    maximum = models.FloatField(null=True, help_text="null when unbounded")

    class Meta:
        ordering = ["problem", "index"]
        constraints = [
            models.UniqueConstraint(fields=["problem", "index"], name="score_type_index_unique"),
            models.UniqueConstraint(fields=["problem", "name"], name="score_type_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.problem.name}:{self.name}"


class StatefulRun(models.Model):
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.NEW)
    error_kind = models.CharField(max_length=12, choices=ErrorKind.choices, blank=True)
    error_message = models.TextField(blank=True)
    error_traceback = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        abstract = True

    def set_state(self, new: str) -> None:
        check_transition(self.state, new, type(self).__name__)
        self.state = new


class EvaluationQuerySet(models.QuerySet):
    def scored(self):
        return self.filter(state=RunState.SCORED)


class ComputePool(models.Model):
    """Machines an organiser registers to run folds: a runner anywhere that
    holds the pool's token pulls the pool's folds over HTTPS. Evaluations with
    no pool go to the built-in pool (the workers Celery dispatches to)."""

    class Sandbox(models.TextChoices):
        LOCAL = "local"
        DOCKER = "docker"

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    cpus_per_slot = models.FloatField(default=1.0, help_text="CPUs of one fold slot")
    memory_mb_per_slot = models.PositiveIntegerField(default=2048,
                                                     help_text="memory of one fold slot (MiB)")
    gpus_per_slot = models.PositiveSmallIntegerField(default=0)
    sandbox = models.CharField(max_length=20, choices=Sandbox.choices, default=Sandbox.DOCKER)
    concurrency = models.PositiveSmallIntegerField(default=1,
                                                   help_text="fold slots per runner")
    # sha256 of the runner token (shown once, at creation or reset); the
    # generation invalidates every fold token issued under an earlier token.
    token_hash = models.CharField(max_length=64, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False)
    token_generation = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class PoolRunner(models.Model):
    """A runner of a pool as it last described itself (from its claims)."""

    pool = models.ForeignKey(ComputePool, on_delete=models.CASCADE, related_name="runners")
    host = models.CharField(max_length=200)
    cpus = models.FloatField(null=True)
    memory_mb = models.PositiveIntegerField(null=True)
    gpus = models.JSONField(default=list, blank=True, help_text="[{name, memory_mb}, ...]")
    sandbox = models.CharField(max_length=20, blank=True)
    software = models.JSONField(default=dict, blank=True)
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pool", "host"],
                                               name="one_runner_per_pool_and_host")]


class Evaluation(StatefulRun):
    """One evaluation of one set of submission files on every fold of a problem."""

    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="evaluations")
    files = models.JSONField(help_text="file name -> sha256 of its content")
    code_hash = models.CharField(max_length=64)
    limits = models.JSONField()
    sandbox_backend = models.CharField(max_length=20)
    # A re-score of the same files on another problem (e.g. a newer dataset
    # version): the evaluation it re-scores, to show each score's drift.
    rescore_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="rescores")
    # A reproduction: the same files, limits and problem inputs run again to
    # check that the predictions come out identical.
    reproduces = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="reproductions")
    started_by = models.CharField(max_length=150, blank=True,
                                  help_text="who asked for this run (user name)")
    # What the run was given, recorded when it is created: problem, data and
    # fold hashes, dataset version, sandbox, configured image, server packages.
    metadata = models.JSONField(default=dict, blank=True)
    # Bytes of log lines kept for the whole run, and whether some were cut.
    log_bytes = models.BigIntegerField(default=0)
    logs_truncated = models.BooleanField(default=False)
    # Where its folds run: a compute pool's runners pull them; None is the
    # built-in pool, dispatched by Celery.
    pool = models.ForeignKey(ComputePool, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="evaluations")
    # Whose work it is (databoard: the team), so that a pool serves its
    # queue fairly: one owner's many submissions do not starve the others.
    owner = models.CharField(max_length=100, blank=True)

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["state"])]


class FoldRun(StatefulRun):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="fold_runs")
    fold_index = models.PositiveSmallIntegerField()
    attempt = models.PositiveSmallIntegerField(default=0)
    worker_host = models.CharField(max_length=200, blank=True)
    # When the fold was first queued: its place in the queue, which a re-run
    # or a re-sent message does not change.
    queued_at = models.DateTimeField(null=True)
    # When its message was last handed to the broker; null while a queued
    # fold's message is still owed (the broker was down): the reaper sends it.
    dispatched_at = models.DateTimeField(null=True)
    heartbeat_at = models.DateTimeField(null=True)
    isolation = models.CharField(max_length=200, blank=True)
    runtime_image = models.CharField(
        max_length=200, blank=True,
        help_text="image tag and content digest the fold ran in (Docker backend)")
    train_time = models.FloatField(null=True)
    valid_time = models.FloatField(null=True)
    test_time = models.FloatField(null=True)
    wall_time = models.FloatField(null=True)
    cpu_time = models.FloatField(null=True)
    peak_memory = models.BigIntegerField(null=True, help_text="bytes, whole process tree")
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    logs_truncated = models.BooleanField(default=False)
    # The worker's software when it claimed the fold: Python, key packages, platform.
    environment = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["evaluation", "fold_index"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "fold_index"], name="fold_run_unique"),
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]


class Step(models.TextChoices):
    TRAIN = "train"
    VALID = "valid"
    TEST = "test"


class FoldScore(models.Model):
    fold_run = models.ForeignKey(FoldRun, on_delete=models.CASCADE, related_name="scores")
    score_type = models.ForeignKey(ScoreType, on_delete=models.CASCADE)
    step = models.CharField(max_length=5, choices=Step.choices)
    value = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fold_run", "score_type", "step"], name="fold_score_unique"
            ),
        ]


class EvaluationScore(models.Model):
    """Scores over all folds: mean and std of fold scores, and the bagged score."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="scores")
    score_type = models.ForeignKey(ScoreType, on_delete=models.CASCADE)
    step = models.CharField(max_length=5, choices=Step.choices)
    mean = models.FloatField(null=True)
    std = models.FloatField(null=True)
    bagged = models.FloatField(null=True, help_text="null for the train step")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "score_type", "step"], name="evaluation_score_unique"
            ),
        ]


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only: add a new row instead")


class RunMetric(models.Model):
    """One measurement of a run (MLflow's model: key, value, step, timestamp).
    Rows are only ever added: a re-score or a re-run adds rows, it never
    changes one."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="metrics")
    fold_run = models.ForeignKey(FoldRun, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField(null=True)
    step = models.IntegerField(default=0, help_text="the fold index for fold metrics")
    timestamp = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["evaluation", "id"]
        indexes = [models.Index(fields=["evaluation", "key"])]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("RunMetric rows are append-only: add a new row instead")
        super().save(*args, **kwargs)


class RunLogLine(models.Model):
    """A line a fold printed, as the worker read it while the fold ran."""

    class Stream(models.TextChoices):
        STDOUT = "stdout"
        STDERR = "stderr"
        NOTE = "note", "platform note"

    fold_run = models.ForeignKey(FoldRun, on_delete=models.CASCADE, related_name="log_lines")
    # Denormalised for reading a whole run in id order with one index.
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE,
                                   related_name="log_lines")
    attempt = models.PositiveSmallIntegerField()
    stream = models.CharField(max_length=6, choices=Stream.choices)
    at = models.DateTimeField()
    text = models.TextField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["evaluation", "id"]
        indexes = [models.Index(fields=["evaluation", "id"])]


class RunArtifact(models.Model):
    """A file kept for a run in the artifact storage (local or S3-compatible)."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE,
                                   related_name="artifacts")
    fold_run = models.ForeignKey(FoldRun, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="artifacts")
    name = models.CharField(max_length=300, help_text="e.g. submission/estimator.py, "
                            "fold_0/y_pred_test.npy")
    storage_key = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["evaluation", "name"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "name"], name="run_artifact_unique"),
        ]


class IdempotentRequest(models.Model):
    """The first answer to a create request sent with an ``Idempotency-Key``
    header: the same user's retry with the same key gets it again instead of
    creating a second thing."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="idempotent_requests")
    key = models.CharField(max_length=200)
    # Method, path and a hash of the body: a key reused for another request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_key"),
        ]
