"""A runner anywhere: pulls its pool's folds over HTTPS and runs them, with
no database, no broker and no shared disk (``datarun runner``).

Each slot is a process of its own (one sandbox, one fold at a time) that
long-polls the platform for the next fold and runs it through the same path
as in-cluster workers (:func:`workers.fold_runner.run_ticket`). A token the
platform refuses stops the runner with a message; an unreachable platform is
retried with backoff.
"""
import logging
import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from datarun.software import software
from workers import gpus
from workers.fold_runner import Reporter, run_ticket
from workers.runner_client import InputCache, RunnerApiError, RunnerClient
from workers.sandbox import get_backend

logger = logging.getLogger("datarun.runner")


@dataclass
class RunnerConfig:
    api_url: str
    token: str
    name: str = field(default_factory=socket.gethostname)
    sandbox: str = "local"
    slots: int = 1
    home: Path = Path.home() / ".cache" / "datarun-runner"
    # ``{"name", "memory_mb", "index"}`` each (``workers.gpus``).
    gpus: list[dict] = field(default_factory=list)
    heartbeat_interval_s: float = 5.0
    wait_s: float = 20.0
    log_limit_bytes: int = 256 * 1024
    run_log_limit_bytes: int = 1024 * 1024
    # Sensitive-data folds: send their logs and error details too (the data
    # owner's choice; off, only scores and resource figures leave).
    share_logs: bool = False

    @property
    def environments_dir(self) -> Path:
        """Problems' environments built here, one venv per lock hash."""
        return self.home / "environments"

    @property
    def wheels_dir(self) -> Path:
        """Their package files, fetched from the platform by sha256."""
        return self.environments_dir / "wheels"


def environment(config: RunnerConfig) -> dict:
    """What the runner tells the platform about itself with every claim."""
    memory_mb = None
    try:
        import psutil

        memory_mb = psutil.virtual_memory().total // 2**20
    except ImportError:  # pragma: no cover - psutil is a requirement
        pass
    return {**software(), "host": config.name, "sandbox": config.sandbox,
            "cpus": float(os.cpu_count() or 1), "memory_mb": memory_mb,
            "gpus": [{k: g[k] for k in ("name", "memory_mb") if k in g} for g in config.gpus]}


class Refused(Exception):
    """The platform refused the runner itself (a wrong or reset token)."""


def run_slot(config: RunnerConfig, slot: int, stop=None) -> None:
    """One slot's loop: claim the next fold, run it, again, until ``stop``.
    The slot claims only folds its share of the runner's GPUs can run."""
    client = RunnerClient(config.api_url, config.token, timeout=30)
    backend = get_backend(config.sandbox,
                          heartbeat_interval_s=min(1.0, config.heartbeat_interval_s),
                          work_dir=config.home / "work" / f"slot-{slot}",
                          env_wheels_dir=config.wheels_dir)
    backend.warm_up()
    # Reports go out on a thread of their own while the slot claims its next fold.
    reporter = Reporter(RunnerClient(config.api_url, config.token, timeout=30))
    try:
        _claim_and_run(config, slot, client, backend, stop, reporter)
    finally:
        reporter.wait(timeout=60)
        # A slot process ends without atexit handlers: its warm container
        # (Docker backend) is removed here.
        backend.close()


def _claim_and_run(config: RunnerConfig, slot: int, client: RunnerClient, backend,
                   stop, reporter: Reporter) -> None:
    cache = InputCache(config.home / "cache")
    slot_gpus = gpus.for_slot(config.gpus, slot, config.slots)
    described = {**environment(config), "slot": str(slot),
                 "slot_gpus": [{k: g[k] for k in ("name", "memory_mb") if k in g}
                               for g in slot_gpus]}
    delay = 1.0
    while stop is None or not stop.is_set():
        try:
            ticket = client.claim_next(described, wait=config.wait_s)
        except RunnerApiError as exc:
            if exc.status == 401:
                raise Refused(str(exc)) from None
            logger.warning("slot %s: %s; trying again in %.0f s", slot, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
            continue
        delay = 1.0
        if ticket is None:
            continue
        logger.info("slot %s: fold %s of evaluation %s (attempt %s)", slot,
                    ticket.fold_index, ticket.evaluation_id, ticket.attempt)
        run_ticket(ticket, client, backend, cache, log_limit_bytes=config.log_limit_bytes,
                   heartbeat_interval_s=config.heartbeat_interval_s,
                   run_log_limit_bytes=config.run_log_limit_bytes, home=config.home,
                   share_logs=config.share_logs, slot_gpus=slot_gpus,
                   environments_dir=config.environments_dir, wheels_dir=config.wheels_dir,
                   reporter=reporter)


def _slot_process(config: RunnerConfig, slot: int, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop
    try:
        run_slot(config, slot, stop)
    except Refused as exc:
        logger.error("the platform refused this runner: %s", exc)
        raise SystemExit(3) from None


def serve(config: RunnerConfig) -> int:
    """Run ``config.slots`` slots until SIGTERM/SIGINT or until the platform
    refuses the token (exit status 3)."""
    config.home.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    slots = [context.Process(target=_slot_process, args=(config, i, stop), daemon=False)
             for i in range(config.slots)]
    for process in slots:
        process.start()

    def _stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logger.info("runner %s: %d slot(s), %s sandbox, polling %s", config.name, config.slots,
                config.sandbox, config.api_url)
    while not stop.is_set() and all(p.is_alive() for p in slots):
        time.sleep(0.5)
    stop.set()
    for process in slots:
        process.join(timeout=config.wait_s + 60)
        if process.is_alive():
            process.terminate()
            process.join()
    return 3 if any(p.exitcode == 3 for p in slots) else 0
