"""``python -m workers.harness.warm GO``: the first process of a warm container.

The Docker backend starts one container per worker slot before its fold
exists: this process imports the scientific stack, then waits on the named
pipe ``GO`` (bind-mounted read-only from the worker) without using any CPU.
The worker moves the fold's files into the container's mounted ``/work``
directories and writes to the pipe; this process then forks the harness on
``/work`` (the child inherits the imports) and exits with its status, as the
cold container's ``timeout … python -m workers.harness`` does: 128 + N when
the child was killed by signal N. It runs one fold; the worker removes the
container after it.

Before exiting it writes ``done STATUS`` to the named pipe ``done`` beside
``GO`` (when the worker listens) and waits until the worker closes its end:
the worker reads the container's cgroup then, while it still exists, so that
a fold of a few milliseconds is measured (the cgroup, and what it counted, go
with the container's last process). The status saves the worker waiting for
the container to exit through the daemon; the worker takes it only when the
cgroup shows no process of the fold left (the fold's code could write to the
pipe too).

``DATARUN_BACKSTOP_S`` bounds the fold (the worker kills the container at the
wall-time limit; this only matters when the worker died), and
``DATARUN_WARM_IDLE_S`` how long a container never given a fold waits.
"""
import os
import select
import signal
import sys
import time
import traceback

from workers.harness import layout
from workers.harness.forkserver import EXIT_HARNESS_CRASH, warm_up

WORK = "/work"
DONE = "done"


def wait_for_go(path: str, idle_s: float) -> bool:
    """Block until the worker writes "go" to the pipe (False: ``idle_s`` passed)."""
    deadline = time.monotonic() + idle_s
    while True:
        # Open without blocking: the worker's own non-blocking open for
        # writing succeeds only while this end is open, which is how it knows
        # we are ready.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return False
            os.set_blocking(fd, True)
            message = b""
            while chunk := os.read(fd, 64):
                message += chunk
        finally:
            os.close(fd)
        if message.strip() == b"go":
            return True
        # A writer that only checked we were listening: listen again.


def _child() -> None:
    code = EXIT_HARNESS_CRASH
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(WORK)
        # What the cold container's entrypoint does with its shell redirections.
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(os.path.join(WORK, layout.STDOUT), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                      0o644)
        err = os.open(os.path.join(WORK, layout.STDERR), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                      0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        from workers.harness.run import main

        code = main(WORK)
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


def run_fold(backstop_s: int) -> int:
    """Fork the harness, wait for it (at most ``backstop_s``), return its status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child()

    def backstop(signum, frame):
        os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGALRM, backstop)
    signal.alarm(max(1, backstop_s))
    _, status = os.waitpid(pid, 0)
    signal.alarm(0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def say_done(path: str, code: int, wait_s: float = 30.0) -> None:
    """Tell the worker the fold has ended with status ``code`` and wait (at
    most ``wait_s``) until it has read the cgroup and closed its end of the pipe."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # nobody listens (ENXIO): nothing to wait for
    try:
        os.write(fd, f"done {code}\n".encode())
        # A pipe's write end reports an error once no reader is left.
        waiting = select.poll()
        waiting.register(fd, 0)
        waiting.poll(wait_s * 1000)
    except OSError:
        pass
    finally:
        os.close(fd)


def main(go_path: str) -> int:
    # Nothing the warm-up prints reaches the fold's log.
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    warm_up()
    if not wait_for_go(go_path, float(os.environ.get("DATARUN_WARM_IDLE_S", "3600"))):
        return 0
    code = run_fold(int(os.environ.get("DATARUN_BACKSTOP_S", "3600")))
    say_done(os.path.join(os.path.dirname(go_path), DONE), code)
    return code


if __name__ == "__main__":
    # Without the interpreter's teardown (a second or so of freeing the
    # imported stack's objects under load): the fold waits for this exit.
    os._exit(main(sys.argv[1]))
