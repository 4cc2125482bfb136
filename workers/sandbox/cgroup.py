"""CPU time and peak memory of one container, read from the host's cgroup fs."""
from pathlib import Path


class ContainerCgroup:
    """CPU and memory counters of one container, read from the host's cgroup fs.

    Knows cgroup v1 (cgroupfs and systemd drivers) and v2. When the worker
    cannot see the container's cgroup (a worker in a container without the
    host's /sys/fs/cgroup), falls back to the Docker stats API.

    A warm container imports its libraries before its fold is given to it:
    :meth:`start_fold` makes both figures the fold's own from then on (CPU
    time counted from that moment, peak memory the largest seen after it).
    """

    ROOT = Path("/sys/fs/cgroup")

    def __init__(self, container, container_id: str):
        self.container = container
        self.cpu_ns = 0
        self.cpu_base_ns = 0
        self.peak = 0
        self.source = "stats API"
        self._reader = None
        # The file that weighs its CPU against other processes', and its default.
        self._cpu_weight: tuple[Path, str] | None = None
        v1 = [("docker", container_id), ("system.slice", f"docker-{container_id}.scope")]
        for parent, name in v1:
            mem = self.ROOT / "memory" / parent / name
            cpu = self.ROOT / "cpuacct" / parent / name
            if (mem / "memory.stat").exists() and (cpu / "cpuacct.usage").exists():
                self._reader = lambda mem=mem, cpu=cpu: self._read_v1(mem, cpu)
                self._cpu_weight = (self.ROOT / "cpu" / parent / name / "cpu.shares", "1024")
                self.source = "cgroup v1"
                return
        for parent, name in v1:
            path = self.ROOT / parent / name
            if (path / "cpu.stat").exists() and (path / "memory.stat").exists():
                self._reader = lambda path=path: self._read_v2(path)
                self._cpu_weight = (path / "cpu.weight", "100")
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

    # Peak memory is the processes' own memory (anonymous pages and swap), as
    # on the local backend, not the page cache of the files they read, which
    # the kernel reclaims before it kills anything.
    def _read_v1(self, mem: Path, cpu: Path) -> None:
        stat = self._stat(mem / "memory.stat")
        self.peak = max(self.peak, stat.get("total_rss", 0) + stat.get("total_swap", 0))
        self.cpu_ns = max(self.cpu_ns, self._read_int(cpu / "cpuacct.usage"))

    def _read_v2(self, path: Path) -> None:
        stat = self._stat(path / "memory.stat")
        self.peak = max(self.peak, stat.get("anon", 0))
        swap = path / "memory.swap.current"
        if swap.exists():
            self.peak = max(self.peak, stat.get("anon", 0) + self._read_int(swap))
        for line in (path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                self.cpu_ns = max(self.cpu_ns, int(value) * 1000)

    def _read_stats(self) -> None:
        stats = self.container.stats(stream=False, one_shot=True)
        mem = stats.get("memory_stats") or {}
        stat = mem.get("stats") or {}
        rss = stat.get("total_rss", stat.get("rss", stat.get("anon")))
        self.peak = max(self.peak, int(rss if rss is not None else mem.get("usage") or 0))
        usage = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
        self.cpu_ns = max(self.cpu_ns, int(usage.get("total_usage") or 0))

    def sample(self) -> None:
        try:
            if self._reader is not None:
                self._reader()
            else:
                self._read_stats()
        except (OSError, ValueError):
            pass  # the cgroup goes away with the container's last process
        except Exception:  # noqa: BLE001 - stats API errors once the container is gone
            pass

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

    def start_fold(self) -> None:
        """Count from now on: what the container used before is its warm-up's."""
        self.sample()
        self.cpu_base_ns = self.cpu_ns
        # The libraries the warm-up imported stay resident for the fold (and
        # count against its memory limit, as in a cold container): the peak
        # is the largest footprint seen from the fold's start, warm-up
        # transients excluded.
        self.peak = 0
        self.sample()

    @property
    def cpu_time(self) -> float:
        return max(0, self.cpu_ns - self.cpu_base_ns) / 1e9
