"""Run one fold of a hostile submission in a real sandbox backend.

Each test prepares a real work dir from the iris example kit (test labels stay
on the trusted side, as on a worker), runs it in the Docker backend (runtime
image on a real daemon) or the bubblewrap-hardened local backend, and reads
the outcome as the worker does, predictions checked as the service checks
them. A hostile submission reports what it managed to do by raising an error
whose message the participant would read.
"""
import base64
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from datarun import ramp_kits, scoring, services
from tests.conftest import EXAMPLES, docker_unavailable
from tests.workers.folds import fold_ticket, lay_out
from workers.fold_io import read_outcome
from workers.sandbox import Limits, SandboxResult, get_backend

# Values a submission must never see: the worker's own secrets.
SECRET_KEY = "s3cret-key-the-sandbox-must-never-see-0123456789"
DATABASE_URL = "postgres://datarun:db-password-never-in-sandbox@db.internal:5432/datarun"


def local_ready() -> str | None:
    from workers.sandbox.local import bwrap_available

    if not bwrap_available():
        return "bubblewrap (bwrap) is not installed or cannot create namespaces here"
    return None


@pytest.fixture(scope="session")
def prepared_iris(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("iris") / "prepared"
    ramp_kits.prepare_kit(EXAMPLES / "iris", out)
    return out


@pytest.fixture(scope="session")
def sandbox_root(tmp_path_factory) -> Path:
    # Work dirs live outside /tmp, as in a deployment (var/work), so that the
    # sandbox's private /tmp is not where they are.
    root = Path(tempfile.mkdtemp(prefix="datarun-security-", dir="/var/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Fold:
    result: SandboxResult
    outcome: services.FoldOutcome
    workdir: Path

    @property
    def error(self) -> str:
        return self.outcome.error


@pytest.fixture(params=["docker", "local"])
def backend_name(request) -> str:
    reason = docker_unavailable() if request.param == "docker" else local_ready()
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture
def worker_secrets(monkeypatch):
    """The worker's environment holds real-looking secrets during the fold."""
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)


def disguise(source: str) -> str:
    """The source as an attacker would send it: past ramp-workflow's keyword
    filter (which refuses words like ``subprocess`` or `` open``), so that
    what stops it is the sandbox, not the filter."""
    payload = base64.b64encode(source.encode()).decode()
    return f"import base64\nexec(base64.b64decode({payload!r}).decode())\n"


@pytest.fixture
def run_fold(prepared_iris, sandbox_root, worker_secrets):
    """``run_fold(backend, source, **limits)``: one fold of ``estimator.py = source``."""
    def run(backend_name: str, source: str, **limit_overrides) -> Fold:
        backend = get_backend(backend_name, heartbeat_interval_s=1.0, work_dir=sandbox_root)
        files = {"estimator.py": disguise(source).encode()}
        spec = fold_ticket(prepared_iris, files)
        limits = Limits(**{"wall_time_s": 8, "memory_mb": 400, "cpus": 1.0,
                           "file_size_bytes": 32 * 2**20, "disk_bytes": 64 * 2**20,
                           **limit_overrides})
        workdir = Path(tempfile.mkdtemp(dir=backend.workdir_parent()))
        lay_out(spec, workdir, prepared_iris, files, link_inputs=backend.inputs_read_only)
        result = backend.run(workdir, limits, heartbeat=lambda: None)
        outcome = read_outcome(spec, workdir, result, limits)
        if not outcome.error:
            for y, n, what in ((outcome.y_pred_train, 120, "training set"),
                               (outcome.y_pred_test, 30, "test set")):
                problem = scoring.check_predictions(y, n_rows=n, row_shape=[3], what=what)
                if problem:
                    outcome.error = f"{problem} in fold 0"
                    break
        return Fold(result, outcome, workdir)
    return run


def stray_containers(*, running_only: bool = False) -> list[str]:
    """Fold containers (any state, or only running ones) on this daemon."""
    out = subprocess.run(["docker", "ps", "-q" if running_only else "-aq",
                          "--filter", "label=org.datarun.node"],
                         capture_output=True, text=True)
    return out.stdout.split()


def stray_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After every hostile fold: no container and no process of it is left."""
    yield
    if "backend_name" not in request.fixturenames:
        return
    if docker_unavailable() is None:
        assert stray_containers() == [], "a fold container was left behind"
    leftovers = [p for p in stray_processes("hostile-marker") if p.pid != os.getpid()]
    assert leftovers == [], f"processes left behind: {leftovers}"
