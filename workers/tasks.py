"""The workers' Celery tasks (queue ``sandbox``): run a fold, taking its ID."""
import logging
import os

from celery import shared_task
from celery.exceptions import Reject
from celery.signals import celeryd_init, worker_process_init, worker_process_shutdown

logger = logging.getLogger(__name__)


# A fold message is acknowledged only once the fold has run: the
# message of a worker process killed mid-fold, or of a claim that could not
# reach the platform (past the client's retries), goes back to the queue
# instead of being lost. A worker killed outright leaves its message
# unacknowledged in Redis, and the reaper sends the fold again. The report
# goes out on the process's reporter thread while the next fold is claimed;
# a report lost with its process leaves the fold running with a heartbeat
# that goes stale, and the reaper sends it again too.
@shared_task(name="workers.tasks.run_fold", acks_late=True, reject_on_worker_lost=True)
def run_fold(fold_run_id: int) -> None:
    from workers.fold_runner import PlatformUnavailable, execute_fold_run, worker_reporter

    try:
        execute_fold_run(fold_run_id, reporter=worker_reporter())
    except PlatformUnavailable as exc:
        logger.warning("fold run %s put back in the queue: %s", fold_run_id, exc)
        raise Reject(str(exc), requeue=True) from None


@celeryd_init.connect
def _sweep_orphan_containers(sender=None, **kwargs) -> None:
    # Runs once in the worker's main process, before it takes any task: fold
    # containers still labelled with this node's name were left by a worker
    # that was killed outright, and nobody else will remove them.
    from django.conf import settings

    if settings.DATARUN_SANDBOX != "docker" or not sender:
        return
    from workers.sandbox import SandboxFailure
    from workers.sandbox.docker_backend import NODE_ENV, remove_orphans

    os.environ[NODE_ENV] = str(sender)
    try:
        remove_orphans(str(sender))
    except SandboxFailure as exc:
        logger.error("%s", exc)


@worker_process_init.connect
def _warm_sandbox(**kwargs) -> None:
    # Start the fork server (or find the runtime image) with the worker
    # process, not with its first fold.

    from workers.fold_runner import worker_backend
    from workers.sandbox import SandboxFailure

    try:
        worker_backend().warm_up()
    except SandboxFailure as exc:
        # Each fold will fail with this message too, marked as a platform error.
        logger.error("sandbox not ready: %s", exc)


@worker_process_shutdown.connect
def _close_sandbox(**kwargs) -> None:
    # The local backend's fork server and its root under DATARUN_WORK_DIR
    # would otherwise outlive the worker process. The last fold's report
    # goes out first (retried for about half a minute at most).
    from workers.fold_runner import worker_backend, worker_reporter

    worker_reporter().wait(timeout=60)
    worker_backend().close()
