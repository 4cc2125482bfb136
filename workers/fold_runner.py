"""Running one fold on a worker: claim it, prepare its work dir, run the
sandbox, read what came back (:mod:`workers.fold_io`) and record it."""
import logging
import socket
import tempfile
import time
from pathlib import Path

from django.conf import settings

from datarun import services
from datarun.states import ErrorKind
from workers.fold_io import FoldOutcome, prepare_workdir, read_outcome
from workers.log_tail import LogTail
from workers.sandbox import Limits, SandboxFailure, get_backend

logger = logging.getLogger(__name__)

def execute_fold_run(fold_run_id: int) -> None:
    """Claim, run and record one fold run; a no-op if it needs no run."""
    spec = services.fold_run_claim(fold_run_id=fold_run_id, worker_host=socket.gethostname())
    if spec is None:
        return
    settings.DATARUN_WORK_DIR.mkdir(parents=True, exist_ok=True)
    backend = worker_backend()
    workdir = None
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"fold-{fold_run_id}-",
                                        dir=backend.workdir_parent()))
        prepare_workdir(spec, workdir, link_inputs=backend.inputs_read_only)
        limits = limits_from(spec.limits)
        streamer = LogStreamer(spec, workdir)
        result = backend.run(workdir, limits, heartbeat=streamer.tick)
        streamer.flush()
        outcome = read_outcome(spec, workdir, result, limits)
    except SandboxFailure as exc:
        logger.exception("sandbox failure in fold run %s", fold_run_id)
        outcome = FoldOutcome(
            error=f"the sandbox failed while running fold {spec.fold_index}: {exc} "
                  "(a platform failure, not an error in your code)",
            error_kind=ErrorKind.PLATFORM,
        )
    except Exception:
        logger.exception("internal error in fold run %s", fold_run_id)
        outcome = FoldOutcome(
            error=f"an internal error stopped fold {spec.fold_index} "
                  "(a platform failure, not an error in your code)",
            error_kind=ErrorKind.PLATFORM,
        )
    finally:
        if workdir is not None:
            backend.cleanup(workdir)
    services.fold_run_finish(spec=spec, outcome=outcome)


class LogStreamer:
    """Called by the sandbox every poll interval while a fold runs: sends the
    lines the fold printed since the last call, and the fold's heartbeat
    every heartbeat interval."""

    def __init__(self, spec, workdir: Path) -> None:
        self.spec = spec
        self.tail = LogTail(workdir)
        self.last_beat = time.monotonic()
        self.full = False

    def _send(self, lines) -> None:
        if lines and not self.full:
            self.full = not services.run_log_append(
                fold_run_id=self.spec.fold_run_id, attempt=self.spec.attempt, lines=lines)

    def tick(self) -> None:
        try:
            if not self.full:
                self._send(self.tail.read())
        except Exception:  # noqa: BLE001 - the fold goes on without its live log
            logger.exception("could not stream the log of fold run %s", self.spec.fold_run_id)
        now = time.monotonic()
        if now - self.last_beat >= settings.DATARUN_HEARTBEAT_INTERVAL:
            services.fold_run_heartbeat(fold_run_id=self.spec.fold_run_id,
                                        attempt=self.spec.attempt)
            self.last_beat = now

    def flush(self) -> None:
        """What the fold printed after the last tick, unfinished last lines too."""
        try:
            if not self.full:
                self._send(self.tail.read(final=True,
                                          max_bytes=settings.DATARUN_RUN_LOG_LIMIT_BYTES + 1))
        except Exception:  # noqa: BLE001
            logger.exception("could not keep the log of fold run %s", self.spec.fold_run_id)


def worker_backend():
    """This worker's sandbox backend, as the settings configure it. It calls
    back every log poll interval (the heartbeat is sent less often)."""
    return get_backend(settings.DATARUN_SANDBOX,
                       heartbeat_interval_s=min(settings.DATARUN_HEARTBEAT_INTERVAL,
                                                settings.DATARUN_LOG_POLL_INTERVAL),
                       image=settings.DATARUN_RUNTIME_IMAGE, work_dir=settings.DATARUN_WORK_DIR)


def limits_from(limits: dict) -> Limits:
    return Limits(
        wall_time_s=float(limits["wall_time_s"]),
        memory_mb=int(limits["memory_mb"]),
        cpus=float(limits.get("cpus", 1.0)),
        log_bytes=settings.DATARUN_LOG_LIMIT_BYTES,
    )


