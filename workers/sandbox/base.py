"""The interface every sandbox backend implements."""
import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Limits:
    wall_time_s: float
    memory_mb: int
    cpus: float = 1.0
    log_bytes: int = 256 * 1024
    # Largest file the submission may write (stdout logs included).
    file_size_bytes: int = 256 * 1024**2
    # Everything it may write: its output directory and its temporary files.
    disk_bytes: int = 512 * 1024**2
    # Processes and threads at once (Docker backend: the container's pids limit).
    pids: int = 256
    # The GPUs (device indices) the fold may use; none are visible otherwise.
    gpu_devices: tuple[str, ...] = ()

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024

    @property
    def cpu_time_s(self) -> float:
        # CPU seconds the whole run may use: every allowed core for the
        # whole wall-time budget.
        return self.wall_time_s * max(self.cpus, 1.0)


class SandboxFailure(RuntimeError):
    """The sandbox itself failed (not the participant's code)."""


class Termination(enum.StrEnum):
    """Why the sandbox ended a run before the harness did."""

    TIME = "time"
    MEMORY = "memory"
    CPU = "cpu"
    FILE_SIZE = "file_size"
    DISK = "disk"
    # The fold's code killed the process that supervised it.
    SUPERVISOR = "supervisor"
    # More processes (or threads) at once than ``Limits.pids``.
    PROCESSES = "processes"
    # The platform no longer wants the fold (see :class:`FoldStopped`).
    STOPPED = "stopped"


@dataclass
class SandboxResult:
    exit_code: int | None
    wall_time: float
    cpu_time: float
    peak_memory: int
    isolation: str
    runtime_image: str = ""
    terminated: Termination | None = None
    stdout: str = ""
    stderr: str = ""
    logs_truncated: bool = False


class FoldStopped(Exception):
    """Raised by a heartbeat callback when the platform no longer wants the
    fold (cancelled, another fold of its submission failed, or taken over):
    the backend stops the fold at once and returns, terminated
    :attr:`Termination.STOPPED`."""


Heartbeat = Callable[[], None]


class SandboxBackend(Protocol):
    name: str
    # Whether the fold's input files are mounted read-only (so they may be
    # hard links to the prepared problem's files).
    inputs_read_only: bool

    def warm_up(self) -> None:
        """Get ready for the first fold (or raise SandboxFailure saying what is missing)."""
        ...

    def close(self) -> None:
        """Stop what ``warm_up`` started, leaving nothing behind (the worker stops)."""
        ...

    def workdir_parent(self) -> Path:
        """The directory fold work dirs must be made in."""
        ...

    def cleanup(self, workdir: Path) -> None:
        """Remove a fold's work dir, whatever the submission left in it."""
        ...

    def run(self, workdir: Path, limits: Limits, heartbeat: Heartbeat,
            interpreter: Path | None = None) -> SandboxResult:
        """Run the harness on ``workdir``; call ``heartbeat`` every few seconds
        (and stop the fold when it raises :class:`FoldStopped`). ``interpreter``:
        the python of the problem's own environment (None: the shared runtime)."""
        ...


def dir_size(path: Path, cap: int) -> int:
    """Bytes of the files under ``path``, counted until they pass ``cap``."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            if total > cap:
                return total
    return total


def read_capped(path: Path, limit: int) -> tuple[str, bool]:
    """The head of a log file, at most ``limit`` bytes, and whether it was cut."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "", False
    with open(path, "rb") as f:
        data = f.read(limit)
    return data.decode("utf-8", errors="replace"), size > limit
