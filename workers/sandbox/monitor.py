"""Sampling CPU time and memory of a process tree with psutil."""
import os
import signal

import psutil


class ProcessTreeMonitor:
    """Tracks one process and all its descendants.

    ``peak_memory`` is the largest memory the tree held at once: the sum of
    its processes' proportional set sizes (a page shared by n processes
    counts 1/n in each) plus their swap, so that forked copies sharing their
    pages are not counted once per copy; ``cpu_time`` the user+system seconds
    of the tree's live processes at the last sample (the caller adds what
    exited processes used, from rusage); ``tasks`` the processes and threads
    alive at the last sample.
    """

    def __init__(self, pid: int, max_tasks: int | None = None):
        self.pid = pid
        self.max_tasks = max_tasks
        self.peak_memory = 0
        self.cpu_time = 0.0
        self.tasks = 0
        try:
            self._root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._root = None
        self._known: dict[int, psutil.Process] = {}

    def processes(self) -> list[psutil.Process]:
        if self._root is None:
            return []
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = list(self._known.values())
        # Remember processes across samples: an orphan whose parent died is
        # re-parented away from the tree but is still ours to count and kill.
        for p in procs:
            self._known.setdefault(p.pid, p)
        return [p for p in self._known.values() if _alive(p)]

    def sample(self) -> None:
        memory = 0
        cpu = 0.0
        tasks = 0
        procs = self.processes()
        if self.max_tasks is not None and len(procs) > self.max_tasks:
            # A fork bomb: counting is all that matters now, and reading each
            # copy's memory map would only give it time.
            self.tasks = len(procs)
            return
        for p in procs:
            try:
                with p.oneshot():
                    tasks += p.num_threads()
                    t = p.cpu_times()
                    cpu += t.user + t.system
                memory += _proportional_memory(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.tasks = tasks
        self.peak_memory = max(self.peak_memory, memory)
        self.cpu_time = max(self.cpu_time, cpu)

    def kill(self) -> None:
        """SIGKILL the process group and every process ever seen in the tree."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for p in self.processes():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def _proportional_memory(p: psutil.Process) -> int:
    """Bytes of memory ``p`` holds in proportion (PSS) plus its swap."""
    try:
        info = p.memory_full_info()
        return info.pss + info.swap
    except psutil.AccessDenied:
        return p.memory_info().rss  # another user's process: its resident set


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
