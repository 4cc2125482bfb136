"""Where the CPU goes: CPU seconds used by groups of processes, and by the
whole machine, between two readings (benchmarks only).

A group is given by the pids of its roots; it counts every live process of
their trees plus the children they reaped, so that short-lived processes
(fold children, gunicorn requests' helpers) are in. PostgreSQL, Redis and
Docker are found by name: the postmasters, the Redis servers and the Docker
daemons with their container shims; the containers' own CPU is read from
Docker's cgroup, which keeps it after they are removed."""
import time

import psutil

POSTGRES, REDIS, DOCKER = ("PostgreSQL", "Redis", "Docker (daemon, shims)")
CONTAINERS = "Docker's containers (the fold containers, warm ones waiting included)"
# The CPU of every container Docker started (cgroupfs driver), kept by the
# kernel after a container is removed: a removed container's processes and
# its shim are gone from the process table with their CPU time.
DOCKER_CGROUPS = (("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage", 1e-9),
                  ("/sys/fs/cgroup/cpu,cpuacct/docker/cpuacct.usage", 1e-9),
                  ("/sys/fs/cgroup/docker/cpu.stat", 1e-6))


def containers_cpu() -> float | None:
    """CPU seconds used by Docker's containers so far (None: no such cgroup)."""
    for path, unit in DOCKER_CGROUPS:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith("cpu.stat"):
            text = next((line.split()[1] for line in text.splitlines()
                         if line.startswith("usage_usec")), "0")
        return int(text.split()[0]) * unit
    return None


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def services() -> tuple[dict[str, list[int]], set[int]]:
    """The roots of the machine's PostgreSQL, Redis and Docker processes, and
    those of them to count alone, without their descendants (the container
    shims: their containers' processes are counted from Docker's cgroup)."""
    roots: dict[str, list[int]] = {POSTGRES: [], REDIS: [], DOCKER: []}
    alone = set()
    for proc in psutil.process_iter(["name", "ppid"]):
        name = proc.info["name"] or ""
        try:
            parent = psutil.Process(proc.info["ppid"]).name() if proc.info["ppid"] > 1 else ""
        except psutil.Error:
            continue
        if name == "postgres" and parent != "postgres":
            roots[POSTGRES].append(proc.pid)
        elif name == "redis-server":
            roots[REDIS].append(proc.pid)
        elif name in ("dockerd", "containerd"):
            roots[DOCKER].append(proc.pid)
        elif name.startswith("containerd-shim") and parent != name:
            roots[DOCKER].append(proc.pid)
            alone.add(proc.pid)
    return roots, alone


def reading(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group, by the calling
    process itself (``this benchmark``) and by the whole machine (``machine``,
    with ``machine idle``)."""
    out = {}
    found, alone = services()
    for group, pids in {**groups, **found}.items():
        procs = {}
        for pid in pids:
            try:
                root = psutil.Process(pid)
            except psutil.Error:
                continue
            procs.update({p.pid: p for p in ([root] if pid in alone else _tree(root))})
        total = 0.0
        for proc in procs.values():
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
            if proc.pid not in alone:
                total += t.children_user + t.children_system
        out[group] = total
    containers = containers_cpu()
    if containers is not None:
        out[CONTAINERS] = containers
    me = psutil.Process().cpu_times()
    out["this benchmark (its API calls and polling)"] = me.user + me.system
    machine = psutil.cpu_times()
    out["machine idle"] = machine.idle + getattr(machine, "iowait", 0.0)
    out["machine"] = sum(machine) - out["machine idle"]
    return out


def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each group used between two readings."""
    return {group: after[group] - before.get(group, 0.0) for group in after}


def print_used(title: str, seconds: dict[str, float], per: float, unit: str) -> None:
    """One line per group: milliseconds per ``unit`` (``per`` of them), then
    the groups' sum and the machine's own busy time."""
    print(f"{title} (ms per {unit}; {psutil.cpu_count()} CPUs):")
    groups = {g: s for g, s in seconds.items() if not g.startswith("machine")}
    for group, value in groups.items():
        print(f"      {group:<64} {value / per * 1000:8.1f}")
    print(f"      {'all of the above':<64} {sum(groups.values()) / per * 1000:8.1f}")
    busy = seconds["machine"] / (seconds["machine"] + seconds["machine idle"])
    print(f"      {'the machine, busy':<64} {seconds['machine'] / per * 1000:8.1f}"
          f"  ({busy * 100:.0f} % of its CPU time)")


def wait_until_idle(busy_below: float = 0.15, window_s: float = 0.5,
                    timeout_s: float = 60.0) -> float:
    """Wait until the machine's CPUs were busy less than ``busy_below`` of a
    ``window_s`` window (at most ``timeout_s``); the seconds waited."""
    t0 = time.monotonic()
    while True:
        before = psutil.cpu_times()
        time.sleep(window_s)
        after = psutil.cpu_times()
        idle = (after.idle + getattr(after, "iowait", 0.0)) \
            - (before.idle + getattr(before, "iowait", 0.0))
        total = sum(after) - sum(before)
        if total <= 0 or 1 - idle / total < busy_below or time.monotonic() - t0 > timeout_s:
            return time.monotonic() - t0
