"""`datarun runner` processes for tests, started the way the README says."""
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Runner:
    """`datarun runner` in a process group of its own, with an environment
    that names no database and no storage."""

    @staticmethod
    def clean_env() -> dict[str, str]:
        """This process's environment less anything that reaches the
        platform's database, broker or storage."""
        return {k: v for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "DATARUN_STORAGE_DIR", "DATARUN_HOME",
                             "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}

    def __init__(self, url: str, token: str, name: str, home: Path, *extra: str):
        env = self.clean_env()
        # This checkout's code, whichever checkout the shared venv's
        # ``datarun`` script was installed from.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self.log_path = home.with_suffix(".log")
        self.name = name
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("datarun")), "runner", "--url", url,
             "--token", token, "--name", name, "--home", str(home), "--heartbeat", "0.5",
             *extra],
            cwd=home.parent, env=env, stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()
