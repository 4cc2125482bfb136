"""Running one fold on a runner: claim it over the runner API, fetch its
inputs into the local cache, lay out its work dir, run the sandbox while
streaming log lines and heartbeats, read what came back
(:mod:`workers.fold_io`) and report it. In-cluster workers (dispatched by
Celery) and remote runners share this one path; none of it touches the
database or the server's storage."""
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from functools import cache
from pathlib import Path

from django.conf import settings

from datarun.contract import PLATFORM, RUNNER_SCORING, FoldOutcome, FoldTicket
from datarun.software import software
from workers import gpus, pool_problems, runner_environments
from workers.fold_io import prepare_workdir, read_outcome
from workers.log_tail import LogTail
from workers.runner_client import ClaimLost, InputCache, InputMismatch, RunnerApiError, RunnerClient
from workers.sandbox import FoldStopped, Limits, SandboxFailure, Termination, get_backend

logger = logging.getLogger(__name__)


# About half a minute of retries (backoff capped at 5 s).
REPORT_RETRIES = 9


class EnvironmentMissing(Exception):
    """The fold's environment (its lock hash) is not built on this runner."""


class PlatformUnavailable(Exception):
    """The claim could not reach the platform, or the platform could not
    answer it (its database restarting): the fold was not claimed and its
    message should go back to the queue."""


# Seconds to wait before a message whose claim failed goes back to the
# queue, so that an outage is not a busy loop.
CLAIM_BACKOFF_S = 5.0


def execute_fold_run(fold_run_id: int, *, reporter: "Reporter | None" = None) -> None:
    """Claim, run and report one fold run; a no-op if it needs no run. With
    ``reporter``, the report is sent on its thread and this returns as soon
    as the fold has run (see :class:`Reporter`)."""
    client = worker_client()
    try:
        # The claim id makes a claim retried after a lost answer get its ticket.
        ticket = client.claim(fold_run_id, {**runner_environment(settings.DATARUN_SANDBOX),
                                            "claim_id": uuid.uuid4().hex})
    except RunnerApiError as exc:
        if exc.status is not None and exc.status < 500:
            raise
        time.sleep(CLAIM_BACKOFF_S)
        raise PlatformUnavailable(f"claim of fold run {fold_run_id} failed: {exc}") from exc
    if ticket is None:
        return
    run_ticket(ticket, client, worker_backend(), InputCache(settings.DATARUN_RUNNER_CACHE),
               log_limit_bytes=settings.DATARUN_LOG_LIMIT_BYTES,
               heartbeat_interval_s=settings.DATARUN_HEARTBEAT_INTERVAL,
               run_log_limit_bytes=settings.DATARUN_RUN_LOG_LIMIT_BYTES,
               environments_dir=settings.DATARUN_ENVIRONMENTS_DIR,
               wheels_dir=settings.DATARUN_ENV_WHEELS_DIR, reporter=reporter)


def run_ticket(ticket: FoldTicket, client: RunnerClient, backend, cache: InputCache, *,
               log_limit_bytes: int, heartbeat_interval_s: float,
               run_log_limit_bytes: int, home: Path | None = None,
               share_logs: bool = False, slot_gpus: list[dict] | None = None,
               environments_dir: Path | None = None, wheels_dir: Path | None = None,
               reporter: "Reporter | None" = None) -> None:
    """Run a claimed fold and report its outcome (a lost claim reports nothing):
    before returning, or on ``reporter``'s thread while the slot goes on.

    A fold the ticket says this runner scores (a sensitive-data problem) reads
    its inputs from the problem's copy under ``home`` and is scored here; its
    logs go out only with ``share_logs``. A fold needing GPUs gets the first
    of ``slot_gpus`` (this slot's) and only those. A fold of a problem with
    its own environment runs with that environment's interpreter, under
    ``environments_dir``: built there first, from the lock and the package
    files the runner API serves (kept in ``wheels_dir``), when it is not."""
    workdir = None
    k = ticket.fold_index
    prepared = None
    try:
        interpreter = None
        if ticket.environment:
            if environments_dir is None:
                raise EnvironmentMissing(ticket.environment)
            interpreter = runner_environments.ensure_environment(
                client, ticket.environment, environments_dir,
                wheels_dir or Path(environments_dir) / "wheels",
                heartbeat=lambda: client.heartbeat(ticket),
                heartbeat_interval_s=heartbeat_interval_s)
        if ticket.scoring == RUNNER_SCORING:
            prepared = pool_problems.problem_dir(home, ticket.problem, ticket.data_hash) \
                if home is not None else None
            if prepared is None:
                raise InputMismatch(f"this runner holds no copy of problem {ticket.problem!r} "
                                    f"at data hash {ticket.data_hash[:12]}")
            inputs = pool_problems.local_inputs(ticket, prepared)
        else:
            inputs = {name: cache.get(digest,
                                      lambda dest, d=digest: client.fetch(ticket, d, dest))
                      for name, digest in ticket.inputs.items()}
        files = {name: cache.get(digest, lambda dest, d=digest: client.fetch(ticket, d, dest))
                 for name, digest in ticket.files.items()}
        workdir = Path(tempfile.mkdtemp(prefix=f"fold-{ticket.fold_run_id}-",
                                        dir=backend.workdir_parent()))
        prepare_workdir(ticket, workdir, inputs=inputs, files=files,
                        link_inputs=backend.inputs_read_only)
        limits = limits_from(ticket.limits, log_limit_bytes, gpu_devices=gpus.fold_devices(
            slot_gpus or [], int(ticket.limits.get("gpus", 0))))
        # A sensitive-data fold's output may quote the data: kept here
        # unless the owner shares logs (heartbeats are sent all the same).
        streamer = LogStreamer(ticket, client, workdir, heartbeat_interval_s,
                               run_log_limit_bytes,
                               send_lines=prepared is None or share_logs)
        gpu_peak = gpus.GpuMemoryPeak(limits.gpu_devices)
        result = backend.run(workdir, limits, heartbeat=gpu_peak.wrap(streamer.tick),
                             **({"interpreter": interpreter} if interpreter else {}))
        if result.terminated == Termination.STOPPED:
            raise ClaimLost("stopped while it ran")
        streamer.flush()
        outcome = read_outcome(ticket, workdir, result, limits)
        gpu_peak.sample(force=True)
        outcome.gpu_memory_peak = gpu_peak.peak
        if prepared is not None:
            outcome = pool_problems.score_locally(ticket, prepared, outcome,
                                                  share_logs=share_logs)
    except ClaimLost:
        logger.info("fold run %s attempt %s lost its claim; not reported",
                    ticket.fold_run_id, ticket.attempt)
        return
    except InputMismatch as exc:
        logger.error("fold run %s: %s", ticket.fold_run_id, exc)
        outcome = _platform_failure(f"an input of fold {k} did not match its content hash "
                                    "on the runner")
    except EnvironmentMissing as exc:
        outcome = _platform_failure(f"fold {k} runs in the problem's environment "
                                    f"{str(exc)[:12]}, which is not built on this runner")
    except runner_environments.EnvironmentUnavailable as exc:
        logger.error("fold run %s: environment %s: %s", ticket.fold_run_id,
                     ticket.environment[:12], exc)
        outcome = _platform_failure(f"fold {k}'s environment {ticket.environment[:12]} could "
                                    f"not be built on this runner: {exc}")
    except gpus.GpuSpecError as exc:
        outcome = _platform_failure(f"fold {k} could not get its GPUs: {exc}")
    except (SandboxFailure, RunnerApiError) as exc:
        logger.exception("sandbox failure in fold run %s", ticket.fold_run_id)
        outcome = _platform_failure(f"the sandbox failed while running fold {k}: {exc}")
    except Exception:
        logger.exception("internal error in fold run %s", ticket.fold_run_id)
        outcome = _platform_failure(f"an internal error stopped fold {k}")
    finally:
        if workdir is not None:
            backend.cleanup(workdir)
    if reporter is not None:
        reporter.submit(ticket, outcome)
    else:
        send_report(client, ticket, outcome)


def send_report(client: RunnerClient, ticket: FoldTicket, outcome: FoldOutcome) -> None:
    """Report a fold's outcome. A report outlives a short outage of the web or
    its database; past that, the fold is re-run once its heartbeat is stale."""
    try:
        client.report(ticket, outcome, retries=REPORT_RETRIES)
    except ClaimLost:
        logger.info("fold run %s attempt %s finished after being superseded; ignored",
                    ticket.fold_run_id, ticket.attempt)


class Reporter:
    """Sends a slot's fold reports on a thread of its own, so that the slot
    claims and starts its next fold while the platform checks, scores and
    records the last one (the report is most of a fold's time out of the
    sandbox). One report at a time: a fold that ends while the previous
    report is still out waits for it, so reports never pile up.

    A report that cannot be sent (the platform unreachable past the retries)
    is logged; its fold is still running for the platform, and is run again
    once its heartbeat is stale. A worker that stops waits for the report out
    (:meth:`wait`); one killed outright loses it the same way."""

    def __init__(self, client: RunnerClient) -> None:
        # Its own connection: the slot's client claims the next fold meanwhile.
        self.client = client
        self._thread: threading.Thread | None = None

    def submit(self, ticket: FoldTicket, outcome: FoldOutcome) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._send, args=(ticket, outcome),
                                        name=f"report-{ticket.fold_run_id}", daemon=True)
        self._thread.start()

    def _send(self, ticket: FoldTicket, outcome: FoldOutcome) -> None:
        try:
            send_report(self.client, ticket, outcome)
        except Exception:  # noqa: BLE001 - the fold is re-run once its heartbeat is stale
            logger.exception("the report of fold run %s attempt %s was not delivered",
                             ticket.fold_run_id, ticket.attempt)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the report out, if any; False if it is still out after ``timeout``."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._thread = None
        return True


def _platform_failure(what: str) -> FoldOutcome:
    return FoldOutcome(error=f"{what} (a platform failure, not an error in your code)",
                       error_kind=PLATFORM)


class LogStreamer:
    """Called by the sandbox every poll interval while a fold runs: sends the
    lines the fold printed since the last call, and the fold's heartbeat
    every heartbeat interval."""

    def __init__(self, ticket: FoldTicket, client: RunnerClient, workdir: Path,
                 heartbeat_interval_s: float, run_log_limit_bytes: int, *,
                 send_lines: bool = True) -> None:
        self.ticket = ticket
        self.client = client
        self.tail = LogTail(workdir)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.run_log_limit_bytes = run_log_limit_bytes
        self.last_beat = time.monotonic()
        # Once full (the run's log is, or the claim was lost), no more lines.
        self.full = not send_lines

    def _send(self, lines) -> None:
        if lines and not self.full:
            self.full = not self.client.send_lines(self.ticket, lines)

    def tick(self) -> None:
        try:
            if not self.full:
                self._send(self.tail.read())
        except Exception:  # noqa: BLE001 - the fold goes on without its live log
            logger.exception("could not stream the log of fold run %s", self.ticket.fold_run_id)
        now = time.monotonic()
        if now - self.last_beat >= self.heartbeat_interval_s:
            try:
                self.client.heartbeat(self.ticket)
            except ClaimLost:
                # Cancelled, failed by another fold of its submission, or
                # taken over: its report would be refused; the sandbox stops
                # it now, which frees this runner for the next fold.
                self.full = True
                raise FoldStopped() from None
            except RunnerApiError:
                logger.exception("heartbeat of fold run %s failed", self.ticket.fold_run_id)
            self.last_beat = now

    def flush(self) -> None:
        """What the fold printed after the last tick, unfinished last lines too."""
        try:
            if not self.full:
                self._send(self.tail.read(final=True, max_bytes=self.run_log_limit_bytes + 1))
        except Exception:  # noqa: BLE001
            logger.exception("could not keep the log of fold run %s", self.ticket.fold_run_id)


@cache
def worker_client() -> RunnerClient:
    """This worker process's connection to the runner API (one per process)."""
    return RunnerClient(settings.DATARUN_API_URL, settings.DATARUN_RUNNER_TOKEN)


@cache
def worker_reporter() -> Reporter:
    """This worker process's reporter, with a connection of its own."""
    return Reporter(RunnerClient(settings.DATARUN_API_URL, settings.DATARUN_RUNNER_TOKEN))


def runner_environment(sandbox: str) -> dict:
    """What a runner tells the platform about itself when it claims a fold
    (its slot: this worker process)."""
    return {**software(), "host": socket.gethostname(), "sandbox": sandbox,
            "slot": f"pid {os.getpid()}"}


def worker_backend():
    """This worker's sandbox backend, as the settings configure it. It calls
    back every log poll interval (the heartbeat is sent less often)."""
    return get_backend(settings.DATARUN_SANDBOX,
                       heartbeat_interval_s=min(settings.DATARUN_HEARTBEAT_INTERVAL,
                                                settings.DATARUN_LOG_POLL_INTERVAL),
                       image=settings.DATARUN_RUNTIME_IMAGE, work_dir=settings.DATARUN_WORK_DIR,
                       warm_containers=settings.DATARUN_WARM_CONTAINERS,
                       env_wheels_dir=settings.DATARUN_ENV_WHEELS_DIR,
                       # Folds of problems without limits of their own: their
                       # warm containers are started with the worker.
                       expected_limits=limits_from(
                           {"wall_time_s": settings.DATARUN_FOLD_TIME_LIMIT,
                            "memory_mb": settings.DATARUN_FOLD_MEMORY_LIMIT_MB,
                            "cpus": settings.DATARUN_FOLD_CPUS},
                           settings.DATARUN_LOG_LIMIT_BYTES))


def limits_from(limits: dict, log_bytes: int, gpu_devices: tuple[str, ...] = ()) -> Limits:
    return Limits(
        wall_time_s=float(limits["wall_time_s"]),
        memory_mb=int(limits["memory_mb"]),
        cpus=float(limits.get("cpus", 1.0)),
        log_bytes=log_bytes,
        gpu_devices=gpu_devices,
    )
