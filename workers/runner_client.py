"""The runner's side of the runner API (``/api/v1/runner/``): claim a fold,
fetch its inputs by content hash into a local cache, send heartbeats, log
lines and the outcome. Plain HTTP with ``requests``: no database, no shared
disk, nothing of the server's code but the fold contract."""
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import requests

from datarun.contract import SHA256, FoldOutcome, FoldTicket, outcome_to_wire, sha256_file

logger = logging.getLogger(__name__)

# Connection errors and these answers are retried (the web may be restarting).
RETRIED_STATUSES = (502, 503, 504)


class RunnerApiError(Exception):
    """The platform refused a call, or could not be reached after retries."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ClaimLost(RunnerApiError):
    """The fold is no longer this runner's (409), or its token was revoked
    (401): stop it, report nothing."""


class InputMismatch(RunnerApiError):
    """What the platform sent does not match the hash the ticket names."""


class RunnerClient:
    """One runner's connection to the platform (keeps the HTTP connection)."""

    def __init__(self, api_url: str, runner_token: str, *, timeout: float = 30.0,
                 retries: int = 4):
        self.api_url = api_url.rstrip("/") + "/api/v1/runner"
        self.runner_token = runner_token
        self.timeout = timeout
        self.retries = retries
        self.session = requests.Session()

    def _call(self, method: str, path: str, *, auth: str, timeout: float | None = None,
              retries: int | None = None, **kwargs) -> requests.Response:
        retries = self.retries if retries is None else retries
        delay = 0.5
        for attempt in range(retries + 1):
            try:
                response = self.session.request(
                    method, self.api_url + path, headers={"Authorization": auth},
                    timeout=timeout or self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == retries:
                    raise RunnerApiError(f"the platform at {self.api_url} could not be "
                                         f"reached: {exc}") from None
            else:
                if response.status_code not in RETRIED_STATUSES or attempt == retries:
                    return self._checked(response)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            for value in kwargs.get("files", {}).values():
                value[1].seek(0)
        raise AssertionError("unreachable")

    @staticmethod
    def _checked(response: requests.Response) -> requests.Response:
        if response.status_code < 400:
            return response
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        fold_call = "/folds/" in response.url and "/claim/" not in response.url
        lost = response.status_code == 409 or (fold_call and response.status_code == 401)
        error = ClaimLost if lost else RunnerApiError
        raise error(f"{response.request.method} {response.url}: {response.status_code} "
                    f"{message}", response.status_code)

    def claim(self, fold_run_id: int, environment: dict) -> FoldTicket | None:
        """The ticket of the fold, now running for this runner; None when there
        is nothing to run."""
        response = self._call("POST", f"/folds/{fold_run_id}/claim/",
                              auth=f"Runner {self.runner_token}", json=environment)
        if response.status_code == 204:
            return None
        return FoldTicket.from_json(response.json())

    def claim_next(self, environment: dict, *, wait: float = 20.0) -> FoldTicket | None:
        """The next fold of this runner's pool, claimed for it; None when none
        came within ``wait`` seconds (the platform holds the request)."""
        response = self._call("POST", "/claim/", auth=f"Runner {self.runner_token}",
                              json={**environment, "wait": wait},
                              timeout=self.timeout + wait)
        if response.status_code == 204:
            return None
        return FoldTicket.from_json(response.json())

    def register_problem(self, metadata: dict) -> dict:
        """Register a problem prepared on this machine with the pool."""
        return self._call("POST", "/problems/", auth=f"Runner {self.runner_token}",
                          json=metadata, timeout=max(self.timeout, 120)).json()

    def environment(self, lock_hash: str) -> dict:
        """The lock of a problem's environment (``ticket.environment``)."""
        return self._call("GET", f"/environments/{lock_hash}/",
                          auth=f"Runner {self.runner_token}").json()

    def fetch_wheel(self, sha256: str, dest: Path) -> None:
        """Write the locked package file with this sha256 to ``dest`` (streamed)."""
        response = self._call("GET", f"/wheels/{sha256}", auth=f"Runner {self.runner_token}",
                              stream=True, timeout=max(self.timeout, 300))
        with open(dest, "wb") as f:
            for chunk in response.iter_content(1 << 20):
                f.write(chunk)

    def fetch(self, ticket: FoldTicket, digest: str, dest: Path) -> None:
        """Write the input named by ``digest`` to ``dest`` (streamed)."""
        response = self._call("GET", f"/folds/{ticket.fold_run_id}/inputs/{digest}",
                              auth=f"Fold {ticket.token}", stream=True)
        with open(dest, "wb") as f:
            for chunk in response.iter_content(1 << 20):
                f.write(chunk)

    def heartbeat(self, ticket: FoldTicket) -> None:
        self._call("POST", f"/folds/{ticket.fold_run_id}/heartbeat/",
                   auth=f"Fold {ticket.token}")

    def send_lines(self, ticket: FoldTicket, lines: list[tuple[str, str]]) -> bool:
        """False once the run's log is full (stop sending)."""
        response = self._call("POST", f"/folds/{ticket.fold_run_id}/logs/",
                              auth=f"Fold {ticket.token}",
                              json={"lines": [list(line) for line in lines]})
        return bool(response.json().get("accepted"))

    def report(self, ticket: FoldTicket, outcome: FoldOutcome, *,
               retries: int | None = None) -> None:
        meta, arrays = outcome_to_wire(outcome)
        files = {name: (f"{name}.npy", _Rewindable(data), "application/octet-stream")
                 for name, data in arrays.items()}
        self._call("POST", f"/folds/{ticket.fold_run_id}/outcome/",
                   auth=f"Fold {ticket.token}",
                   data={"outcome": json.dumps(meta)}, files=files, retries=retries)


class _Rewindable:
    """Bytes that ``requests`` can send again after a retried call."""

    def __init__(self, data: bytes):
        import io

        self._buffer = io.BytesIO(data)

    def read(self, *args):
        return self._buffer.read(*args)

    def seek(self, *args):
        return self._buffer.seek(*args)

    def tell(self):
        return self._buffer.tell()


class InputCache:
    """Inputs kept by content hash: a second fold of the same problem (or a
    submission file already seen) downloads nothing."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        if not SHA256.match(digest):
            raise InputMismatch(f"{digest!r} is not a sha256")
        return self.root / digest[:2] / digest

    def get(self, digest: str, download) -> Path:
        """The cached file with this content, downloaded by ``download(path)``
        when missing and kept only if its sha256 matches."""
        path = self.path(digest)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        os.close(fd)
        try:
            download(Path(tmp))
            actual = sha256_file(tmp)
            if actual != digest:
                raise InputMismatch(f"the input the platform sent has sha256 {actual}, not "
                                    f"the {digest} its ticket names; it was not used")
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path
