"""A problem's environment on a runner with no shared disk: its lock and
its package files fetched over the runner API, each checked against its
sha256, and the venv built here once per lock hash, offline, as the platform
builds it (:func:`datarun.environments.build_venv`). Later folds of any
problem with the same lock reuse it."""
import fcntl
import logging
import os
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from datarun import environments
from datarun.contract import SHA256
from workers.runner_client import RunnerApiError, RunnerClient

logger = logging.getLogger(__name__)

# A file name the platform sends is a wheel's name, never a path.
WHEEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.whl$")


class EnvironmentUnavailable(Exception):
    """The environment cannot be built on this runner (the message says why)."""


def ensure_environment(client: RunnerClient, lock_hash: str, environments_dir: Path,
                       wheels_dir: Path, *, heartbeat=None,
                       heartbeat_interval_s: float = 5.0) -> Path:
    """The interpreter of environment ``lock_hash`` here, built first if
    missing (``heartbeat()`` is called meanwhile: the fold keeps its claim
    while its environment builds)."""
    python = environments.venv_python(environments_dir, lock_hash)
    if python is not None:
        return python
    outcome: dict = {}

    def build():
        try:
            outcome["python"] = _build(client, lock_hash, Path(environments_dir),
                                       Path(wheels_dir))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=build, name=f"environment-{lock_hash[:12]}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(heartbeat_interval_s)
        if worker.is_alive() and heartbeat is not None:
            heartbeat()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["python"]


def _build(client: RunnerClient, lock_hash: str, environments_dir: Path,
           wheels_dir: Path) -> Path:
    environments_dir.mkdir(parents=True, exist_ok=True)
    with _building(environments_dir, lock_hash):
        python = environments.venv_python(environments_dir, lock_hash)
        if python is not None:  # another slot built it meanwhile
            return python
        started = time.monotonic()
        lock = _fetch_lock(client, lock_hash)
        wheels_dir.mkdir(parents=True, exist_ok=True)
        fetched = 0
        for package in lock.packages:
            target = wheels_dir / package.filename
            if not environments.file_has_hash(target, package.sha256):
                _fetch_wheel(client, package, target)
                fetched += target.stat().st_size
        fetched_s = time.monotonic() - started
        try:
            environments.build_venv(lock, environments_dir / lock_hash, wheels_dir)
        except environments.EnvironmentError_ as exc:
            raise EnvironmentUnavailable(exc.message) from exc
        logger.info("environment %s built in %.1f s (%d packages; %.1f MiB fetched in %.1f s)",
                    lock_hash[:12], time.monotonic() - started, len(lock.packages),
                    fetched / 2**20, fetched_s)
    return environments.venv_python(environments_dir, lock_hash)


def _fetch_lock(client: RunnerClient, lock_hash: str) -> environments.Lock:
    try:
        data = client.environment(lock_hash)
    except RunnerApiError as exc:
        raise EnvironmentUnavailable(f"the platform sent no lock: {exc}") from exc
    try:
        packages = [{"name": str(p["name"]), "version": str(p["version"]),
                     "sha256": str(p["sha256"]), "filename": str(p["filename"])}
                    for p in data["packages"]]
        lock = environments.Lock.from_json(str(data.get("requirements", "")), packages,
                                           str(data["python"]))
    except (KeyError, TypeError) as exc:
        raise EnvironmentUnavailable(f"the platform sent no usable lock for "
                                     f"{lock_hash[:12]}") from exc
    if lock.hash != lock_hash:
        raise EnvironmentUnavailable(f"the lock the platform sent has hash {lock.hash[:12]}, "
                                     f"not the {lock_hash[:12]} the ticket names")
    if lock.python != environments.python_tag():
        raise EnvironmentUnavailable(f"the environment is for Python {lock.python}; this "
                                     f"runner has Python {environments.python_tag()}")
    for package in lock.packages:
        if not WHEEL_NAME.match(package.filename) or not SHA256.match(package.sha256):
            raise EnvironmentUnavailable(f"the lock names {package.filename!r} "
                                         f"({package.sha256[:12]}), not a wheel with a sha256")
    return lock


def _fetch_wheel(client: RunnerClient, package: environments.LockedPackage,
                 target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    os.close(fd)
    try:
        try:
            client.fetch_wheel(package.sha256, Path(tmp))
        except RunnerApiError as exc:
            raise EnvironmentUnavailable(f"the platform did not send {package.filename}: "
                                         f"{exc}") from exc
        if not environments.file_has_hash(Path(tmp), package.sha256):
            raise EnvironmentUnavailable(f"{package.filename} as the platform sent it does not "
                                         f"have the sha256 its lock names; it was not used")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def _building(environments_dir: Path, lock_hash: str):
    """One build of a lock at a time on this machine (slots are processes)."""
    with open(environments_dir / f".{lock_hash}.building", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
