"""Sampling CPU time and memory of a process tree with psutil."""
import os
import signal

import psutil


class ProcessTreeMonitor:
    """Tracks one process and all its descendants.

    ``peak_rss`` is the largest sum of resident set sizes seen over the tree;
    ``cpu_time`` the user+system seconds of the tree's live processes at the
    last sample (the caller adds what exited processes used, from rusage).
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_rss = 0
        self.cpu_time = 0.0
        self.n_processes = 0
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
        rss = 0
        cpu = 0.0
        procs = self.processes()
        for p in procs:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu += t.user + t.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.n_processes = len(procs)
        self.peak_rss = max(self.peak_rss, rss)
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


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
