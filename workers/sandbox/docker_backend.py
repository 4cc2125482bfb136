"""The Docker backend: one locked-down container per fold run.

The container runs the runtime image (see deploy/runtime) as an unprivileged
user with no network, a read-only root filesystem, a size-capped ``/tmp``,
every capability dropped, ``no-new-privileges``, memory (swap included), CPU
and process limits, and only the fold's ``output/`` writable. Its inputs are
the fold's work dir, mounted read-only; test labels are never in it.

CPU time and peak memory come from the container's cgroup, read by the worker
while the container runs (the participant's code cannot touch them); an OOM
kill becomes a memory-limit error. The container is removed when the run
ends, when the worker is told to stop, and (for a worker killed outright) by
:func:`remove_orphans` when the worker node starts again.
"""
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from workers.harness import layout
from workers.sandbox.base import (
    FoldStopped,
    Heartbeat,
    Limits,
    SandboxFailure,
    SandboxResult,
    Termination,
    dir_size,
    read_capped,
)
from workers.sandbox.image import runtime_image

logger = logging.getLogger(__name__)

SANDBOX_UID = 10001
WORK = "/work"
LABEL_NODE = "org.datarun.node"
LABEL_WORKDIR = "org.datarun.workdir"
# Extra seconds the in-container backstop waits past the wall-time limit: it
# only matters when the worker that should kill the container has died.
BACKSTOP_GRACE_S = 60
NODE_ENV = "DATARUN_WORKER_NODE"

_client = None
_client_lock = threading.Lock()


def docker_client():
    global _client
    with _client_lock:
        if _client is None:
            try:
                import docker
            except ImportError as exc:  # pragma: no cover - a requirement
                raise SandboxFailure("the docker package is not installed") from exc
            try:
                _client = docker.from_env(timeout=30)
                _client.ping()
            except Exception as exc:  # noqa: BLE001 - any failure means "no daemon"
                _client = None
                raise SandboxFailure(
                    f"cannot reach the Docker daemon ({exc}); is dockerd running and is "
                    "DOCKER_HOST or /var/run/docker.sock available to the worker?"
                ) from exc
        return _client


def node_name() -> str:
    return os.environ.get(NODE_ENV) or os.uname().nodename


def remove_orphans(node: str) -> int:
    """Remove fold containers a previous run of worker ``node`` left behind."""
    client = docker_client()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_NODE}={node}"}):
        try:
            container.remove(force=True)
            removed += 1
        except Exception:  # noqa: BLE001 - already gone is fine
            logger.warning("could not remove orphan container %s", container.id[:12])
    if removed:
        logger.warning("removed %d fold container(s) left behind by %s", removed, node)
    return removed


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


class _Cgroup:
    """CPU, memory and process counters of one container, read from the
    host's cgroup fs.

    Knows cgroup v1 (cgroupfs and systemd drivers) and v2. When the worker
    cannot see the container's cgroup (a worker in a container without the
    host's /sys/fs/cgroup), falls back to the Docker stats API.

    Besides CPU time and peak memory it counts the times the container hit
    its memory limit, the OOM kills in it and the forks its pids limit
    refused, so that a fold stopped at the time limit while it was out of
    memory or processes is reported as such.
    """

    ROOT = Path("/sys/fs/cgroup")

    def __init__(self, container, container_id: str, memory_limit: int = 0):
        self.container = container
        self.memory_limit = memory_limit
        self.cpu_ns = 0
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
        self.source = "stats API"
        self._reader = None
        self._pressed_at: float | None = None
        v1 = [("docker", container_id), ("system.slice", f"docker-{container_id}.scope")]
        for parent, name in v1:
            mem = self.ROOT / "memory" / parent / name
            cpu = self.ROOT / "cpuacct" / parent / name
            pids = self.ROOT / "pids" / parent / name
            if (mem / "memory.stat").exists() and (cpu / "cpuacct.usage").exists():
                self._reader = lambda mem=mem, cpu=cpu, pids=pids: self._read_v1(mem, cpu, pids)
                self.source = "cgroup v1"
                return
        for parent, name in v1:
            path = self.ROOT / parent / name
            if (path / "cpu.stat").exists() and (path / "memory.stat").exists():
                self._reader = lambda path=path: self._read_v2(path)
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
        at_limit = self.limit_hits > hits or self.usage >= AT_LIMIT_SHARE * self.memory_limit
        if at_limit and self.held >= PRESSURE_SHARE * self.memory_limit:
            self._pressed_at = time.monotonic()

    def out_of_memory(self) -> bool:
        """Whether the fold ran out of memory: an OOM kill happened in it, or
        its memory was at the limit, the limit being hit, in its last
        :data:`PRESSURE_WINDOW_S` seconds."""
        return bool(self.oom_kills) or (
            self._pressed_at is not None
            and time.monotonic() - self._pressed_at <= PRESSURE_WINDOW_S)

    @property
    def cpu_time(self) -> float:
        return self.cpu_ns / 1e9


class _Interrupted(BaseException):
    """The worker process was told to stop while a container ran."""


class DockerSandbox:
    name = "docker"
    inputs_read_only = True

    def __init__(self, *, image: str | None = None, work_dir: Path | None = None,
                 heartbeat_interval_s: float = 5.0, poll_interval_s: float = 0.05) -> None:
        self.image = image or runtime_image()
        self.work_dir = Path(work_dir or tempfile.gettempdir())
        self.heartbeat_interval_s = heartbeat_interval_s
        self.poll_interval_s = poll_interval_s
        self._image_ref: str | None = None

    @property
    def isolation(self) -> str:
        return ("docker (no network, read-only root, uid 10001, all capabilities dropped, "
                "no-new-privileges, memory+swap, CPU and pids limits)")

    def image_ref(self) -> str:
        """``tag@sha256:…`` of the runtime image, or a SandboxFailure saying how to build it."""
        if self._image_ref is None:
            import docker.errors

            try:
                image = docker_client().images.get(self.image)
            except docker.errors.ImageNotFound:
                raise SandboxFailure(
                    f"the runtime image {self.image} is not on this worker's Docker daemon; "
                    "build it with `python3 deploy/runtime/build.py` (or with `--offline` on "
                    "a machine without an image registry), or set DATARUN_RUNTIME_IMAGE"
                ) from None
            self._image_ref = f"{self.image}@{image.id}"
        return self._image_ref

    def warm_up(self) -> None:
        self.image_ref()

    def close(self) -> None:
        pass  # nothing outlives a fold: each has its own container

    def cleanup(self, workdir: Path) -> None:
        """Remove ``workdir``, with the sandbox user's help for what it left."""
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists() and (workdir / layout.OUTPUT_DIR).exists():
            try:
                remove_as_sandbox_user(self.image, workdir / layout.OUTPUT_DIR)
            except Exception:  # noqa: BLE001 - logged; a leftover dir is not fatal
                logger.exception("could not empty %s", workdir)
            shutil.rmtree(workdir, ignore_errors=True)

    def workdir_parent(self) -> Path:
        # With a containerised worker this directory must have the same path
        # on the host: the daemon mounts fold dirs by host path.
        return self.work_dir

    def _create(self, workdir: Path, limits: Limits):
        from docker.types import DeviceRequest, LogConfig, Ulimit

        out = workdir / layout.OUTPUT_DIR
        # The container's user owns nothing on the host: let it write here only.
        os.chmod(out, 0o777)
        threads = str(max(1, int(limits.cpus)))
        tmp_mb = max(1, limits.disk_bytes // 2**20)
        return docker_client().containers.create(
            self.image,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            network_mode="none",
            hostname="sandbox",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmp_mb}m,mode=1777"},
            volumes={
                str(workdir / layout.INPUT_DIR): {"bind": f"{WORK}/input", "mode": "ro"},
                str(workdir / layout.SUBMISSION_DIR): {"bind": f"{WORK}/submission", "mode": "ro"},
                str(out): {"bind": f"{WORK}/output", "mode": "rw"},
            },
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ipc_mode="private",
            init=True,
            ulimits=[
                Ulimit(name="fsize", soft=limits.file_size_bytes, hard=limits.file_size_bytes),
                Ulimit(name="core", soft=0, hard=0),
                Ulimit(name="nofile", soft=1024, hard=1024),
            ],
            environment={
                "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads,
                "DATARUN_BACKSTOP_S": str(int(limits.wall_time_s + BACKSTOP_GRACE_S)),
            },
            # The fold's GPUs only (a device request the NVIDIA container
            # runtime serves); a fold without GPUs sees none.
            **({"device_requests": [DeviceRequest(device_ids=list(limits.gpu_devices),
                                                  capabilities=[["gpu"]])]}
               if limits.gpu_devices else {}),
            labels={LABEL_NODE: node_name(), LABEL_WORKDIR: str(workdir)},
            log_config=LogConfig(type="none"),
            stop_signal="SIGKILL",
        )

    def run(self, workdir: Path, limits: Limits, heartbeat: Heartbeat) -> SandboxResult:
        import docker.errors
        import requests.exceptions

        image_ref = self.image_ref()
        try:
            container = self._create(workdir, limits)
        except docker.errors.DockerException as exc:
            raise SandboxFailure(f"could not create the fold's container: {exc}") from exc
        previous = _install_stop_handler()
        try:
            try:
                container.start()
            except docker.errors.DockerException as exc:
                raise SandboxFailure(f"could not start the fold's container: {exc}") from exc
            t0 = time.monotonic()
            cgroup = _Cgroup(container, container.id, limits.memory_bytes)
            terminated = None
            last_beat = t0
            exit_code = None
            while exit_code is None:
                cgroup.sample()
                now = time.monotonic()
                if terminated is None:
                    if now - t0 > limits.wall_time_s:
                        terminated = Termination.TIME
                    elif cgroup.fork_refusals:
                        terminated = Termination.PROCESSES
                    elif dir_size(workdir / layout.OUTPUT_DIR, limits.disk_bytes) > \
                            limits.disk_bytes:
                        terminated = Termination.DISK
                    if terminated is not None:
                        _kill(container)
                if now - last_beat >= self.heartbeat_interval_s:
                    try:
                        heartbeat()
                    except FoldStopped:
                        if terminated is None:
                            terminated = Termination.STOPPED
                            _kill(container)
                    last_beat = now
                try:
                    exit_code = container.wait(timeout=self.poll_interval_s)["StatusCode"]
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
                    continue  # still running (the wait timed out)
                except docker.errors.NotFound as exc:
                    raise SandboxFailure("the fold's container disappeared") from exc
            wall = time.monotonic() - t0
            cgroup.sample()
            container.reload()
            state = container.attrs.get("State", {})
            # Stopped at the time limit, or failed on its own, while out of
            # memory or processes: that limit is what it ran into.
            failed = terminated == Termination.TIME or (terminated is None and exit_code != 0)
            if terminated is None and state.get("OOMKilled"):
                terminated = Termination.MEMORY
            elif failed and cgroup.out_of_memory():
                terminated = Termination.MEMORY
            elif failed and cgroup.fork_refusals:
                terminated = Termination.PROCESSES
            if terminated is None and exit_code == 128 + signal.SIGXFSZ:
                terminated = Termination.FILE_SIZE
        except _Interrupted:
            raise SystemExit(1) from None
        except docker.errors.DockerException as exc:
            raise SandboxFailure(f"the Docker daemon failed while running the fold: {exc}") \
                from exc
        finally:
            _restore_stop_handler(previous)
            _remove(container)
        stdout, cut_out = read_capped(workdir / layout.STDOUT, limits.log_bytes)
        stderr, cut_err = read_capped(workdir / layout.STDERR, limits.log_bytes)
        return SandboxResult(
            exit_code=exit_code,
            wall_time=wall,
            cpu_time=cgroup.cpu_time,
            peak_memory=limits.memory_bytes if terminated == Termination.MEMORY
            else cgroup.peak,
            isolation=self.isolation,
            runtime_image=image_ref,
            terminated=terminated,
            stdout=stdout,
            stderr=stderr,
            logs_truncated=cut_out or cut_err,
        )


def remove_as_sandbox_user(image: str, path: Path) -> None:
    """Empty a fold's output dir the worker cannot (a worker that is not root
    cannot delete what the sandbox's user made read-only in there)."""
    docker_client().containers.run(
        image, entrypoint=["/bin/sh", "-c", "chmod -R u+rwx /out; rm -rf /out/* /out/.[!.]*"],
        user=f"{SANDBOX_UID}:{SANDBOX_UID}", network_mode="none", remove=True,
        volumes={str(path): {"bind": "/out", "mode": "rw"}}, labels={LABEL_NODE: node_name()},
    )


def _install_stop_handler():
    """While a container runs, SIGTERM unwinds the run so that it is removed."""
    if threading.current_thread() is not threading.main_thread():
        return signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):
        raise _Interrupted()

    return signal.signal(signal.SIGTERM, stop)


def _restore_stop_handler(previous) -> None:
    if threading.current_thread() is threading.main_thread() and previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _kill(container) -> None:
    try:
        container.kill()
    except Exception:  # noqa: BLE001 - it may have exited on its own meanwhile
        pass


def _remove(container) -> None:
    import docker.errors

    for attempt in range(3):
        try:
            container.remove(force=True)
            return
        except docker.errors.NotFound:
            return
        except Exception:  # noqa: BLE001 - retried, then logged
            time.sleep(0.2 * (attempt + 1))
    logger.error("could not remove fold container %s", container.id[:12])
