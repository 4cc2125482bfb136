"""The local process backend: one forked child of a warm fork server per fold.

For single-user setups: the child runs as the worker's user with rlimits, a
clean environment and a fresh work dir, but it can read what that user can
read. Production deployments with untrusted participants use Docker.
"""
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from workers.harness import layout
from workers.sandbox.base import (
    Heartbeat,
    Limits,
    SandboxFailure,
    SandboxResult,
    Termination,
    read_capped,
)
from workers.sandbox.monitor import ProcessTreeMonitor

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def sandbox_environment() -> dict[str, str]:
    """The whole environment the submission sees: no secrets from the worker."""
    threads = os.environ.get("DATARUN_SANDBOX_THREADS", "1")
    env = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
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


class _ForkServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.harness.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=sandbox_environment(),
            cwd="/",
            start_new_session=True,
        )
        self._buffer = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, request: dict) -> None:
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

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

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class LocalSandbox:
    name = "local"
    isolation = "process (rlimits, clean environment)"
    # One fork server per worker process, started on first use.
    _server: _ForkServer | None = None

    def __init__(self, heartbeat_interval_s: float = 5.0) -> None:
        self.heartbeat_interval_s = heartbeat_interval_s

    @classmethod
    def _fork_server(cls) -> _ForkServer:
        if cls._server is None or not cls._server.alive():
            cls._server = _ForkServer()
        return cls._server

    @classmethod
    def warm_up(cls) -> None:
        cls._fork_server()

    def run(self, workdir: Path, limits: Limits, heartbeat: Heartbeat) -> SandboxResult:
        server = self._fork_server()
        request = {
            "workdir": str(workdir),
            "cpu_time_s": limits.cpu_time_s,
            "file_size_bytes": limits.file_size_bytes,
        }
        try:
            server.send(request)
            started = server.read_line(timeout=60)
        except (OSError, SandboxFailure) as exc:
            server.close()
            raise SandboxFailure(f"could not start the sandbox: {exc}") from exc
        if started is None:
            server.close()
            raise SandboxFailure("the sandbox fork server did not answer within 60 s")
        t0 = time.monotonic()
        monitor = ProcessTreeMonitor(started["pid"])
        terminated, reply = self._supervise(server, monitor, limits, heartbeat, t0)
        wall = time.monotonic() - t0
        monitor.sample()
        monitor.kill()  # whatever the fold left behind goes with it
        if reply is None:
            raise SandboxFailure("the sandbox fork server stopped while running a fold")
        exit_code = reply["exit_code"]
        if terminated is None and exit_code < 0:
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
            peak_memory=max(reply["maxrss"], monitor.peak_rss),
            isolation=self.isolation,
            terminated=terminated,
            stdout=stdout,
            stderr=stderr,
            logs_truncated=cut_out or cut_err,
        )

    def _supervise(self, server, monitor, limits, heartbeat, t0):
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
            monitor.sample()
            now = time.monotonic()
            if terminated is None:
                if now - t0 > limits.wall_time_s:
                    terminated = Termination.TIME
                elif monitor.peak_rss > limits.memory_bytes:
                    terminated = Termination.MEMORY
                if terminated is not None:
                    monitor.kill()
            if now - last_beat >= self.heartbeat_interval_s:
                heartbeat()
                last_beat = now
            # Sample often while a fold is young (fast memory bombs), then
            # settle at ten samples a second.
            interval = min(0.1, interval * 1.5)
