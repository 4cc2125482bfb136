"""A warm container: started before its fold, the scientific stack imported.

The container (see :mod:`workers.harness.warm`) has the same options as a
cold fold container; only what it mounts differs. Its ``/work/input``,
``/work/submission`` and ``/work/output`` are directories of a slot dir made
when it starts, since the fold's work dir does not exist yet; when the fold
comes, :meth:`WarmContainer.adopt` moves the work dir's files into them and
puts them in the work dir's place (renames on one filesystem), so that the
caller finds the fold's output where it always does. A named pipe, mounted
read-only, says "go"; another, ``done``, says the fold has ended, and the
container waits until the worker has read its cgroup (:meth:`fold_ended`,
:meth:`release`).
"""
import errno
import logging
import os
import re
import select
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from workers.harness import layout
from workers.harness.warm import DONE
from workers.sandbox.base import Heartbeat, Limits, SandboxFailure
from workers.sandbox.cgroup import ContainerCgroup

logger = logging.getLogger(__name__)

CONTROL_DIR = "control"
GO = "go"
WORK = "/work"
# A container still importing when its fold comes is waited for this long.
READY_TIMEOUT_S = 120.0
# CPU weight while it warms up: the least, so that importing the stack takes
# no CPU from folds running on the same cores (their wall-time limit runs);
# the default (1024) once a fold takes it.
WARM_UP_CPU_SHARES = 2
DEFAULT_CPU_SHARES = 1024


class WarmContainerGone(SandboxFailure):
    """The warm container exited before its fold was given to it."""


@dataclass
class WarmContainer:
    container: object
    slot_dir: Path
    limits: Limits
    cgroup: ContainerCgroup
    # The runtime image, or a problem environment's: a fold takes only a
    # container of its own image.
    image: str = ""
    # The read end of the ``done`` pipe, from "go" until the worker has read
    # the cgroup after the fold.
    done_fd: int | None = None
    # The fold's exit status as the container said it (see :meth:`fold_ended`).
    said_status: int | None = None

    @classmethod
    def start(cls, client, image: str, parent: Path, limits: Limits, options: dict,
              labels: dict, cpu_shares: int = WARM_UP_CPU_SHARES) -> "WarmContainer":
        """Create and start one (raises SandboxFailure saying why it could not);
        ``cpu_shares``: its weight until "go" (a fold waiting for it: the default)."""
        import docker.errors

        slot_dir = Path(tempfile.mkdtemp(prefix="warm-", dir=parent))
        for sub in (layout.INPUT_DIR, layout.SUBMISSION_DIR, layout.OUTPUT_DIR, CONTROL_DIR):
            (slot_dir / sub).mkdir()
        # The container's user owns nothing on the host: let it write here only.
        os.chmod(slot_dir / layout.OUTPUT_DIR, 0o777)
        go = slot_dir / CONTROL_DIR / GO
        os.mkfifo(go)
        os.chmod(go, 0o644)
        # Written by the container's user, read by the worker.
        done = slot_dir / CONTROL_DIR / DONE
        os.mkfifo(done)
        os.chmod(done, 0o622)
        container = None
        try:
            container = client.containers.create(
                image,
                entrypoint=["python", "-m", "workers.harness.warm", f"{WORK}/{CONTROL_DIR}/{GO}"],
                volumes={
                    str(slot_dir / layout.INPUT_DIR): {"bind": f"{WORK}/input", "mode": "ro"},
                    str(slot_dir / layout.SUBMISSION_DIR): {"bind": f"{WORK}/submission",
                                                            "mode": "ro"},
                    str(slot_dir / layout.OUTPUT_DIR): {"bind": f"{WORK}/output", "mode": "rw"},
                    str(slot_dir / CONTROL_DIR): {"bind": f"{WORK}/{CONTROL_DIR}", "mode": "ro"},
                },
                labels=labels,
                **{**options, "cpu_shares": cpu_shares},
            )
            container.start()
        except docker.errors.DockerException as exc:
            if container is not None:
                remove_container(container)
            shutil.rmtree(slot_dir, ignore_errors=True)
            raise SandboxFailure(f"could not start a warm fold container: {exc}") from exc
        return cls(container, slot_dir, limits, ContainerCgroup(container, container.id,
                                                                   limits.memory_bytes), image)

    @property
    def go_path(self) -> Path:
        return self.slot_dir / CONTROL_DIR / GO

    @property
    def done_path(self) -> Path:
        return self.slot_dir / CONTROL_DIR / DONE

    def wait_ready(self, heartbeat: Heartbeat, timeout_s: float = READY_TIMEOUT_S) -> int:
        """Wait until the container listens for its fold; returns the pipe's write
        end (closed without writing, the container goes on waiting)."""
        deadline = time.monotonic() + timeout_s
        next_check = 0.0
        while True:
            try:
                return os.open(self.go_path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody reads the pipe yet
                    raise SandboxFailure(f"cannot signal the warm container: {exc}") from exc
            now = time.monotonic()
            if now >= next_check:
                if self.exited():
                    raise WarmContainerGone(
                        f"the warm fold container exited before its fold ({self.container.status},"
                        f" status {self.container.attrs.get('State', {}).get('ExitCode')})")
                heartbeat()
                next_check = now + 0.5
            if now > deadline:
                raise SandboxFailure(f"the warm fold container was not ready after {timeout_s:g} s"
                                     " (the runtime image's imports hang?)")
            time.sleep(0.005)

    def adopt(self, workdir: Path) -> None:
        """Make the fold's work dir this container's ``/work``."""
        for sub in (layout.INPUT_DIR, layout.SUBMISSION_DIR, layout.OUTPUT_DIR):
            mounted, given = self.slot_dir / sub, workdir / sub
            for entry in os.scandir(given):
                os.rename(entry.path, mounted / entry.name)
            given.rmdir()
            mounted.rename(given)

    def prioritise(self) -> None:
        """Give it the CPU weight of any other process: a fold is waiting for
        it (to finish its imports, then to run)."""
        if not self.cgroup.set_default_cpu_weight():
            self.container.update(cpu_shares=DEFAULT_CPU_SHARES)

    def go(self, fd: int) -> None:
        """Start the fold: its CPU time and peak memory count from here."""
        self.done_fd = os.open(self.done_path, os.O_RDONLY | os.O_NONBLOCK)
        self.cgroup.start_fold()
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)

    def exited(self) -> bool:
        """Whether the container has stopped (asks the daemon)."""
        self.container.reload()
        return self.container.status not in ("created", "running")

    def fold_ended(self, timeout_s: float) -> bool:
        """Whether the container says (within ``timeout_s``) that its fold has
        ended (from :meth:`go` until :meth:`release`); it then waits for
        :meth:`release`, its cgroup still there. :attr:`said_status` is the
        exit status it said, None when the message was not one ``done N``
        line (something else wrote to the pipe too)."""
        ready, _, _ = select.select([self.done_fd], [], [], timeout_s)
        if not ready:
            return False
        said = re.fullmatch(rb"done (\d+)\n", os.read(self.done_fd, 64))
        self.said_status = int(said[1]) if said else None
        return True

    def release(self) -> None:
        """Let the container exit (it waits for this after saying "done")."""
        if self.done_fd is not None:
            os.close(self.done_fd)
            self.done_fd = None

    def discard(self) -> None:
        """Remove what is left of its slot dir, and the container."""
        self.release()
        shutil.rmtree(self.slot_dir, ignore_errors=True)
        remove_container(self.container)


def remove_container(container) -> None:
    """Remove a container, running or not (retried; logged if it stays)."""
    import docker.errors

    for attempt in range(3):
        try:
            container.remove(force=True)
            return
        except docker.errors.NotFound:
            return
        except Exception:  # noqa: BLE001 - retried, then left to the orphan sweep
            time.sleep(0.2 * (attempt + 1))
    logger.error("could not remove fold container %s", container.id[:12])
