"""A gunicorn of the platform for benchmarks: the runner API that fold
workers talk to, the pages and the API. Started with this process's
environment, with the settings every deployment uses (config/gunicorn.py)
unless ``config`` is False; stopped by the caller."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_web(log_path: Path, *, workers: int | None = 2, options: tuple[str, ...] = (),
              config: bool = True, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application",
               "-b", f"127.0.0.1:{port}", "--error-logfile", "-"]
    if config:
        command[3:3] = ["-c", "python:config.gunicorn"]
    if workers:
        command += ["-w", str(workers)]
    proc = subprocess.Popen(
        [*command, *options], cwd=ROOT, env={**os.environ, "DEBUG": "0", **(env or {})},
        stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/api/v1/health/", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"the web server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
