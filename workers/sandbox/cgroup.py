"""CPU time, peak memory and limit counters of one container, read from the
host's cgroup fs."""
import time
from pathlib import Path

# Memory pressure: with swap equal to memory the kernel does not kill a
# process that fills its memory while it can still evict page cache (its own
# code pages among them); it crawls until the time limit instead. A fold
# stopped or failed while its own memory was this close to the limit and the
# cgroup at its limit, within this many seconds of its end, ran out of memory.
PRESSURE_SHARE = 0.9
# The cgroup is at its limit (the kernel reclaiming) at this share of it: on
# cgroup v1 the failure counters stay at 0 while the kernel reclaims.
AT_LIMIT_SHARE = 0.99
PRESSURE_WINDOW_S = 2.0


class ContainerCgroup:
    """CPU and memory counters of one container, read from the host's cgroup fs.

    Knows cgroup v1 (cgroupfs and systemd drivers) and v2. When the worker
    cannot see the container's cgroup (a worker in a container without the
    host's /sys/fs/cgroup), falls back to the Docker stats API.

    Besides CPU time and peak memory it counts the times the container hit
    its memory limit, the OOM kills in it and the forks its pids limit
    refused, so that a fold stopped at the time limit while it was out of
    memory or processes is reported as such.

    A warm container imports its libraries before its fold is given to it:
    :meth:`start_fold` makes both figures the fold's own from then on (CPU
    time counted from that moment, peak memory the largest seen after it).
    """

    ROOT = Path("/sys/fs/cgroup")

    def __init__(self, container, container_id: str, memory_limit: int = 0):
        self.container = container
        self.memory_limit = memory_limit
        self.cpu_ns = 0
        self.cpu_base_ns = 0
        self.peak = 0
        self.memory = 0
        # What the kernel cannot reclaim without swap: the processes' memory
        # and the files in the size-capped /tmp (a tmpfs).
        self.held = 0
        # Everything charged to the container, page cache included.
        self.usage = 0
        self.limit_hits = 0
        self.oom_kills = 0
        self.fork_refusals = 0
        self._pressed_at: float | None = None
        self.source = "stats API"
        self._reader = None
        # The file that weighs its CPU against other processes', and its default.
        self._cpu_weight: tuple[Path, str] | None = None
        # The count of its processes (threads included), and that count when
        # its fold started: the warm container's own, before the fold's.
        self._pids_current: Path | None = None
        self.own_processes: int | None = None
        v1 = [("docker", container_id), ("system.slice", f"docker-{container_id}.scope")]
        for parent, name in v1:
            mem = self.ROOT / "memory" / parent / name
            cpu = self.ROOT / "cpuacct" / parent / name
            pids = self.ROOT / "pids" / parent / name
            if (mem / "memory.stat").exists() and (cpu / "cpuacct.usage").exists():
                self._reader = lambda mem=mem, cpu=cpu, pids=pids: self._read_v1(mem, cpu, pids)
                self._cpu_weight = (self.ROOT / "cpu" / parent / name / "cpu.shares", "1024")
                self._pids_current = pids / "pids.current"
                self.source = "cgroup v1"
                return
        for parent, name in v1:
            path = self.ROOT / parent / name
            if (path / "cpu.stat").exists() and (path / "memory.stat").exists():
                self._reader = lambda path=path: self._read_v2(path)
                self._cpu_weight = (path / "cpu.weight", "100")
                self._pids_current = path / "pids.current"
                self.source = "cgroup v2"
                return

    @staticmethod
    def _read_int(path: Path) -> int:
        return int(path.read_text().split()[0])

    @staticmethod
    def _stat(path: Path) -> dict[str, int]:
        stat = {}
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            stat[key] = int(value)
        return stat

    @classmethod
    def _stat_if(cls, path: Path) -> dict[str, int]:
        return cls._stat(path) if path.exists() else {}

    def _count(self, name: str, value: int) -> None:
        # Counters only grow: a read after the cgroup is gone changes nothing.
        setattr(self, name, max(getattr(self, name), value))

    # Peak memory is the processes' own memory (anonymous pages and swap), as
    # on the local backend, not the page cache of the files they read, which
    # the kernel reclaims before it kills anything.
    def _read_v1(self, mem: Path, cpu: Path, pids: Path) -> None:
        stat = self._stat(mem / "memory.stat")
        self.memory = stat.get("total_rss", 0) + stat.get("total_swap", 0)
        self.held = self.memory + stat.get("total_shmem", 0)
        self.cpu_ns = max(self.cpu_ns, self._read_int(cpu / "cpuacct.usage"))
        self.usage = self._read_int(mem / "memory.usage_in_bytes")
        hits = self._read_int(mem / "memory.failcnt")
        if (mem / "memory.memsw.failcnt").exists():
            hits += self._read_int(mem / "memory.memsw.failcnt")
        self._count("limit_hits", hits)
        self._count("oom_kills", self._stat_if(mem / "memory.oom_control").get("oom_kill", 0))
        self._count("fork_refusals", self._stat_if(pids / "pids.events").get("max", 0))

    def _read_v2(self, path: Path) -> None:
        stat = self._stat(path / "memory.stat")
        self.memory = stat.get("anon", 0)
        swap = path / "memory.swap.current"
        if swap.exists():
            self.memory += self._read_int(swap)
        self.held = self.memory + stat.get("shmem", 0)
        self.usage = self._read_int(path / "memory.current")
        for line in (path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                self.cpu_ns = max(self.cpu_ns, int(value) * 1000)
        events = self._stat_if(path / "memory.events")
        self._count("limit_hits", events.get("max", 0))
        self._count("oom_kills", events.get("oom_kill", 0))
        self._count("fork_refusals", self._stat_if(path / "pids.events").get("max", 0))

    def _read_stats(self) -> None:
        stats = self.container.stats(stream=False, one_shot=True)
        mem = stats.get("memory_stats") or {}
        stat = mem.get("stats") or {}
        rss = stat.get("total_rss", stat.get("rss", stat.get("anon")))
        self.memory = self.held = int(rss if rss is not None else mem.get("usage") or 0)
        self.usage = int(mem.get("usage") or 0)
        self._count("limit_hits", int(mem.get("failcnt") or 0))
        usage = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
        self.cpu_ns = max(self.cpu_ns, int(usage.get("total_usage") or 0))

    def sample(self) -> None:
        hits = self.limit_hits
        try:
            if self._reader is not None:
                self._reader()
            else:
                self._read_stats()
        except (OSError, ValueError):
            return  # the cgroup goes away with the container's last process
        except Exception:  # noqa: BLE001 - stats API errors once the container is gone
            return
        self.peak = max(self.peak, self.memory)
        at_limit = self.limit_hits > hits or (
            self.memory_limit and self.usage >= AT_LIMIT_SHARE * self.memory_limit)
        if at_limit and self.memory_limit and self.held >= PRESSURE_SHARE * self.memory_limit:
            self._pressed_at = time.monotonic()

    def out_of_memory(self) -> bool:
        """Whether the fold ran out of memory: an OOM kill happened in it, or
        its memory was at the limit, the limit being hit, in its last
        :data:`PRESSURE_WINDOW_S` seconds."""
        return bool(self.oom_kills) or (
            self._pressed_at is not None
            and time.monotonic() - self._pressed_at <= PRESSURE_WINDOW_S)

    def set_default_cpu_weight(self) -> bool:
        """Give the container the CPU weight of any other process (False:
        this worker cannot write its cgroup; ask the daemon)."""
        if self._cpu_weight is None:
            return False
        path, value = self._cpu_weight
        try:
            path.write_text(value)
        except OSError:
            return False
        return True

    def processes(self) -> int | None:
        """How many processes (threads included) the container holds now;
        None when this worker cannot tell."""
        if self._pids_current is None:
            return None
        try:
            return self._read_int(self._pids_current)
        except (OSError, ValueError):
            return None

    def fold_processes_gone(self) -> bool:
        """Whether the container holds no more processes than when its fold
        started (its own: init and the warm-up's): nothing of the fold is
        left running. False when this worker cannot tell."""
        now = self.processes()
        return now is not None and self.own_processes is not None \
            and now <= self.own_processes

    def start_fold(self) -> None:
        """Count from now on: what the container used before is its warm-up's."""
        self.own_processes = self.processes()
        self.sample()
        self.cpu_base_ns = self.cpu_ns
        # The libraries the warm-up imported stay resident for the fold (and
        # count against its memory limit, as in a cold container): the peak
        # is the largest footprint seen from the fold's start, warm-up
        # transients excluded.
        self.peak = 0
        self._pressed_at = None
        self.sample()

    @property
    def cpu_time(self) -> float:
        return max(0, self.cpu_ns - self.cpu_base_ns) / 1e9
