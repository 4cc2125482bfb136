"""The life of a fold run: claim, heartbeat, finish, score; and the reaper."""

import logging
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from datarun import contract, ramp_kits, scoring, signals, storage
from datarun.broker import waiting_first_args
from datarun.contract import FoldOutcome, FoldTicket
from datarun.errors import ApplicationError, NotFound
from datarun.models import (
    ComputePool,
    Evaluation,
    EvaluationScore,
    FoldRun,
    FoldScore,
    Problem,
    RunArtifact,
    ScoreType,
)
from datarun.services import runs
from datarun.services.evaluations import (
    RUN_FOLD_TASK,
    SCORE_TASK,
    send_fold_tasks,
    send_scoring_task,
)
from datarun.states import FINAL_STATES, ErrorKind, RunState

logger = logging.getLogger(__name__)

FOLD_TOKEN_SALT = "datarun.fold-token"


class FoldTokenInvalid(ApplicationError):
    code = "fold_token_invalid"
    status_code = 401


class ClaimLost(ApplicationError):
    """The fold is no longer this runner's: cancelled, finished, or taken over
    by a later attempt after its heartbeat went stale."""

    code = "claim_lost"
    status_code = 409


def _heartbeat_is_stale(fold_run: FoldRun, now) -> bool:
    timeout = timedelta(seconds=settings.DATARUN_HEARTBEAT_TIMEOUT)
    return fold_run.heartbeat_at is None or fold_run.heartbeat_at < now - timeout


@transaction.atomic
def fold_run_claim(*, fold_run_id: int, environment: dict) -> FoldTicket | None:
    """Move a queued fold of the built-in pool to running for the runner
    described by ``environment`` (host, sandbox backend, software); None if
    there is nothing to do.

    A redelivered task finds its fold finished, or running with a fresh
    heartbeat, and gets None.
    """
    try:
        fold_run = FoldRun.objects.select_for_update().get(id=fold_run_id)
    except FoldRun.DoesNotExist:
        return None
    evaluation = Evaluation.objects.select_for_update().get(id=fold_run.evaluation_id)
    if evaluation.pool_id is not None:
        return None  # a compute pool's runners pull it
    return _claim(fold_run, evaluation, environment)


def fold_run_claim_next(*, pool: ComputePool | None, environment: dict) -> FoldTicket | None:
    """The next fold of ``pool`` (None: the built-in pool) for a runner that
    pulls work, claimed for it; None when there is none it can run.

    Oldest first, but one owner (team) at a time: among the queued folds, the
    owner with the fewest folds running in the pool goes first, so that one
    team's 50 submissions do not starve the others. Folds needing more GPUs
    than the runner advertises are left to others. Folds whose runner went
    silent are taken over. On PostgreSQL, rows another claim holds are
    skipped (``FOR UPDATE SKIP LOCKED``), so runners never wait on each other.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.DATARUN_HEARTBEAT_TIMEOUT)
    gpus = len(environment.get("slot_gpus", environment.get("gpus")) or [])
    waiting = (Q(state=RunState.QUEUED)
               | Q(state=RunState.RUNNING, heartbeat_at__lt=stale_before))
    candidates = list(
        FoldRun.objects.filter(waiting, evaluation__pool=pool,
                               evaluation__state__in=[RunState.QUEUED, RunState.RUNNING])
        .order_by("queued_at", "id")
        .values("id", "evaluation_id", "evaluation__owner", "evaluation__limits")[:500])
    running = {row["evaluation__owner"]: row["n"] for row in
               FoldRun.objects.filter(state=RunState.RUNNING, evaluation__pool=pool,
                                      heartbeat_at__gte=stale_before)
               .values("evaluation__owner").annotate(n=Count("id"))}
    order = sorted(range(len(candidates)),
                   key=lambda i: (running.get(candidates[i]["evaluation__owner"], 0), i))
    for i in order:
        row = candidates[i]
        if int((row["evaluation__limits"] or {}).get("gpus", 0)) > gpus:
            continue
        with transaction.atomic():
            fold_run = FoldRun.objects.select_for_update(skip_locked=True).filter(
                id=row["id"]).first()
            if fold_run is None:
                continue  # another runner is claiming it
            evaluation = Evaluation.objects.select_for_update().get(id=row["evaluation_id"])
            ticket = _claim(fold_run, evaluation, environment)
            if ticket is not None:
                return ticket
    return None


def _claim(fold_run: FoldRun, evaluation: Evaluation, environment: dict) -> FoldTicket | None:
    """The claim itself, with both rows locked."""
    now = timezone.now()
    if fold_run.state in FINAL_STATES:
        return None
    if evaluation.state in FINAL_STATES:
        fold_run.set_state(RunState.CANCELLED)
        fold_run.finished_at = now
        fold_run.save(update_fields=["state", "finished_at"])
        return None
    if fold_run.state == RunState.RUNNING:
        claim_id = environment.get("claim_id")
        if claim_id and fold_run.environment.get("claim_id") == claim_id:
            # The same claim sent again (its answer was lost): the same ticket.
            return _signed_ticket(fold_run, evaluation)
        if not _heartbeat_is_stale(fold_run, now):
            return None
        fold_run.set_state(RunState.QUEUED)  # taken over from a lost worker
    fold_run.set_state(RunState.RUNNING)
    fold_run.attempt += 1
    fold_run.worker_host = str(environment.get("host", ""))[:200]
    # The runner's own: its sandbox backend and software may differ from the server's.
    fold_run.environment = environment
    fold_run.started_at = fold_run.heartbeat_at = now
    fold_run.save(update_fields=["state", "attempt", "worker_host", "started_at",
                                 "heartbeat_at", "environment"])
    if evaluation.state == RunState.QUEUED:
        evaluation.set_state(RunState.RUNNING)
        evaluation.started_at = now
        evaluation.save(update_fields=["state", "started_at"])
    return _signed_ticket(fold_run, evaluation)


def _signed_ticket(fold_run: FoldRun, evaluation: Evaluation) -> FoldTicket:
    ticket = _ticket(fold_run, evaluation)
    ticket.expires_at = time.time() + float(evaluation.limits["wall_time_s"]) \
        + settings.DATARUN_FOLD_TOKEN_GRACE_S
    claims = {"f": fold_run.id, "a": fold_run.attempt, "e": int(ticket.expires_at)}
    if evaluation.pool_id is not None:
        # A reset of the pool's token invalidates the fold tokens issued under it.
        claims.update(p=evaluation.pool_id, g=evaluation.pool.token_generation)
    ticket.token = signing.dumps(claims, salt=FOLD_TOKEN_SALT)
    return ticket


def _ticket(fold_run: FoldRun, evaluation: Evaluation) -> FoldTicket:
    """The fold's ticket as the records say (without its token)."""
    problem = evaluation.problem
    if problem.pool_id is not None:  # the data is on the pool's machines
        inputs = dict(problem.fold_inputs[fold_run.fold_index])
        pool_scored = {"scoring": contract.RUNNER_SCORING, "problem": problem.name,
                       "data_hash": problem.data_hash}
    else:
        inputs = ramp_kits.fold_input_digests(storage.resolve(problem.storage_dir),
                                              fold_run.fold_index)
        pool_scored = {}
    return FoldTicket(
        fold_run_id=fold_run.id,
        evaluation_id=evaluation.id,
        fold_index=fold_run.fold_index,
        attempt=fold_run.attempt,
        inputs=inputs,
        files=dict(evaluation.files),
        limits=dict(evaluation.limits),
        n_train=problem.n_train,
        n_test=problem.n_test,
        prediction_shape=list(problem.prediction_shape),
        environment=((evaluation.metadata or {}).get("environment") or {}).get("lock_hash", ""),
        **pool_scored,
    )


def fold_token_check(*, token: str, fold_run_id: int) -> int:
    """The attempt a fold token was issued for, if it is this fold's and has
    not expired; else :class:`FoldTokenInvalid`."""
    try:
        claims = signing.loads(token, salt=FOLD_TOKEN_SALT)
    except signing.BadSignature:
        raise FoldTokenInvalid("the fold token is not valid: report with the token of "
                               "the ticket that claimed the fold") from None
    if claims.get("f") != fold_run_id:
        raise FoldTokenInvalid(f"the fold token is for another fold, not fold run "
                               f"{fold_run_id}")
    if claims.get("e", 0) < time.time():
        raise FoldTokenInvalid("the fold token has expired: the fold ran past its time "
                               "limit and grace period")
    if "p" in claims and not ComputePool.objects.filter(
            id=claims["p"], token_generation=claims.get("g")).exists():
        raise FoldTokenInvalid("the runner token this fold was claimed with was reset or the "
                               "pool removed: the fold went back to the queue")
    return int(claims["a"])


def _running_fold(fold_run_id: int, attempt: int) -> FoldRun:
    fold_run = FoldRun.objects.select_related("evaluation__problem").filter(
        id=fold_run_id).first()
    if fold_run is None:
        raise NotFound(f"no fold run {fold_run_id}")
    if fold_run.attempt != attempt or fold_run.state != RunState.RUNNING:
        raise ClaimLost(f"fold run {fold_run_id} is no longer claimed by attempt {attempt} "
                        f"(it is {fold_run.state}, attempt {fold_run.attempt}): stop running it")
    return fold_run


def fold_run_input_path(*, fold_run_id: int, attempt: int, digest: str) -> Path:
    """The local file of one of a running fold's inputs or submission files,
    by content hash: a runner may fetch only what its ticket names."""
    fold_run = _running_fold(fold_run_id, attempt)
    evaluation = fold_run.evaluation
    if digest in evaluation.files.values():
        return storage.blob_path(digest)
    if evaluation.problem.pool_id is not None:
        raise NotFound(f"fold run {fold_run_id}'s data is not on the platform: the pool's "
                       "runners read it from their own copy of the problem")
    prepared = storage.resolve(evaluation.problem.storage_dir)
    digests = ramp_kits.fold_input_digests(prepared, fold_run.fold_index)
    for name, known in digests.items():
        if known == digest:
            return ramp_kits.fold_inputs(prepared, fold_run.fold_index)[name]
    raise NotFound(f"fold run {fold_run_id}'s ticket names no input {digest}")


def fold_run_heartbeat(*, fold_run_id: int, attempt: int) -> bool:
    """Keep a running fold's claim; False when the claim is lost or its
    evaluation is over (another fold failed, or it was cancelled): the
    runner stops the fold and reports nothing."""
    if FoldRun.objects.filter(
        id=fold_run_id, attempt=attempt, state=RunState.RUNNING,
    ).exclude(evaluation__state__in=FINAL_STATES).update(heartbeat_at=timezone.now()):
        return True
    with transaction.atomic():
        # A running fold the evaluation's failure could not lock (it was
        # being written just then) is cancelled here.
        fold_run = FoldRun.objects.select_for_update().filter(
            id=fold_run_id, attempt=attempt, state=RunState.RUNNING).first()
        if fold_run is not None and Evaluation.objects.select_for_update().filter(
                id=fold_run.evaluation_id, state__in=FINAL_STATES).exists():
            _cancel_folds([fold_run], timezone.now())
    return False


def _check_and_score_fold(spec: FoldTicket, outcome: FoldOutcome,
                          problem: Problem | None = None) -> dict | None:
    """Validate the predictions and compute the fold's scores (no lock held)."""
    if outcome.error:
        return None
    if spec.scoring == contract.RUNNER_SCORING:
        return outcome.scores  # scored on the pool, where the labels are
    if problem is None:
        problem = Evaluation.objects.select_related("problem").get(
            id=spec.evaluation_id).problem
    return scoring.check_and_score_fold(_trusted_inputs(problem), spec, outcome)


def _trusted_inputs(problem: Problem) -> ramp_kits.TrustedInputs:
    return ramp_kits.load_trusted(str(storage.resolve(problem.storage_dir)), problem.data_hash)


def fold_run_outcome(*, fold_run_id: int, attempt: int, meta, files: dict[str, bytes]
                     ) -> None:
    """Record what a runner reported for a fold it claimed (see
    :mod:`datarun.contract`); a malformed report records nothing and raises
    :class:`~datarun.errors.ApplicationError` saying what is wrong."""
    fold_run = _running_fold(fold_run_id, attempt)
    ticket = _ticket(fold_run, fold_run.evaluation)
    problem = fold_run.evaluation.problem
    score_types = list(problem.score_types.all())
    try:
        outcome = contract.outcome_from_wire(
            meta, files, max_prediction_bytes=contract.max_prediction_bytes(
                max(ticket.n_train, ticket.n_test), ticket.prediction_shape),
            runner_scored=ticket.scoring == contract.RUNNER_SCORING,
            score_names=tuple(st.name for st in score_types))
    except contract.ContractError as exc:
        raise InvalidOutcome(str(exc)) from None
    if not fold_run_finish(spec=ticket, outcome=outcome, problem=problem,
                           score_types=score_types):
        raise ClaimLost(f"fold run {fold_run_id} was taken over while attempt {attempt} "
                        "reported: its outcome is not recorded")


class InvalidOutcome(ApplicationError):
    code = "invalid_outcome"
    status_code = 400


def fold_run_finish(*, spec: FoldTicket, outcome: FoldOutcome, problem: Problem | None = None,
                    score_types: list | None = None) -> bool:
    """Record a fold's measurements and scores, or its error; score the
    evaluation once its last fold is done. False when the attempt was
    superseded meanwhile (nothing recorded). ``problem`` and its
    ``score_types``, when the caller has them, save reading them again."""
    t0 = time.perf_counter()
    scores = _check_and_score_fold(spec, outcome, problem)
    score_here = _cheap_to_score_here(spec, time.perf_counter() - t0)
    with transaction.atomic():
        return _record_fold(spec, outcome, scores, score_types, score_here=score_here)


def _cheap_to_score_here(spec: FoldTicket, fold_scoring_s: float) -> bool:
    """Whether the evaluation, if this is its last fold, is scored by whoever
    records the fold rather than by the scorer: when scoring the fold was
    cheap (bagged scores cost about as much: the same score functions on as
    many rows) and its predictions are read back from files on this machine,
    not with a round trip each to an S3 bucket (a pool computed them)."""
    return fold_scoring_s < settings.DATARUN_INLINE_SCORING_MAX_S and (
        spec.scoring == contract.RUNNER_SCORING or storage.artifacts_are_local())


def _record_fold(spec: FoldTicket, outcome: FoldOutcome, scores: dict | None,
                 score_types: list | None = None, *, score_here: bool) -> bool:
    # What the submission printed or raised may hold NUL characters, which a
    # text column refuses: they become the replacement mark.
    for name in ("stdout", "stderr", "error", "error_traceback"):
        setattr(outcome, name, getattr(outcome, name).replace("\x00", "\ufffd"))
    now = timezone.now()
    fold_run = FoldRun.objects.select_for_update().get(id=spec.fold_run_id)
    evaluation = Evaluation.objects.select_for_update().get(id=spec.evaluation_id)
    if fold_run.state != RunState.RUNNING or fold_run.attempt != spec.attempt:
        logger.info("fold run %s attempt %s finished after being superseded; ignored",
                    fold_run.id, spec.attempt)
        return False
    for name in ("wall_time", "cpu_time", "peak_memory", "isolation", "runtime_image",
                 "train_time",
                 "valid_time", "test_time", "stdout", "stderr", "logs_truncated"):
        setattr(fold_run, name, getattr(outcome, name))
    fold_run.finished_at = now
    runs.metrics_add(evaluation_id=evaluation.id, fold_run_id=fold_run.id,
                     step=fold_run.fold_index, at=now,
                     values=runs.fold_metrics(outcome, scores))
    if outcome.error:
        fold_run.set_state(RunState.ERROR)
        fold_run.error_kind = outcome.error_kind
        fold_run.error_message = outcome.error
        fold_run.error_traceback = outcome.error_traceback
        fold_run.save()
        if evaluation.state not in FINAL_STATES:
            _fail_evaluation(evaluation, outcome.error_kind, outcome.error,
                             outcome.error_traceback)
        return True
    fold_run.set_state(RunState.SCORED)
    fold_run.save()
    if outcome.bagged is not None:
        # The pool's bagged scores, sent with the fold that completed them.
        evaluation.metadata = {**evaluation.metadata, "pool_bagged": outcome.bagged}
        evaluation.save(update_fields=["metadata"])
    artifacts = []
    for which in ("train", "test") if outcome.y_pred_train is not None else ():
        name = storage.predictions_name(fold_run.fold_index, which)
        data_key = storage.artifact_key(evaluation.id, name)
        array = outcome.y_pred_train if which == "train" else outcome.y_pred_test
        data = storage.predictions_bytes(array)
        # Written under the fold's row lock, by the attempt that is recorded
        # only: a superseded attempt (whose worker came back after the fold
        # was re-run) never replaces the predictions the scores came from.
        storage.artifact_put(data_key, data)
        artifacts.append(RunArtifact(evaluation=evaluation, name=name, fold_run=fold_run,
                                     storage_key=data_key, sha256=storage.sha256_bytes(data),
                                     size_bytes=len(data)))
    if artifacts:
        # One statement for both files, replacing an earlier attempt's rows.
        RunArtifact.objects.bulk_create(
            artifacts, update_conflicts=True, unique_fields=["evaluation", "name"],
            update_fields=["fold_run", "storage_key", "sha256", "size_bytes"])
    if score_types is None:
        score_types = list(ScoreType.objects.filter(problem_id=evaluation.problem_id))
    by_name = {st.name: st for st in score_types}
    FoldScore.objects.bulk_create(
        FoldScore(fold_run=fold_run, score_type=by_name[name], step=step, value=value)
        for step, values in scores.items()
        for name, value in values.items()
    )
    remaining = evaluation.fold_runs.exclude(state=RunState.SCORED).exists()
    if not remaining and evaluation.state == RunState.RUNNING:
        evaluation_id = evaluation.id
        transaction.on_commit(lambda: _score_now_or_send(evaluation_id, score_here))
    return True


def _score_now_or_send(evaluation_id: int, score_here: bool) -> None:
    """Once the last fold is recorded: the evaluation's scores computed here
    when that is cheap (:func:`_cheap_to_score_here`), which saves the hop
    through the broker to the scorer; else, or if that fails, the scorer's
    task. Recording the fold is committed either way, and a lost task is
    sent again by the reaper."""
    if score_here:
        try:
            evaluation_score(evaluation_id=evaluation_id)
            return
        except Exception:  # noqa: BLE001 - the scorer tries again
            logger.exception("evaluation %s could not be scored with its last fold; "
                             "sending it to the scorer", evaluation_id)
    send_scoring_task(evaluation_id)


def _bagged(evaluation: Evaluation, fold_runs: list[FoldRun]) -> dict:
    """``{step: {score: value}}`` bagged over the folds' predictions; for a
    pool-scored problem, what the pool computed (empty when no runner held
    every fold's predictions: the bagged scores are then missing)."""
    if evaluation.problem.pool_id is not None:
        return evaluation.metadata.get("pool_bagged") or {}
    trusted = _trusted_inputs(evaluation.problem)
    y_pred_trains, y_pred_tests = [], []
    for fr in fold_runs:
        y_pred_trains.append(storage.load_predictions(evaluation.id, fr.fold_index, "train"))
        y_pred_tests.append(storage.load_predictions(evaluation.id, fr.fold_index, "test"))
    return scoring.bagged_scores(trusted.problem, trusted.y_train, trusted.y_test,
                                 trusted.folds, y_pred_trains, y_pred_tests)


def _fail_evaluation(evaluation: Evaluation, kind: str, message: str, tb: str = "") -> None:
    now = timezone.now()
    evaluation.set_state(RunState.ERROR)
    evaluation.error_kind = kind
    evaluation.error_message = message
    evaluation.error_traceback = tb
    evaluation.finished_at = now
    evaluation.save()
    evaluation_id = evaluation.id
    transaction.on_commit(lambda: signals.evaluation_failed.send(
        sender=Evaluation, evaluation_id=evaluation_id))
    # Folds not started yet will not run; running ones are cancelled, so that
    # their next heartbeat stops them and frees their runners. One whose row
    # is locked (being recorded, or its heartbeat being written) is skipped
    # rather than waited for, which could deadlock against a fold recorded
    # at the same time: its next heartbeat cancels it.
    _cancel_folds(evaluation.fold_runs.select_for_update().filter(
        state__in=[RunState.NEW, RunState.QUEUED]), now)
    _cancel_folds(evaluation.fold_runs.select_for_update(skip_locked=True).filter(
        state=RunState.RUNNING), now)


def _cancel_folds(fold_runs, now) -> None:
    for fold_run in fold_runs:
        fold_run.set_state(RunState.CANCELLED)
        fold_run.finished_at = now
        fold_run.save(update_fields=["state", "finished_at"])


def evaluation_score(*, evaluation_id: int) -> None:
    """Bagged and mean ± std scores once every fold is scored (idempotent)."""
    evaluation = Evaluation.objects.select_related("problem").get(id=evaluation_id)
    if evaluation.state != RunState.RUNNING:
        return
    fold_runs = list(evaluation.fold_runs.order_by("fold_index"))
    if any(fr.state != RunState.SCORED for fr in fold_runs):
        return
    try:
        bagged = _bagged(evaluation, fold_runs)
    except Exception as exc:  # noqa: BLE001
        with transaction.atomic():
            evaluation = Evaluation.objects.select_for_update().get(id=evaluation_id)
            if evaluation.state == RunState.RUNNING:
                _fail_evaluation(evaluation, ErrorKind.PARTICIPANT,
                                 f"the bagged predictions could not be scored: "
                                 f"{type(exc).__name__}: {exc}")
        return
    fold_values: dict[tuple[int, str], list[float]] = {}
    for fs in FoldScore.objects.filter(fold_run__evaluation=evaluation).order_by(
        "fold_run__fold_index"
    ):
        fold_values.setdefault((fs.score_type_id, fs.step), []).append(fs.value)
    with transaction.atomic():
        evaluation = Evaluation.objects.select_for_update().get(id=evaluation_id)
        if evaluation.state != RunState.RUNNING:
            return
        rows = []
        for st in evaluation.problem.score_types.all():
            for step in scoring.STEPS:
                mean, std = scoring.mean_std(fold_values[(st.id, step)])
                rows.append(EvaluationScore(
                    evaluation=evaluation, score_type=st, step=step, mean=mean, std=std,
                    bagged=bagged.get(step, {}).get(st.name),
                ))
        EvaluationScore.objects.bulk_create(rows)
        runs.metrics_add(evaluation_id=evaluation.id, values={
            f"{kind}/{row.step}/{row.score_type.name}": getattr(row, kind)
            for row in rows for kind in ("mean", "std", "bagged")
            if not (kind == "bagged" and row.bagged is None)})
        evaluation.set_state(RunState.SCORED)
        evaluation.finished_at = timezone.now()
        evaluation.save(update_fields=["state", "finished_at"])
        transaction.on_commit(lambda: signals.evaluation_scored.send(
            sender=Evaluation, evaluation_id=evaluation_id))




def fold_runs_reap(*, now=None) -> dict:
    """Re-run folds whose worker was lost, send the messages owed or lost,
    and fail folds that lost their worker too often (as a platform failure).

    A queued fold is owed a message when none was sent yet (the broker was
    down at submit), and has lost it when it was sent more than
    ``DATARUN_REDISPATCH_AFTER`` ago, is still not claimed and is not waiting
    in the broker (a Redis restart, a worker killed before its claim). A
    duplicate message is harmless: the claim refuses a fold that is running
    or finished."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.DATARUN_HEARTBEAT_TIMEOUT)
    counts = {"requeued": 0, "failed": 0, "sent": 0, "rescored": 0}
    with transaction.atomic():
        for fold_run in FoldRun.objects.select_for_update().filter(
            state=RunState.RUNNING, heartbeat_at__lt=stale_before
        ):
            evaluation = Evaluation.objects.select_for_update().get(id=fold_run.evaluation_id)
            if fold_run.attempt >= settings.DATARUN_FOLD_MAX_ATTEMPTS:
                message = (
                    f"the worker running fold {fold_run.fold_index} stopped responding "
                    f"{fold_run.attempt} times; this is a platform failure, not an error "
                    "in your code, and an organiser can re-run the submission"
                )
                fold_run.set_state(RunState.ERROR)
                fold_run.error_kind = ErrorKind.PLATFORM
                fold_run.error_message = message
                fold_run.finished_at = now
                fold_run.save()
                if evaluation.state not in FINAL_STATES:
                    _fail_evaluation(evaluation, ErrorKind.PLATFORM, message)
                counts["failed"] += 1
                continue
            # Back in the queue at its first place (queued_at is kept).
            fold_run.set_state(RunState.QUEUED)
            fold_run.dispatched_at = None
            fold_run.save(update_fields=["state", "dispatched_at"])
            counts["requeued"] += 1
    # Only the built-in pool's folds have messages: a pool's runners pull theirs.
    builtin = FoldRun.objects.filter(state=RunState.QUEUED, evaluation__pool__isnull=True)
    to_send = list(builtin.filter(dispatched_at__isnull=True)
                   .order_by("queued_at", "id").values_list("id", flat=True))
    to_send += _lost_messages(builtin, now, queue="sandbox", task=RUN_FOLD_TASK)
    counts["sent"] = send_fold_tasks(to_send)
    # An evaluation whose folds are all scored but which is still running
    # lost its scoring message (evaluation_score is idempotent).
    waiting = waiting_first_args(queue="scoring", task=SCORE_TASK)
    resend_before = now - timedelta(seconds=settings.DATARUN_REDISPATCH_AFTER)
    for evaluation in Evaluation.objects.filter(state=RunState.RUNNING).exclude(
        fold_runs__state__in=[s for s in RunState if s != RunState.SCORED]
    ):
        if waiting is not None and evaluation.id in waiting:
            continue
        last = evaluation.fold_runs.order_by("-finished_at").first()
        if last and last.finished_at and last.finished_at < resend_before:
            counts["rescored"] += send_scoring_task(evaluation.id)
    return counts


def _lost_messages(queued, now, *, queue: str, task: str) -> list[int]:
    """Queued folds sent long enough ago, not claimed, whose message is not
    waiting in the broker."""
    waiting = waiting_first_args(queue=queue, task=task)
    after = (settings.DATARUN_REDISPATCH_AFTER if waiting is not None
             else settings.DATARUN_REDISPATCH_UNSEEN_AFTER)
    sent_before = now - timedelta(seconds=after)
    ids = queued.filter(dispatched_at__lt=sent_before).order_by("queued_at", "id") \
        .values_list("id", flat=True)
    return [i for i in ids if waiting is None or i not in waiting]
