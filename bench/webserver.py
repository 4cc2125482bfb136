"""A gunicorn of the platform for benchmarks: the runner API that fold
workers talk to. Started with this process's environment; stopped by the
caller."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_web(log_path: Path, *, workers: int = 2) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", str(workers), "--threads", "4", "--error-logfile", "-"],
        cwd=ROOT, env={**os.environ, "DEBUG": "0"}, stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/api/v1/health/", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the web server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
