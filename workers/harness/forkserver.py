"""A warm process that forks one child per fold run.

Importing numpy, pandas, scikit-learn and ramp-workflow costs over a second;
paying it once per worker instead of once per fold is what keeps the platform
faster than running the folds one after another in a single process.

Protocol, one JSON object per line: the worker writes a request
``{"workdir": ..., "cpu_time_s": ..., "file_size_bytes": ...}`` on stdin; the
server answers ``{"pid": N}`` once the child is forked, then
``{"pid": N, "exit_code": ..., "signal": ..., "cpu_time": ..., "maxrss": ...}``
when it has reaped it. The child starts a new session (its pid is its process
group, which the worker kills on a limit), lowers its rlimits, redirects its
output to files in the work dir and runs :func:`workers.harness.run.main`.
"""
import gc
import importlib
import json
import os
import resource
import shutil
import signal
import sys
import traceback

from workers.harness import layout

DEFAULT_PRELOAD = (
    "numpy,pandas,scipy,sklearn,sklearn.base,sklearn.pipeline,sklearn.preprocessing,"
    "sklearn.linear_model,sklearn.ensemble,sklearn.tree,sklearn.model_selection,"
    "sklearn.metrics,rampwf,rampwf.utils.importing,rampwf.workflows,rampwf.score_types,"
    "rampwf.prediction_types"
)
EXIT_HARNESS_CRASH = 70


def preload() -> None:
    for name in os.environ.get("DATARUN_SANDBOX_PRELOAD", DEFAULT_PRELOAD).split(","):
        if name.strip():
            try:
                importlib.import_module(name.strip())
            except ImportError:
                pass  # a missing optional library is imported (and fails) in the child


def exercise() -> None:
    """Run once, on made-up data, what most folds run: unpickling a DataFrame,
    a pipeline's fit and predictions with text labels, ``.npy`` and ``.npz``
    files. The stack imports some of its modules and fills some caches only
    on first use (narwhals' pandas layer, pyarrow's pandas bridge, scikit-learn's
    checks): done here, each fold's child inherits them instead of paying
    about 20 ms for them. Nothing here touches global state a fold sees (no
    option set, no draw from the global random generator); anything that
    fails is skipped (an environment without a library)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in (_exercise_data, _exercise_models):
            try:
                step()
            except Exception:  # noqa: BLE001 - a warm-up only
                pass


def _exercise_data() -> None:
    import io
    import pickle

    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"x": np.arange(8.0), "text": list("abcdabcd"),
                          "when": pd.date_range("2020-01-01", periods=8)})
    pickle.loads(pickle.dumps(frame))
    buffer = io.BytesIO()
    np.savez(buffer, train=np.arange(4), test=np.arange(2))
    buffer.seek(0)
    with np.load(buffer) as fold:
        fold["train"]
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 2)), allow_pickle=False)
    buffer.seek(0)
    np.load(buffer, allow_pickle=False)


def _exercise_models() -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame({"a": np.linspace(0.0, 1.0, 12), "b": np.linspace(1.0, 0.0, 12) ** 2})
    labels = np.array(["no", "yes"] * 6, dtype=object)
    model = make_pipeline(StandardScaler(), LogisticRegression(random_state=0)).fit(X, labels)
    model.predict_proba(X)
    model.predict(X)
    make_pipeline(StandardScaler(), LinearRegression()).fit(X, X["a"].to_numpy()).predict(X)


def warm_up() -> None:
    """What a process that forks folds does first (this server, a warm
    container): the stack imported and exercised, the harness itself
    imported (compiled, where no bytecode is kept) once here rather than in
    each fold's child, and the objects all that made frozen, so that the
    collector never touches (and so copies) their pages in a forked child."""
    preload()
    exercise()
    import workers.harness.run  # noqa: F401

    gc.collect()
    gc.freeze()


def _set_limits(request: dict) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = request.get("cpu_time_s")
    if cpu:
        # SIGXCPU at the soft limit, SIGKILL one second later.
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu) + 1, int(cpu) + 2))
    fsize = request.get("file_size_bytes")
    if fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    nofile = request.get("open_files", 1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def _child(request: dict, protocol_fds: tuple[int, ...]) -> None:
    code = EXIT_HARNESS_CRASH
    try:
        os.setsid()
        for fd in protocol_fds:
            os.close(fd)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        workdir = request["workdir"]
        os.chdir(workdir)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(layout.STDOUT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(layout.STDERR, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        tmp = os.path.join(workdir, layout.TMP_DIR)
        os.environ.update({"HOME": workdir, "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp,
                           # The fold's GPUs only (none: no GPU at all).
                           "CUDA_VISIBLE_DEVICES": ",".join(request.get("gpu_devices", ()))})
        _set_limits(request)
        from workers.harness.run import main

        code = main(workdir)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report anything, then leave
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _become_subreaper() -> None:
    # Processes a fold daemonises (double fork, setsid) are re-parented to
    # this server instead of to init, so that they can be found and stopped.
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _children() -> list[int]:
    pids = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return pids


def _kill_leftovers() -> None:
    """Stop every process a fold left behind; they are all our children now."""
    for _ in range(1000):
        pids = _children()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _wipe_private_tmp() -> None:
    # Under bubblewrap /tmp and /dev/shm are this server's own tmpfs: nothing
    # in them may survive into the next fold (another participant's).
    if os.environ.get("DATARUN_PRIVATE_TMP") != "1":
        return
    # What is bound under /tmp (work dirs, a checkout) stays.
    keep = [p for p in os.environ.get("DATARUN_SANDBOX_KEEP", "").split(os.pathsep) if p]
    for entry in [*os.scandir("/tmp"), *os.scandir("/dev/shm")]:
        if any(k == entry.path or k.startswith(entry.path + os.sep) for k in keep):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def serve() -> None:
    _become_subreaper()
    warm_up()
    requests = sys.stdin.buffer
    # Answer on a private copy of stdout so that nothing a child prints can
    # reach the protocol stream.
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, (0, answers.fileno()))
        answers.write(json.dumps({"pid": pid}).encode() + b"\n")
        _, status, usage = os.wait4(pid, 0)
        _kill_leftovers()
        _wipe_private_tmp()
        reply = {
            "pid": pid,
            "exit_code": os.waitstatus_to_exitcode(status),
            "cpu_time": usage.ru_utime + usage.ru_stime,
            "maxrss": usage.ru_maxrss * 1024,
        }
        answers.write(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    serve()
