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

Warm containers (the default; ``warm=0`` for one cold container per fold):
each worker slot keeps a pool of ``warm`` started containers of the image and
limits of its folds, with the same options; each imports the scientific
stack and waits (:mod:`workers.sandbox.warm_container`,
:mod:`workers.harness.warm`). A fold takes the oldest, and its replacement is
started at once, so that folds back to back find one ready. It runs exactly
one fold and is removed with it; its CPU time and peak memory count from the
fold's start, not the warm-up's. Those that never got a fold are removed
when the worker process stops, or when the slot's folds change image or
limits (another problem).

A container's replacement is started at once only when the slot has no other
container started or starting; the others wait until the slot has run no fold
for :data:`REFILL_AFTER_IDLE_S`. Importing the stack costs about a second of
CPU per container, which the slot's next folds, their reports and the
submission's scoring would otherwise compete with on a small machine; on a
busy slot one container is always warming up for its next fold.
"""
import atexit
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from datarun.contract import sha256_file
from datarun.environments import LOCK_FILE, READY_MARKER, read_lock
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
from workers.sandbox.cgroup import ContainerCgroup
from workers.sandbox.image import runtime_image
from workers.sandbox.warm_container import (
    DEFAULT_CPU_SHARES,
    WarmContainer,
    WarmContainerGone,
    remove_container,
)

logger = logging.getLogger(__name__)

SANDBOX_UID = 10001
WORK = "/work"
LABEL_NODE = "org.datarun.node"
LABEL_WORKDIR = "org.datarun.workdir"
# A warm container waiting for its fold: labelled apart from fold containers,
# since no fold's code has run in it yet.
LABEL_WARM = "org.datarun.warm"
# Extra seconds the in-container backstop waits past the wall-time limit: it
# only matters when the worker that should kill the container has died.
BACKSTOP_GRACE_S = 60
# How often a warm container that has not said its fold ended is looked at
# (it cannot say it when its first process was killed).
EXIT_CHECK_S = 0.5
NODE_ENV = "DATARUN_WORKER_NODE"
# A slot idle this long starts the containers its pool is short of.
REFILL_AFTER_IDLE_S = 0.5

_client = None
_client_lock = threading.Lock()
_thread_clients = threading.local()


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


def _background_client():
    """A client of its own for each thread that starts or removes warm containers."""
    if getattr(_thread_clients, "client", None) is None:
        import docker

        _thread_clients.client = docker.from_env(timeout=30)
    return _thread_clients.client


def node_name() -> str:
    return os.environ.get(NODE_ENV) or os.uname().nodename


def remove_orphans(node: str) -> int:
    """Remove fold containers a previous run of worker ``node`` left behind."""
    client = docker_client()
    removed = 0
    leftovers = [c for label in (LABEL_NODE, LABEL_WARM)
                 for c in client.containers.list(all=True, filters={"label": f"{label}={node}"})]
    for container in leftovers:
        try:
            container.remove(force=True)
            removed += 1
        except Exception:  # noqa: BLE001 - already gone is fine
            logger.warning("could not remove orphan container %s", container.id[:12])
    if removed:
        logger.warning("removed %d fold container(s) left behind by %s", removed, node)
    return removed


ENV_REPOSITORY = "datarun-env"
# A problem's environment on the runtime image: its lock installed into
# /opt/env from the wheels in the build context (no index, no network),
# first on PATH, so that the harness runs with its interpreter.
ENV_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
USER 0:0
COPY wheels/ /tmp/env-wheels/
COPY lock.txt /opt/env-lock.txt
RUN set -eu; /opt/venv/bin/python -m venv --without-pip /opt/env; \\
    /opt/venv/bin/python -m pip --python /opt/env/bin/python install --no-cache-dir \\
        --disable-pip-version-check --no-index --find-links /tmp/env-wheels --no-deps \\
        --require-hashes -r /opt/env-lock.txt; \\
    rm -rf /tmp/env-wheels
ENV PATH=/opt/env/bin:/usr/local/bin:/usr/bin:/bin
USER 10001:10001
"""


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


class _Abandoned(Exception):
    """A pool's container that was no longer wanted before it was started."""


class _Pending:
    """One container of a slot's pool: its start (a future of the starter
    thread), which waits for the slot to idle until :attr:`now` is set."""

    def __init__(self) -> None:
        self.now = threading.Event()
        self.abandoned = False
        self.future: Future | None = None

    def start_now(self) -> None:
        self.now.set()

    def abandon(self) -> None:
        """Not wanted any more: not started if it has not been."""
        self.abandoned = True
        self.now.set()


class _Interrupted(BaseException):
    """The worker process was told to stop while a container ran."""


class DockerSandbox:
    name = "docker"
    inputs_read_only = True

    def __init__(self, *, image: str | None = None, work_dir: Path | None = None,
                 heartbeat_interval_s: float = 5.0, poll_interval_s: float = 0.05,
                 warm: int = 3, env_wheels_dir: Path | None = None,
                 expected_limits: Limits | None = None) -> None:
        self.image = image or runtime_image()
        # Where the host keeps the wheels problems' environments were built
        # from: their images are built from these, with no network.
        self.env_wheels_dir = Path(env_wheels_dir) if env_wheels_dir else None
        self.work_dir = Path(work_dir or tempfile.gettempdir())
        self.heartbeat_interval_s = heartbeat_interval_s
        self.poll_interval_s = poll_interval_s
        # Warm containers kept started for this slot's next folds (0: a cold
        # container per fold): a pool of one image and limits at a time.
        self.warm = int(warm)
        # The limits most folds run under (the platform's defaults): the
        # pool is started with the worker process, before its first fold.
        self.expected_limits = expected_limits
        self._image_ref: str | None = None
        self._pool: deque[_Pending] = deque()
        self._pool_key: tuple | None = None
        # One thread starts the pool's containers, one removes spent ones,
        # each with a Docker client of its own, off the fold's path.
        self._starter: ThreadPoolExecutor | None = None
        self._remover: ThreadPoolExecutor | None = None
        self._closing_at_exit = False
        # Whether a fold runs in this slot, and when the last one ended:
        # deferred containers start once the slot is idle.
        self._fold_running = False
        self._last_fold_end = float("-inf")

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
        if self.warm and self.expected_limits is not None:
            self._fill(self.image, self.expected_limits)

    def environment_image(self, venv: Path, heartbeat: Heartbeat, *,
                          no_cache: bool = False) -> str:
        """``tag@sha256:…`` of the image of a problem's environment: the
        runtime image with the environment's lock installed in ``/opt/env``
        (first on PATH), built once per lock and runtime image, offline
        (``docker build --network none``), from the host's wheel folder.
        ``heartbeat`` is called while it builds; ``no_cache``: none of the
        daemon's build cache (a first build, as bench/environments.py times it)."""
        lock_text = (venv / LOCK_FILE).read_text()
        lock_hash = (venv / READY_MARKER).read_text().strip() or venv.name
        tag = f"{ENV_REPOSITORY}:{lock_hash[:16]}-{self.image.rsplit(':', 1)[-1][:16]}"
        client = docker_client()
        import docker.errors

        try:
            return f"{tag}@{client.images.get(tag).id}"
        except docker.errors.ImageNotFound:
            pass
        self.image_ref()  # the runtime image is there, or say how to build it
        wanted = {p.sha256: f"{p.name}=={p.version}" for p in read_lock(lock_text).packages}
        with tempfile.TemporaryDirectory(prefix="datarun-env-image-") as context:
            wheels = Path(context, "wheels")
            wheels.mkdir()
            for path in sorted(self.env_wheels_dir.glob("*.whl")) if self.env_wheels_dir \
                    and self.env_wheels_dir.is_dir() else []:
                digest = sha256_file(path)
                if wanted.pop(digest, None) is not None:
                    os.link(path, wheels / path.name) if _same_device(path, wheels) \
                        else shutil.copyfile(path, wheels / path.name)
            if wanted:
                raise SandboxFailure(
                    f"the environment {lock_hash[:12]}'s image cannot be built here: "
                    f"{', '.join(sorted(wanted.values()))} not in the wheel folder "
                    f"{self.env_wheels_dir} (DATARUN_ENV_WHEELS_DIR)")
            Path(context, "lock.txt").write_text(lock_text)
            Path(context, "Dockerfile").write_text(ENV_DOCKERFILE)
            build = subprocess.Popen(
                ["docker", "build", "--quiet", *(["--no-cache"] if no_cache else []),
                 "--network", "none", "--build-arg",
                 f"BASE={self.image}", "--label", f"org.datarun.environment={lock_hash}",
                 "-t", tag, context],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            last_beat = time.monotonic()
            try:
                while build.poll() is None:
                    time.sleep(0.2)
                    if time.monotonic() - last_beat >= self.heartbeat_interval_s:
                        heartbeat()
                        last_beat = time.monotonic()
            except BaseException:
                build.kill()
                build.wait()
                raise
            output = build.stdout.read()
            if build.returncode != 0:
                raise SandboxFailure(f"building the environment {lock_hash[:12]}'s image "
                                     f"failed: {output.strip()[-1500:]}")
        return f"{tag}@{client.images.get(tag).id}"

    def close(self) -> None:
        """Remove the warm containers waiting for next folds, if any."""
        # Here, not on the remover's thread: at interpreter exit (atexit) no
        # executor takes new work any more.
        pool, self._pool, self._pool_key = list(self._pool), deque(), None
        for pending in pool:
            pending.abandon()
            if pending.future.cancel():
                continue
            try:
                warm = pending.future.result()
            except Exception:  # noqa: BLE001 - it never started: nothing to remove
                continue
            warm.container = docker_client().containers.prepare_model(warm.container.attrs)
            warm.discard()
        for executor in (self._starter, self._remover):
            if executor is not None:
                executor.shutdown(wait=True)  # containers being removed are gone
        self._starter = self._remover = None

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
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir

    def _options(self, limits: Limits) -> dict:
        """What a fold container is, cold or warm, but its mounts and command."""
        from docker.types import DeviceRequest, LogConfig, Ulimit

        threads = str(max(1, int(limits.cpus)))
        tmp_mb = max(1, limits.disk_bytes // 2**20)
        return dict(
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            network_mode="none",
            hostname="sandbox",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmp_mb}m,mode=1777"},
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
            log_config=LogConfig(type="none"),
            stop_signal="SIGKILL",
        )

    def _create(self, workdir: Path, limits: Limits, image: str | None = None):
        out = workdir / layout.OUTPUT_DIR
        # The container's user owns nothing on the host: let it write here only.
        os.chmod(out, 0o777)
        return docker_client().containers.create(
            image or self.image,
            volumes={
                str(workdir / layout.INPUT_DIR): {"bind": f"{WORK}/input", "mode": "ro"},
                str(workdir / layout.SUBMISSION_DIR): {"bind": f"{WORK}/submission", "mode": "ro"},
                str(out): {"bind": f"{WORK}/output", "mode": "rw"},
            },
            labels={LABEL_NODE: node_name(), LABEL_WORKDIR: str(workdir)},
            **self._options(limits),
        )

    # --- warm containers ------------------------------------------------------------

    def _start_warm(self, client, image: str, limits: Limits, **start) -> WarmContainer:
        if not self._closing_at_exit:
            # A worker process that exits between folds takes its warm
            # containers with it (one killed outright: remove_orphans).
            atexit.register(self.close)
            self._closing_at_exit = True
        return WarmContainer.start(client, image, self.workdir_parent(), limits,
                                   self._options(limits), {LABEL_WARM: node_name()}, **start)

    def _executor(self, which: str) -> ThreadPoolExecutor:
        executor = getattr(self, which)
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"warm{which}")
            setattr(self, which, executor)
        return executor

    def _fill(self, image: str, limits: Limits) -> None:
        """Start containers for the pool of ``image`` and ``limits`` until it
        holds ``warm`` of them; a pool of other ones is emptied first."""
        # What the container is made of: the log cap is the worker's business.
        key = (image, replace(limits, log_bytes=0))
        if key != self._pool_key:
            self._drain()
            self._pool_key = key
        docker_client()  # the daemon answers (else a SandboxFailure here, in the fold's thread)
        while len(self._pool) < self.warm:
            pending = _Pending()
            pending.future = self._executor("_starter").submit(
                self._start_when_idle, pending, image, limits)
            self._pool.append(pending)
        # One container started or starting at least, for the slot's next fold.
        if self._pool and not any(p.now.is_set() for p in self._pool):
            self._pool[0].start_now()

    def _idle(self) -> bool:
        return not self._fold_running and \
            time.monotonic() - self._last_fold_end >= REFILL_AFTER_IDLE_S

    def _start_when_idle(self, pending: _Pending, image: str, limits: Limits) -> WarmContainer:
        """The starter thread's job: start a container of the pool once the
        slot is idle or once it is wanted now (see the module's docstring)."""
        while not pending.now.is_set() and not self._idle():
            pending.now.wait(0.05)
        if pending.abandoned:
            raise _Abandoned()
        return self._start_warm(_background_client(), image, limits)

    def _drain(self) -> None:
        """Remove every container of the pool (those still starting once started)."""
        def discard(future: Future) -> None:
            try:
                warm = future.result()
            except Exception:  # noqa: BLE001 - it never started: nothing to remove
                return
            warm.container = _background_client().containers.prepare_model(
                warm.container.attrs)
            warm.discard()

        while self._pool:
            pending = self._pool.popleft()
            pending.abandon()
            if not pending.future.cancel():
                self._executor("_remover").submit(discard, pending.future)
        self._pool_key = None

    def _discard_later(self, warm: WarmContainer) -> None:
        """Remove a container whose fold is over (it has exited: nothing of
        the fold runs any more) without keeping the fold's result waiting."""
        def discard() -> None:
            warm.container = _background_client().containers.prepare_model(warm.container.attrs)
            warm.discard()

        self._executor("_remover").submit(discard)

    def wait_until_warm(self, timeout_s: float = 120.0) -> None:
        """Start the pool's containers now and block until they listen for
        their folds (benchmarks, tests)."""
        for pending in list(self._pool):
            pending.start_now()
        for pending in list(self._pool):
            os.close(pending.future.result().wait_ready(lambda: None, timeout_s))

    def waiting_memory(self) -> list[int]:
        """The memory (resident and swapped, page cache left out) each started
        container of the pool holds while it waits (benchmarks)."""
        held = []
        for future in [pending.future for pending in self._pool]:
            if future.done() and future.exception() is None:
                cgroup = future.result().cgroup
                cgroup.sample()
                held.append(cgroup.memory)
        return held

    def _take(self, image: str, limits: Limits) -> WarmContainer | None:
        """The pool's oldest container of ``image`` and ``limits``, if one is
        started or starting (None: none is; one queued behind others is
        not waited for), and its replacement set going."""
        key = (image, replace(limits, log_bytes=0))
        warm = None
        if key == self._pool_key and self._pool:
            pending = self._pool.popleft()
            pending.start_now()
            if not pending.future.cancel():
                try:
                    warm = pending.future.result()
                except Exception:  # noqa: BLE001 - logged; the fold starts its own
                    logger.exception("could not start a warm container; the fold starts its own")
        self._fill(image, limits)
        return warm

    def _warm_container(self, workdir: Path, image: str, limits: Limits,
                        heartbeat: Heartbeat):
        """The fold's container, started and listening; returns it and the pipe's end."""
        warm = self._take(image, limits)
        for attempt in range(2):
            if warm is None:
                warm = self._start_warm(docker_client(), image, limits,
                                        cpu_shares=DEFAULT_CPU_SHARES)
            # The main thread's own client from here on.
            warm.container = docker_client().containers.prepare_model(warm.container.attrs)
            warm.cgroup.container = warm.container
            self._fold_container = warm
            # The fold waits for it: the rest of its imports at full weight.
            warm.prioritise()
            try:
                fd = warm.wait_ready(heartbeat)
            except WarmContainerGone:
                if attempt:
                    raise
                logger.warning("warm container %s had exited; starting another",
                               warm.container.id[:12])
                warm.discard()
                warm = None
                continue
            warm.adopt(workdir)
            return warm, fd
        raise AssertionError("unreachable")

    # --- a fold ---------------------------------------------------------------------

    def run(self, workdir: Path, limits: Limits, heartbeat: Heartbeat,
            interpreter: Path | None = None) -> SandboxResult:
        import docker.errors

        # A problem's own environment (``interpreter`` is its host venv's): its image.
        image_ref = self.image_ref() if interpreter is None else None
        previous = _install_stop_handler()
        container = warm = exit_code = None
        self._fold_container = None
        self._fold_running = True
        try:
            if image_ref is None:
                image_ref = self.environment_image(Path(interpreter).parent.parent, heartbeat)
            if self.warm:
                warm, fd = self._warm_container(workdir, image_ref.split("@")[0], limits,
                                                heartbeat)
                container, cgroup = warm.container, warm.cgroup
                warm.go(fd)
            else:
                try:
                    container = self._create(workdir, limits, image=image_ref.split("@")[0])
                    container.start()
                except docker.errors.DockerException as exc:
                    raise SandboxFailure(f"could not start the fold's container: {exc}") \
                        from exc
                cgroup = ContainerCgroup(container, container.id, limits.memory_bytes)
            exit_code, wall, terminated = self._supervise(container, cgroup, workdir, limits,
                                                          heartbeat, warm)
        except FoldStopped:
            # Cancelled while its warm container was still getting ready:
            # it never ran (its container goes below).
            return SandboxResult(exit_code=None, wall_time=0.0, cpu_time=0.0, peak_memory=0,
                                 isolation=self.isolation, runtime_image=image_ref,
                                 terminated=Termination.STOPPED)
        except _Interrupted:
            raise SystemExit(1) from None
        except docker.errors.DockerException as exc:
            raise SandboxFailure(f"the Docker daemon failed while running the fold: {exc}") \
                from exc
        finally:
            self._fold_running = False
            self._last_fold_end = time.monotonic()
            _restore_stop_handler(previous)
            warm = warm or self._fold_container
            if warm is not None and exit_code is not None:
                self._discard_later(warm)
            elif warm is not None:
                warm.discard()
            elif container is not None:
                remove_container(container)
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

    def _supervise(self, container, cgroup: ContainerCgroup, workdir: Path, limits: Limits,
                   heartbeat: Heartbeat, warm: WarmContainer | None = None,
                   ) -> tuple[int, float, Termination | None]:
        """Wait for the started fold, enforcing its limits; its exit status,
        wall time and why it was stopped. A warm container says when its fold
        has ended and waits: its cgroup is read then, before it goes with the
        container (a fold shorter than the poll was otherwise measured as
        0 s of CPU)."""
        import docker.errors
        import requests.exceptions

        t0 = time.monotonic()
        terminated = None
        last_beat = t0
        exit_code = None
        # Whether the exit status is the one the warm container said.
        said = False
        next_exit_check = t0 + EXIT_CHECK_S
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
            if warm is not None and warm.done_fd is not None:
                if warm.fold_ended(self.poll_interval_s):
                    # Its processes are gone, its cgroup not yet: the last reading.
                    cgroup.sample()
                    if warm.said_status is not None and cgroup.fold_processes_gone():
                        # Nothing of the fold runs: its status is the one
                        # said, without waiting for the container to exit.
                        exit_code, said = warm.said_status, True
                    warm.release()
                    if exit_code is not None:
                        break
                elif time.monotonic() < next_exit_check:
                    continue
                else:
                    # It never says it if its first process was killed (the
                    # limits, the OOM killer, the fold's own code): look.
                    next_exit_check = time.monotonic() + EXIT_CHECK_S
                    if not warm.exited():
                        continue
            try:
                exit_code = container.wait(timeout=self.poll_interval_s)["StatusCode"]
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
                continue  # still running (the wait timed out)
            except docker.errors.NotFound as exc:
                raise SandboxFailure("the fold's container disappeared") from exc
        wall = time.monotonic() - t0
        cgroup.sample()
        if said:
            # The container said so: its cgroup, read before it was let go,
            # counts any OOM kill in it, as the daemon's OOMKilled would.
            oom_killed = bool(cgroup.oom_kills)
        else:
            container.reload()
            oom_killed = container.attrs.get("State", {}).get("OOMKilled")
        # Stopped at the time limit, or failed on its own, while out of
        # memory or processes: that limit is what it ran into.
        failed = terminated == Termination.TIME or (terminated is None and exit_code != 0)
        if terminated is None and oom_killed:
            terminated = Termination.MEMORY
        elif failed and cgroup.out_of_memory():
            terminated = Termination.MEMORY
        elif failed and cgroup.fork_refusals:
            terminated = Termination.PROCESSES
        if terminated is None and exit_code == 128 + signal.SIGXFSZ:
            terminated = Termination.FILE_SIZE
        return exit_code, wall, terminated


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
