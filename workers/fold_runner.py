"""Running one fold on a worker: claim it, prepare its work dir, run the
sandbox, read what came back (:mod:`workers.fold_io`) and record it."""
import logging
import socket
import tempfile
from pathlib import Path

from django.conf import settings

from datarun import services
from datarun.states import ErrorKind
from workers.fold_io import FoldOutcome, prepare_workdir, read_outcome
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
        result = backend.run(
            workdir, limits,
            heartbeat=lambda: services.fold_run_heartbeat(fold_run_id=fold_run_id,
                                                          attempt=spec.attempt),
        )
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


def worker_backend():
    """This worker's sandbox backend, as the settings configure it."""
    return get_backend(settings.DATARUN_SANDBOX,
                       heartbeat_interval_s=settings.DATARUN_HEARTBEAT_INTERVAL,
                       image=settings.DATARUN_RUNTIME_IMAGE, work_dir=settings.DATARUN_WORK_DIR)


def limits_from(limits: dict) -> Limits:
    return Limits(
        wall_time_s=float(limits["wall_time_s"]),
        memory_mb=int(limits["memory_mb"]),
        cpus=float(limits.get("cpus", 1.0)),
        log_bytes=settings.DATARUN_LOG_LIMIT_BYTES,
    )


