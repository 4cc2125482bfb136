"""The local process backend: one forked child of a warm fork server per fold.

For single-user setups. The child runs as the worker's user with rlimits, a
clean environment and a fresh work dir. Where bubblewrap (``bwrap``) is
installed, the fork server and its children also run in their own namespaces:
no network, a read-only view of the system (the interpreter, its libraries and
the harness only: no data, no storage, no /home), a private size-capped
``/tmp``, their own process tree, and only this server's work dirs writable.
Without bubblewrap the child can read what the worker's user can read.
Production deployments with untrusted participants use Docker.
"""
import atexit
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from workers import gpus
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
from workers.sandbox.monitor import ProcessTreeMonitor, descendants

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def sandbox_environment(python: str = sys.executable) -> dict[str, str]:
    """The whole environment the submission sees: no secrets from the worker."""
    threads = os.environ.get("DATARUN_SANDBOX_THREADS", "1")
    env = {
        "PATH": os.path.dirname(python) + ":/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "HOME": "/nonexistent",
    }
    if "DATARUN_SANDBOX_PRELOAD" in os.environ:
        env["DATARUN_SANDBOX_PRELOAD"] = os.environ["DATARUN_SANDBOX_PRELOAD"]
    return env


def bwrap_available() -> bool:
    """Whether bubblewrap is installed, allowed (``DATARUN_LOCAL_BWRAP`` not
    ``off``) and works on this host (user namespaces or setuid root)."""
    if os.environ.get("DATARUN_LOCAL_BWRAP", "auto") == "off" or not shutil.which("bwrap"):
        return False
    probe = subprocess.run(
        ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
         "--symlink", "usr/bin", "/bin", "--", "/bin/true"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return probe.returncode == 0


def _system_binds(venv: Path | None = None) -> list[str]:
    """What the sandbox sees of the host: the interpreter, its libraries and
    the harness code, all read-only; ``venv``: a problem's environment, whose
    interpreter the fold runs instead of the worker's."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for path in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        args += ["--ro-bind-try", path, path]
    seen = set()
    for prefix in (sys.base_prefix, sys.prefix, sys.exec_prefix):
        # Bound at the path the interpreter is started by too, when that goes
        # through a symbolic link (a venv linked from elsewhere).
        for path in dict.fromkeys((os.path.realpath(prefix), os.path.abspath(prefix))):
            if path not in seen and not path.startswith("/usr/"):
                seen.add(path)
                args += ["--ro-bind", os.path.realpath(prefix), path]
    if venv is not None and str(venv) not in seen:
        args += ["--ro-bind", os.path.realpath(venv), str(venv)]
    harness = PROJECT_ROOT / "workers"
    args += ["--ro-bind", str(harness), str(harness)]
    return args


CGROUP_ROOT = Path("/sys/fs/cgroup")


class PidsCgroup:
    """A pids cgroup holding one fork server and its folds, so that the kernel
    refuses a fork past a fold's process limit: ``RLIMIT_NPROC`` does not bind
    root, and a fork bomb outruns any sampling. Made under this process's own
    cgroup (v1 ``pids`` hierarchy, or v2 where its parent delegates ``pids``);
    :meth:`create` gives None where the worker may not (not root)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str) -> "PidsCgroup | None":
        try:
            own = dict(line.strip().split(":", 2)[1:] for line in
                       Path("/proc/self/cgroup").read_text().splitlines())
        except (OSError, ValueError):
            return None
        if "pids" in own and (CGROUP_ROOT / "pids").is_dir():
            parent = CGROUP_ROOT / "pids" / own["pids"].lstrip("/")
        elif "" in own and (CGROUP_ROOT / "cgroup.controllers").exists():
            parent = CGROUP_ROOT / own[""].lstrip("/")
            try:
                if "pids" not in (parent / "cgroup.subtree_control").read_text().split():
                    return None
            except OSError:
                return None
        else:
            return None
        path = parent / name
        try:
            path.mkdir()
        except OSError:
            return None
        if not (path / "pids.max").exists():
            path.rmdir()
            return None
        return cls(path)

    def enter(self) -> None:
        """Move the calling process in (run in the fork server's process
        before it starts, so that everything it forks is inside)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def allow(self, more: int) -> None:
        """Let the processes inside start ``more`` tasks beyond those they have."""
        current = int((self.path / "pids.current").read_text())
        (self.path / "pids.max").write_text(str(current + more))

    def refused(self) -> int:
        """Forks refused so far for passing the limit."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)  # its last processes are still exiting
        logger.warning("could not remove the cgroup %s", self.path)


class _ForkServer:
    def __init__(self, root: Path, bwrap: bool, tmp_bytes: int,
                 gpu_devices: tuple[str, ...] = (), interpreter: Path | None = None) -> None:
        self.root = root
        self.gpu_devices = gpu_devices
        # A problem's own environment's python (None: the worker's own).
        self.interpreter = interpreter
        root.mkdir(parents=True, exist_ok=True)
        self.cgroup = PidsCgroup.create(f"datarun-{root.name}")
        # A process that exits without closing its sandbox (a test run, an
        # interpreter exiting) still leaves no server, root or cgroup.
        atexit.register(self.close)
        python = str(interpreter) if interpreter is not None else sys.executable
        command = [python, "-m", "workers.harness.forkserver"]
        env = sandbox_environment(python)
        if bwrap:
            binds = _system_binds(interpreter.parent.parent if interpreter is not None else None)
            env["DATARUN_PRIVATE_TMP"] = "1"
            # Paths bound into the sandbox, which the /tmp wipe must not touch
            # when they lie under /tmp (a checkout or a work dir in /tmp).
            env["DATARUN_SANDBOX_KEEP"] = os.pathsep.join(
                [str(root)] + [binds[i + 2] for i, a in enumerate(binds) if a == "--ro-bind"])
            command = [
                "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                "--cap-drop", "ALL", "--hostname", "sandbox",
                # /tmp first: binds below it (a checkout in /tmp) go on top.
                "--size", str(tmp_bytes), "--tmpfs", "/tmp",
                *binds,
                "--proc", "/proc", "--dev", "/dev",
                # /dev/shm (semaphores, shared memory) a small tmpfs of its
                # own, wiped after each fold; nothing else in /dev writable.
                "--size", str(tmp_bytes), "--tmpfs", "/dev/shm",
                # The device files of this server's GPUs, if its folds get any.
                *[arg for node in gpus.device_nodes(gpu_devices)
                  for arg in ("--dev-bind", node, node)],
                "--remount-ro", "/dev",
                "--bind", str(root), str(root),
                # The root itself (a tmpfs holding the mount points) read-only
                # too: nothing may persist there from one fold to the next.
                "--remount-ro", "/",
                "--chdir", "/",
                "--", *command,
            ]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,
            preexec_fn=self.cgroup.enter if self.cgroup is not None else None,
        )
        self._buffer = b""
        self.bwrap = bwrap
        # Bound into the sandbox: not the fold's writing, wherever they lie.
        self.keep = env.get("DATARUN_SANDBOX_KEEP", "").split(os.pathsep)

    def clear(self, keep: Path | None = None) -> None:
        """Remove everything under the root but ``keep``: the root is writable
        to the fold as a whole (``../file``), and the next fold (another
        team's) must find nothing of this one."""
        for entry in os.scandir(self.root):
            if keep is not None and entry.path == str(keep):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)

    def written_bytes(self, fold_pid: int, cap: int) -> int:
        """What a running fold has written: the root (its work dir and anything
        beside it), and under bubblewrap its private /tmp and /dev/shm, seen
        through the fold's own /proc root (bound dirs left out)."""
        total = dir_size(self.root, cap)
        if not self.bwrap:
            return total
        for private in ("/tmp", "/dev/shm"):
            base = f"/proc/{fold_pid}/root{private}"
            try:
                entries = list(os.scandir(base))
            except OSError:
                continue  # the fold has ended
            for entry in entries:
                inside = f"{private}/{entry.name}"
                if any(k == inside or k.startswith(inside + os.sep) for k in self.keep if k):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        total += dir_size(Path(entry.path), cap)
                    else:
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
        return total

    def host_pid(self, pid: int) -> int | None:
        """The host's pid of a process the server reports by its own pid: they
        differ when the server runs in its own pid namespace (bubblewrap).
        None when the fold has already ended, its reply waiting (a fold of a
        few milliseconds on a loaded host can end before it is looked up)."""
        if not self.bwrap:
            return pid
        # Generous: on a loaded host a new process can take a while to show
        # in /proc (one second was seen to be too short).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for child in descendants(self.proc.pid):
                try:
                    with open(f"/proc/{child}/status") as f:
                        for line in f:
                            if line.startswith("NSpid:") and int(line.split()[-1]) == pid:
                                return child
                except (OSError, ValueError):
                    continue
            if self.has_reply():
                return None
            time.sleep(0.01)
        raise SandboxFailure(f"could not find the sandboxed process {pid} on the host")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, request: dict) -> None:
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

    def has_reply(self) -> bool:
        """Whether a whole reply line has come (read into the buffer, not taken)."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer and select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._buffer += chunk
        return b"\n" in self._buffer

    def read_line(self, timeout: float) -> dict | None:
        """The next reply, or None if none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise SandboxFailure("the sandbox fork server exited unexpectedly")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self, remove_root: bool = True) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        if remove_root:
            shutil.rmtree(self.root, ignore_errors=True)
        if self.cgroup is not None:
            self.cgroup.remove()


class LocalSandbox:
    name = "local"
    inputs_read_only = False
    # One fork server per worker process, started on first use.
    _server: _ForkServer | None = None
    _bwrap: bool | None = None

    def __init__(self, heartbeat_interval_s: float = 5.0, work_dir: Path | None = None,
                 tmp_bytes: int = 512 * 1024**2) -> None:
        self.heartbeat_interval_s = heartbeat_interval_s
        self.work_dir = Path(work_dir or tempfile.gettempdir())
        self.tmp_bytes = tmp_bytes

    @classmethod
    def uses_bwrap(cls) -> bool:
        if cls._bwrap is None:
            cls._bwrap = bwrap_available()
        return cls._bwrap

    @property
    def isolation(self) -> str:
        if self.uses_bwrap():
            return ("bubblewrap (no network, read-only system view, private /tmp, only the "
                    "work dir writable, own process tree, rlimits)")
        return "process (rlimits, clean environment; no filesystem or network isolation)"

    def _fork_server(self, gpu_devices: tuple[str, ...] | None = None,
                     interpreter: Path | None | bool = False) -> _ForkServer:
        """This process's fork server; a new one when the fold's GPUs
        (``None``: any) are not the ones its sandbox has the devices of, or
        its interpreter (a problem's environment; ``None`` the worker's own,
        ``False`` any) is not the one the server runs."""
        cls = type(self)
        server = cls._server
        if server is not None and server.alive() and server.root.is_relative_to(self.work_dir) \
                and ((gpu_devices is not None and server.gpu_devices != gpu_devices)
                     or (interpreter is not False and server.interpreter != interpreter)):
            # Same root, so that a work dir made under it stays valid.
            server.close(remove_root=False)
            cls._server = _ForkServer(
                server.root, self.uses_bwrap(), self.tmp_bytes,
                server.gpu_devices if gpu_devices is None else gpu_devices,
                server.interpreter if interpreter is False else interpreter)
        elif server is None or not server.alive() or not server.root.is_relative_to(self.work_dir):
            if server is not None:
                server.close()
            root = self.work_dir / f"local-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            cls._server = _ForkServer(root, self.uses_bwrap(), self.tmp_bytes,
                                      gpu_devices or (), interpreter or None)
        return cls._server

    def warm_up(self) -> None:
        self._fork_server()

    def close(self) -> None:
        """Stop this sandbox's fork server (one per process) and any fold it is
        still running: without bubblewrap a fold has its own session, so it
        is not in the server's process group."""
        cls = type(self)
        server = cls._server
        if server is None or not server.root.is_relative_to(self.work_dir):
            return
        try:
            folds = psutil.Process(server.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            folds = []
        for process in folds:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        server.close()
        cls._server = None

    def cleanup(self, workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        server = type(self)._server
        if server is not None and workdir.parent == server.root:
            server.clear()

    def workdir_parent(self) -> Path:
        """Where fold work dirs go: the only place the fork server can write."""
        return self._fork_server().root

    def run(self, workdir: Path, limits: Limits, heartbeat: Heartbeat,
            interpreter: Path | None = None) -> SandboxResult:
        server = self._fork_server(limits.gpu_devices, interpreter)
        # Whatever an earlier fold left beside its work dir (a crash between
        # the fold and its cleanup) is gone before this one starts.
        server.clear(keep=workdir)
        request = {
            "workdir": str(workdir),
            "cpu_time_s": limits.cpu_time_s,
            "file_size_bytes": limits.file_size_bytes,
            "gpu_devices": list(limits.gpu_devices),
        }
        try:
            if server.cgroup is not None:
                server.cgroup.allow(limits.pids)
            refused = server.cgroup.refused() if server.cgroup is not None else 0
            server.send(request)
            started = server.read_line(timeout=60)
        except (OSError, SandboxFailure) as exc:
            server.close()
            raise SandboxFailure(f"could not start the sandbox: {exc}") from exc
        if started is None:
            server.close()
            raise SandboxFailure("the sandbox fork server did not answer within 60 s")
        t0 = time.monotonic()
        fold_pid = server.host_pid(started["pid"])
        if fold_pid is None:
            # Ended and reaped before it was found: the server's reply (its
            # rusage: CPU time and peak memory) is all there is to read, and
            # the server has stopped whatever it left behind.
            monitor = ProcessTreeMonitor(None)
            terminated, reply = None, server.read_line(timeout=0)
            wall = time.monotonic() - t0
        else:
            monitor = ProcessTreeMonitor(fold_pid, max_tasks=limits.pids,
                                         memory_limit=limits.memory_bytes)
            terminated, reply = self._supervise(server, monitor, limits, heartbeat, t0,
                                                fold_pid, refused)
            wall = time.monotonic() - t0
            monitor.sample()
            monitor.kill()  # whatever the fold left behind goes with it
        if reply is None:
            # The fork server is the fold's parent: only the fold (or a crash
            # of the whole host) ends it while a fold runs.
            reply = {"exit_code": None, "cpu_time": 0.0, "maxrss": 0}
            terminated = terminated or Termination.SUPERVISOR
        exit_code = reply["exit_code"]
        if terminated is None and exit_code is not None and exit_code < 0:
            sig = -exit_code
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and reply["cpu_time"]
                                         >= limits.cpu_time_s):
                terminated = Termination.CPU
            elif sig == signal.SIGXFSZ:
                terminated = Termination.FILE_SIZE
        stdout, cut_out = read_capped(workdir / layout.STDOUT, limits.log_bytes)
        stderr, cut_err = read_capped(workdir / layout.STDERR, limits.log_bytes)
        return SandboxResult(
            exit_code=exit_code,
            wall_time=wall,
            cpu_time=max(reply["cpu_time"], monitor.cpu_time),
            peak_memory=max(reply["maxrss"], monitor.peak_memory),
            isolation=self.isolation,
            terminated=terminated,
            stdout=stdout,
            stderr=stderr,
            logs_truncated=cut_out or cut_err,
        )

    def _supervise(self, server, monitor, limits, heartbeat, t0, fold_pid, refused):
        terminated = None
        last_beat = t0
        interval = 0.01
        while True:
            try:
                reply = server.read_line(timeout=interval)
            except SandboxFailure:
                monitor.kill()
                server.close()
                return terminated, None
            if reply is not None:
                return terminated, reply
            # A refused fork first: sampling a tree of forked copies is slow.
            if terminated is None and server.cgroup is not None \
                    and server.cgroup.refused() > refused:
                terminated = Termination.PROCESSES
                monitor.kill()
            monitor.sample()
            now = time.monotonic()
            if terminated is None:
                if now - t0 > limits.wall_time_s:
                    terminated = Termination.TIME
                elif monitor.tasks > limits.pids:
                    terminated = Termination.PROCESSES
                elif monitor.peak_memory > limits.memory_bytes:
                    terminated = Termination.MEMORY
                elif server.written_bytes(fold_pid, limits.disk_bytes) > limits.disk_bytes:
                    terminated = Termination.DISK
                if terminated is not None:
                    monitor.kill()
            if now - last_beat >= self.heartbeat_interval_s:
                try:
                    heartbeat()
                except FoldStopped:
                    # Stopped, not left: the fork server's reply is still read.
                    if terminated is None:
                        terminated = Termination.STOPPED
                        monitor.kill()
                except Exception:  # noqa: BLE001
                    # Leaving now would leave the fork server's reply unread
                    # for the next fold to take as its own: the fold goes on,
                    # and a claim lost meanwhile refuses its report.
                    logger.exception("the heartbeat callback failed; the fold goes on")
                last_beat = now
            # Sample often while a fold is young (fast memory bombs), then
            # settle at ten samples a second.
            interval = min(0.1, interval * 1.5)
