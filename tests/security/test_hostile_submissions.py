"""Hostile submissions: each is contained, and the participant reads a precise error.

Every submission is an ``estimator.py`` for the iris kit's estimator workflow.
One that probes the sandbox reports what it reached by raising
``RuntimeError("REPORT …")`` from ``fit``, so the test reads the report in the
very message the participant would see.
"""
import ast
import hashlib
import socket
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, docker_unavailable
from tests.security.conftest import DATABASE_URL, SECRET_KEY
from workers.sandbox.base import Termination

PREAMBLE = """
import os, sys, time, signal, socket, subprocess, atexit, tempfile
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


def report(what):
    raise RuntimeError(f"REPORT {what}")


class Probe(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        probe()
        return self

    def predict_proba(self, X):
        return np.full((len(X), 3), 1 / 3)


def get_estimator():
    return Probe()
"""

GOOD = """
from sklearn.linear_model import LogisticRegression


def get_estimator():
    return LogisticRegression(max_iter=500)
"""


def hostile(body: str) -> str:
    return PREAMBLE + "\n\ndef probe():\n" + "\n".join(
        "    " + line for line in body.strip("\n").splitlines())


def reported(fold) -> str:
    prefix = "RuntimeError while training in fold 0: REPORT "
    assert fold.error.startswith(prefix), fold.error
    return fold.error[len(prefix):]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- what the sandbox can see ----------------------------------------------------


def test_searching_the_filesystem_finds_no_test_labels(backend_name, run_fold, prepared_iris):
    source = hostile(f"""
found = []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev")]
    for name in files + dirs:
        if name.startswith("y_test.") or name == "trusted":
            found.append(os.path.join(top, name))
found += [p for p in ({str(prepared_iris)!r}, {str(ROOT / 'datarun')!r}) if os.path.exists(p)]
report(f"found {{found}}")
""")
    fold = run_fold(backend_name, source, wall_time_s=30)
    assert reported(fold) == "found []"
    assert (prepared_iris / "trusted" / "y_test.pkl").exists()  # it is there, outside


def test_the_workers_secrets_are_not_in_the_environment(backend_name, run_fold):
    source = hostile("""
seen = dict(os.environ)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                for item in f.read().split(b"\\0"):
                    key, _, value = item.decode(errors="replace").partition("=")
                    seen[key] = value
        except OSError:
            pass
print(seen)
report(sorted(k for k in seen if k in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL")
              or "postgres://" in seen[k] or "redis://" in seen[k]))
""")
    fold = run_fold(backend_name, source)
    assert reported(fold) == "[]"
    for secret in (SECRET_KEY, DATABASE_URL):
        assert secret not in fold.result.stdout + fold.error


def test_files_outside_the_work_dir_cannot_be_read(backend_name, run_fold, prepared_iris):
    targets = ["/etc/shadow", "/root/.bash_history", "/proc/1/environ",
               str(ROOT / "datarun" / "settings.py"),
               str(prepared_iris / "trusted" / "y_test.pkl"),
               "/var/run/docker.sock"]
    source = hostile(f"""
readable = []
for path in {targets!r}:
    try:
        with open(path, "rb") as f:
            f.read(1)
        if path != "/proc/1/environ" or b"SECRET" in open(path, "rb").read():
            readable.append(path)
    except OSError:
        pass
report(f"readable {{readable}}")
""")
    fold = run_fold(backend_name, source)
    assert reported(fold) == "readable []"


def test_nothing_outside_the_output_dir_can_be_written(backend_name, run_fold, prepared_iris):
    x_train = prepared_iris / "sandbox" / "X_train.pkl"
    before = sha256(x_train)
    source = hostile(f"""
written = []
for path in ["input/X_train.pkl", {str(x_train)!r}, sys.prefix + "/evil.py",
             "/usr/lib/evil", "/etc/evil", "/evil", {str(ROOT / 'evil')!r}]:
    try:
        with open(path, "ab") as f:
            f.write(b"tampered")
        written.append(path)
    except OSError:
        pass
report(f"written {{written}}")
""")
    fold = run_fold(backend_name, source)
    written = ast.literal_eval(reported(fold).removeprefix("written "))
    if backend_name == "docker":
        assert written == []
    else:
        # The local sandbox's inputs are the fold's own copies: writable,
        # harmless; so is its private /tmp (a checkout under /tmp is seen there).
        assert [p for p in written if not p.startswith("/tmp/")] == ["input/X_train.pkl"]
    assert sha256(x_train) == before
    assert not (ROOT / "evil").exists()


def test_privileges_cannot_be_raised(backend_name, run_fold):
    source = hostile("""
gained = []
for name, attempt in [("setuid", lambda: os.setuid(0)), ("chroot", lambda: os.chroot("/")),
                      ("kcore", lambda: open("/proc/kcore", "rb").read(1)),
                      ("mknod", lambda: os.mknod("/tmp/disk", 0o600 | 0o060000, os.makedev(8, 0)))]:
    try:
        attempt()
        gained.append(name)
    except (OSError, PermissionError):
        pass
report(f"gained {gained}")
""")
    fold = run_fold(backend_name, source)
    if backend_name == "docker":
        assert reported(fold) == "gained []"
    else:
        # As root on the host, setuid(0) is a no-op; nothing else is gained.
        assert reported(fold) in ("gained []", "gained ['setuid']")


# --- the network ------------------------------------------------------------------


@pytest.fixture
def host_server():
    """A TCP server on every host address; records who connects."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, peer = server.accept()
                accepted.append(peer)
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def _host_addresses() -> list[str]:
    addresses = {"127.0.0.1", "172.17.0.1"}
    try:
        addresses.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    return sorted(addresses)


def test_no_tcp_connection_reaches_a_server_on_the_host(backend_name, run_fold, host_server):
    port, accepted = host_server
    # The server is reachable from the host itself: the test is not vacuous.
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    for _ in range(20):
        if accepted:
            break
        threading.Event().wait(0.05)
    accepted.clear()
    source = hostile(f"""
reached = []
for host in {_host_addresses()!r}:
    try:
        socket.create_connection((host, {port}), timeout=2).close()
        reached.append(host)
    except OSError:
        pass
report(f"reached {{reached}}")
""")
    fold = run_fold(backend_name, source)
    assert reported(fold) == "reached []"
    assert accepted == []


def test_dns_lookups_fail(backend_name, run_fold):
    source = hostile("""
try:
    socket.getaddrinfo("pypi.org", 443)
    report("resolved pypi.org")
except OSError as exc:
    report(f"lookup failed: {type(exc).__name__}")
""")
    fold = run_fold(backend_name, source)
    assert reported(fold) == "lookup failed: gaierror"


# --- resources ---------------------------------------------------------------------


def test_a_fork_bomb_is_reported_at_the_process_limit(backend_name, run_fold):
    source = hostile("""
while True:
    try:
        os.fork()
    except OSError:
        pass
""")
    fold = run_fold(backend_name, source, wall_time_s=30, pids=64)
    assert fold.error == "exceeded the limit of 64 processes and threads at once in fold 0"
    # Stopped for its processes, before the time limit (and on the local
    # backend, copies sharing their pages are not memory once per copy). How
    # long killing a swarm takes depends on the machine's load (16 s seen with
    # a load of 8 on 2 cores; 2-4 s on a quiet machine), so no tighter bound.
    assert fold.result.terminated is Termination.PROCESSES
    assert fold.result.wall_time < 30


def test_a_fold_at_its_memory_limit_when_time_runs_out_is_out_of_memory(run_fold):
    # Docker only: with swap equal to memory the kernel evicts page cache
    # instead of killing a process whose memory is full, which then crawls
    # until the time limit (the local backend stops it at the limit itself).
    if reason := docker_unavailable():
        pytest.skip(reason)
    source = hostile("""
def anon():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon"))
hoard = []
while anon() < 0.93 * 600 * 2**20:
    hoard.append(b"x" * 2**20)
chunk = b"y" * 2**20
with open("/work/output/big", "wb") as f:
    for _ in range(200):
        f.write(chunk)
buf = bytearray(2**20)
while True:
    with open("/work/output/big", "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
""")
    fold = run_fold("docker", source, memory_mb=600, wall_time_s=15,
                    file_size_bytes=2**30, disk_bytes=2**30)
    assert fold.error == "exceeded the memory limit of 600 MiB in fold 0"
    assert fold.result.wall_time >= 15


def test_a_memory_bomb_is_stopped_at_the_memory_limit(backend_name, run_fold):
    source = hostile("""
hoard = []
while True:
    hoard.append(b"x" * (16 * 2**20))
""")
    fold = run_fold(backend_name, source, memory_mb=300)
    assert fold.error == "exceeded the memory limit of 300 MiB in fold 0"
    assert fold.result.peak_memory >= 200 * 2**20


def test_spinning_the_cpu_is_stopped_at_the_time_limit(backend_name, run_fold):
    fold = run_fold(backend_name, hostile("while True:\n    pass"), wall_time_s=3)
    assert fold.error == "exceeded the time limit of 3 s in fold 0"
    # Its CPU time is measured: 2.9 s of 3 on a quiet machine, 0.9 s with a
    # load of 8 on 2 cores (a sleeping fold shows about 0).
    assert fold.result.cpu_time >= 0.5


def test_sleeping_forever_is_stopped_at_the_time_limit(backend_name, run_fold):
    fold = run_fold(backend_name, hostile("time.sleep(10**6)"), wall_time_s=3)
    assert fold.error == "exceeded the time limit of 3 s in fold 0"
    assert 3 <= fold.result.wall_time < 6


def test_ignoring_sigterm_does_not_outlive_the_time_limit(backend_name, run_fold):
    source = hostile("""
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
while True:
    time.sleep(0.1)
""")
    fold = run_fold(backend_name, source, wall_time_s=3)
    assert fold.error == "exceeded the time limit of 3 s in fold 0"


def test_processes_left_running_after_the_fold_are_stopped(backend_name, run_fold):
    # nothing_left_behind (conftest) checks the host for the marker afterwards.
    source = """
import os, subprocess, sys, time
from sklearn.linear_model import LogisticRegression

subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "hostile-marker"],
                 start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)",
                                  "hostile-marker"])
    os._exit(0)
time.sleep(0.5)


def get_estimator():
    return LogisticRegression(max_iter=500)
"""
    fold = run_fold(backend_name, source)
    assert fold.error == ""


def test_filling_the_temporary_dir_gets_a_clear_error(backend_name, run_fold):
    source = hostile("""
chunk = b"x" * 2**20
with open(os.path.join(tempfile.gettempdir(), "fill"), "wb") as f:
    for i in range(100000):
        f.write(chunk)
        f.flush()
""")
    fold = run_fold(backend_name, source, file_size_bytes=2**30, disk_bytes=64 * 2**20)
    if backend_name == "docker":
        # /tmp is a tmpfs of the fold's disk allowance.
        assert fold.error == ("OSError while training in fold 0: "
                              "[Errno 28] No space left on device")
    else:
        assert fold.error == "wrote more than the limit of 64 MiB of files in fold 0"


def test_filling_the_output_dir_is_stopped_at_the_disk_limit(backend_name, run_fold):
    source = hostile("""
chunk = b"x" * 2**20
for i in range(100000):
    with open(f"output/junk-{i}", "wb") as f:
        f.write(chunk)
""")
    fold = run_fold(backend_name, source, file_size_bytes=2**30, disk_bytes=64 * 2**20)
    assert fold.error == "wrote more than the limit of 64 MiB of files in fold 0"


@pytest.fixture
def local_backend(sandbox_root):
    """The local backend the ``run_fold`` fixture uses (one fork server per
    process), to clean up after a fold as the worker does."""
    from tests.security.conftest import local_ready
    from workers.sandbox import get_backend

    if reason := local_ready():
        pytest.skip(reason)
    return get_backend("local", heartbeat_interval_s=1.0, work_dir=sandbox_root)


def test_writing_beside_the_work_dir_counts_and_leaves_nothing(run_fold, local_backend):
    # 3 x 24 MiB: beside the work dir, in the private /tmp and in /dev/shm.
    source = hostile("""
chunk = b"x" * 2**20
for path in ["../bypass", "/tmp/bypass", "/dev/shm/bypass"]:
    with open(path, "wb") as f:
        for i in range(24):
            f.write(chunk)
            f.flush()
time.sleep(5)
report("not stopped")
""")
    fold = run_fold("local", source, file_size_bytes=2**30, disk_bytes=64 * 2**20)
    assert fold.error == "wrote more than the limit of 64 MiB of files in fold 0"
    local_backend.cleanup(fold.workdir)
    assert list(fold.workdir.parent.iterdir()) == []


def test_a_fold_finds_nothing_a_fold_before_it_wrote(run_fold, local_backend):
    plant = hostile("""
planted = []
for path in ["../planted.py", "../../planted.py", "/tmp/planted.py", "/dev/shm/planted.py",
             "/dev/planted.py", "/planted.py"]:
    try:
        with open(path, "w") as f:
            f.write("stolen = True")
        planted.append(path)
    except OSError:
        pass
report(f"planted {planted}")
""")
    first = run_fold("local", plant)
    planted = ast.literal_eval(reported(first).removeprefix("planted "))
    assert "../planted.py" in planted and "/dev/planted.py" not in planted
    local_backend.cleanup(first.workdir)

    look = hostile("""
found = [p for p in ["../planted.py", "../../planted.py", "/tmp/planted.py",
                     "/dev/shm/planted.py"] if os.path.exists(p)]
found += [e for e in os.listdir("..") if e != os.path.basename(os.getcwd())]
report(f"found {found}")
""")
    second = run_fold("local", look)  # another team's fold, on the same fork server
    assert reported(second) == "found []"


def test_printing_gigabytes_stops_at_the_file_size_limit(backend_name, run_fold):
    source = hostile("""
line = "x" * 2**20
while True:
    print(line)
""")
    fold = run_fold(backend_name, source, file_size_bytes=32 * 2**20)
    assert fold.error == "OSError while training in fold 0: [Errno 27] File too large"
    assert fold.outcome.logs_truncated
    assert len(fold.outcome.stdout) <= 256 * 1024


# --- what comes back ----------------------------------------------------------------


# These submissions replace what the harness writes by patching numpy.save or
# json.dump from their own module: the harness runs in their process, so they
# can always do this; what matters is how the worker reads the result.
SWAP_PREDICTIONS = """
import os
import numpy as np
from sklearn.linear_model import LogisticRegression

_save = np.save


def save(file, arr, *args, **kwargs):
    if str(file).endswith("y_pred_test.npy"):
        return _save(file, REPLACEMENT, allow_pickle=True)
    return _save(file, arr, *args, **kwargs)


np.save = save


def get_estimator():
    return LogisticRegression(max_iter=500)
"""


def test_a_pickle_in_place_of_predictions_is_never_unpickled(backend_name, run_fold):
    marker = Path("/var/tmp") / f"pwned-{uuid.uuid4().hex}"
    source = SWAP_PREDICTIONS.replace("REPLACEMENT", "np.array([Payload()], dtype=object)") + f"""

class Payload:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
"""
    fold = run_fold(backend_name, source)
    assert fold.error.startswith("y_pred_test.npy is not a plain numeric .npy array (")
    assert fold.error.endswith(") in fold 0")
    assert not marker.exists()


def _predicting(expression: str) -> str:
    return PREAMBLE.replace("np.full((len(X), 3), 1 / 3)", expression) + \
        "\n\ndef probe():\n    pass\n"


def test_nan_predictions_are_refused(backend_name, run_fold):
    fold = run_fold(backend_name, _predicting("np.full((len(X), 3), np.nan)"))
    assert fold.error == "predictions on the training set contain 360 NaN or infinite values " \
                         "in fold 0"


def test_infinite_predictions_are_refused(backend_name, run_fold):
    fold = run_fold(backend_name, _predicting("np.full((len(X), 3), np.inf)"))
    assert fold.error == "predictions on the training set contain 360 NaN or infinite values " \
                         "in fold 0"


def test_predictions_of_the_wrong_shape_are_refused(backend_name, run_fold):
    fold = run_fold(backend_name, _predicting("np.full((len(X), 2), 0.5)"))
    assert fold.error == ("predictions on the training set have shape (120, 2), "
                          "expected (120, 3) in fold 0")


def test_a_huge_predictions_file_is_not_read(backend_name, run_fold):
    source = SWAP_PREDICTIONS.replace("REPLACEMENT", "np.zeros((30, 90000))")
    fold = run_fold(backend_name, source)
    assert fold.error.startswith("y_pred_test.npy is 21600128 bytes, more than the ")
    assert fold.error.endswith(" expected in fold 0")


def test_exiting_with_status_0_before_predicting_is_an_error(backend_name, run_fold):
    fold = run_fold(backend_name, hostile("sys.exit(0)"))
    assert fold.error == ("the submission's process ended before writing its predictions "
                          "in fold 0 (did the code call sys.exit()?)")


def test_tampered_step_timings_are_not_recorded(backend_name, run_fold):
    source = """
import json
from sklearn.linear_model import LogisticRegression

_dump = json.dump


def dump(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and "train_time" in obj:
        obj.update(train_time=0.0, valid_time=1e9, test_time=-5)
    return _dump(obj, f, *args, **kwargs)


json.dump = dump


def get_estimator():
    return LogisticRegression(max_iter=500)
"""
    fold = run_fold(backend_name, source)
    assert fold.error == ""  # the predictions are the submission's own: they score
    assert (fold.outcome.train_time, fold.outcome.valid_time, fold.outcome.test_time) == \
        (None, None, None)
    assert fold.outcome.wall_time > 0 and fold.outcome.cpu_time > 0


def test_honest_step_timings_are_recorded(backend_name, run_fold):
    fold = run_fold(backend_name, GOOD)
    assert fold.error == ""
    steps = (fold.outcome.train_time, fold.outcome.valid_time, fold.outcome.test_time)
    assert None not in steps
    assert 0 < sum(steps) <= fold.outcome.wall_time


def test_killing_the_parent_process_ends_only_the_fold(backend_name, run_fold):
    fold = run_fold(backend_name, hostile("os.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(5)"))
    if backend_name == "docker":
        assert fold.error == "the submission's process was killed by SIGKILL in fold 0"
    else:
        assert fold.error == ("killed the sandbox process that supervised it in fold 0 "
                              "(a submission may not signal processes outside its own)")
    # The sandbox recovers: the next fold runs and scores.
    assert run_fold(backend_name, GOOD).error == ""


def test_killing_every_process_it_can_ends_only_the_fold(backend_name, run_fold):
    from workers.sandbox.local import LocalSandbox

    # kill(-1) outside a pid namespace would reach the host's processes.
    assert backend_name == "docker" or LocalSandbox.uses_bwrap()
    fold = run_fold(backend_name, hostile("os.kill(-1, signal.SIGKILL)\ntime.sleep(5)"))
    assert fold.error != ""
    assert run_fold(backend_name, GOOD).error == ""
