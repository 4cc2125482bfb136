"""Sampling CPU time and memory of a process tree with psutil."""
import os
import signal

import psutil


class ProcessTreeMonitor:
    """Tracks one process and all its descendants.

    ``peak_memory`` is the largest memory the tree held at once: the sum of
    its processes' proportional set sizes (a page shared by n processes
    counts 1/n in each) plus their swap, so that forked copies sharing their
    pages are not counted once per copy (a lone process under
    ``memory_limit``: its resident size plus swap); ``cpu_time`` the user+system seconds
    of the tree's live processes at the last sample (the caller adds what
    exited processes used, from rusage); ``tasks`` the processes and threads
    alive at the last sample.
    """

    def __init__(self, pid: int | None, max_tasks: int | None = None,
                 memory_limit: int | None = None):
        self.pid = pid
        self.max_tasks = max_tasks
        self.memory_limit = memory_limit
        self.peak_memory = 0
        self.cpu_time = 0.0
        self.tasks = 0
        try:
            # None: a process that is gone already (psutil would take this one).
            self._root = psutil.Process(pid) if pid is not None else None
        except psutil.NoSuchProcess:
            self._root = None
        self._known: dict[int, psutil.Process] = {}

    def processes(self) -> list[psutil.Process]:
        if self._root is None:
            return []
        procs = [self._root] if self._root.is_running() else []
        for pid in descendants(self.pid) if procs else ():
            known = self._known.get(pid)
            if known is not None and known.is_running():
                procs.append(known)
                continue
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue  # gone since it was listed
        if not procs:
            procs = list(self._known.values())
        # Remember processes across samples: an orphan whose parent died is
        # re-parented away from the tree but is still ours to count and kill.
        for p in procs:
            self._known[p.pid] = p
        return [p for p in self._known.values() if _alive(p)]

    def sample(self) -> None:
        cpu = 0.0
        tasks = 0
        resident = {}
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
                    resident[p] = p.memory_info().rss + _swap(p.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        memory = sum(resident.values())
        # A process's proportional size never exceeds its resident size.
        # Reading the memory maps takes milliseconds: only for a tree of
        # several processes (forked copies share pages) or a lone process
        # over the limit by its resident size. A lone process's resident
        # peak is what the fork server reports for it anyway.
        if len(resident) > 1 or (self.memory_limit is not None and memory > self.memory_limit):
            memory = 0
            for p in resident:
                try:
                    memory += _proportional_memory(p)
                except psutil.NoSuchProcess:
                    continue
        self.tasks = tasks
        self.peak_memory = max(self.peak_memory, memory)
        self.cpu_time = max(self.cpu_time, cpu)

    def kill(self) -> None:
        """SIGKILL the process group and every process ever seen in the tree."""
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for p in self.processes():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s descendants, read from the kernel's per-thread
    ``children`` lists: a walk of the tree only, where psutil's
    ``children(recursive=True)`` reads every process on the host (milliseconds
    on a busy host, at every sample)."""
    if not _CHILDREN_LISTS:
        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    children = [int(child) for child in f.read().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


# Kernels built without CONFIG_PROC_CHILDREN have no such lists.
_CHILDREN_LISTS = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _proportional_memory(p: psutil.Process) -> int:
    """Bytes of memory ``p`` holds in proportion (PSS) plus its swap."""
    try:
        info = p.memory_full_info()
        return info.pss + info.swap
    except psutil.AccessDenied:
        return p.memory_info().rss  # another user's process: its resident set


def _swap(pid: int) -> int:
    """Bytes of ``pid``'s memory swapped out (``VmSwap``; 0 if unknown)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmSwap:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
