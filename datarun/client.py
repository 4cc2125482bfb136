"""A Python client for a Datarun server's REST API (``/api/v1/``).

It needs only ``requests`` (no Django), so it works from a notebook::

    from datarun.client import Client
    client = Client("https://datarun.example.org")
    client.login("alice", "secret")
    sub = client.submit("iris", "my-forest", "iris/submissions/starting_kit")
    client.wait(sub["id"])["scores"]

Every refusal from the server raises a :class:`DatarunError` subclass carrying
the server's message (which says what to fix) and its details.
"""
from __future__ import annotations

import ast
import io
import json
import os
import stat
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath

import requests

FINAL_STATES = frozenset({"scored", "error", "cancelled"})
DEFAULT_TIMEOUT_S = 30.0
# The API pages every list; the client reads them whole, this many at a time.
MAX_PAGE_SIZE = 500
# Bigger .py files in a zip are left to the server, which caps what it reads.
ZIP_PRECHECK_MAX_BYTES = 10 * 1024 * 1024


# A submission is sent again this many times (after 1, 2, 4, 8 s) when the
# server cannot be reached or is briefly unavailable.
SUBMIT_RETRIES = 4


class DatarunError(Exception):
    """The server refused a request, or could not be asked.

    ``status`` is the HTTP status (None when no answer came), ``code`` and
    ``message`` the server's ``error.code`` and ``error.message``, ``details``
    its ``error.details``.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str = "error",
                 details: dict | None = None, url: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}
        self.url = url


class AuthError(DatarunError):
    """Not logged in, a wrong password or token (401), or not allowed (403)."""


class NotFoundError(DatarunError):
    """No such event, submission or run, or not one you may see (404)."""


class RefusedError(DatarunError):
    """An event rule refuses the request now (429, or 403 for a closed event);
    ``retry_after`` is the number of seconds to wait, when the server says."""

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BadInputError(DatarunError):
    """The request itself is wrong: a missing file, a bad name (400, 409)."""


class ServerUnreachable(DatarunError):
    """No answer from the server: wrong URL, server down, network cut."""


class ServerFailed(DatarunError):
    """The server answered with a 5xx: its fault, not yours."""


# --- saved login -------------------------------------------------------------

def config_path() -> Path:
    """``$XDG_CONFIG_HOME/datarun/config.json`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "datarun" / "config.json"


def load_config() -> dict:
    """The saved login, with ``DATARUN_URL`` / ``DATARUN_TOKEN`` overriding it."""
    path = config_path()
    config: dict = {}
    if path.is_file():
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AuthError(f"cannot read the saved login {path} ({exc}): run "
                            "'datarun login URL' again") from exc
    if os.environ.get("DATARUN_URL"):
        config["url"] = os.environ["DATARUN_URL"]
    if os.environ.get("DATARUN_TOKEN"):
        config["token"] = os.environ["DATARUN_TOKEN"]
    return config


def save_config(config: Mapping) -> Path:
    """Write the login readable by its owner only (it holds an API token)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # also when the file existed with wider rights
        json.dump(dict(config), out, indent=2)
    return path


# --- files -------------------------------------------------------------------

def expected_file_names(workflow_elements: list[str]) -> list[str]:
    """One file per workflow element: ``<element>.py`` unless it names its extension."""
    return sorted(e if "." in e else f"{e}.py" for e in workflow_elements)


def extract_zip(data: bytes, dest_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """Unzip ``data`` under ``dest_dir``, refusing members that would land
    outside it (absolute paths, drive letters, ``..``), symbolic links and,
    unless ``overwrite``, files that exist already (your edited kit).
    Nothing is written when any member is refused."""
    dest = Path(dest_dir)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        targets = []
        for member in members:
            name = member.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
                raise BadInputError(f"the archive holds an unsafe path {member.filename!r}; "
                                    "nothing was extracted")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise BadInputError(f"the archive holds a symbolic link {member.filename!r}; "
                                    "nothing was extracted")
            targets.append(dest.joinpath(*parts))
        existing = [str(t) for m, t in zip(members, targets, strict=True)
                    if not m.is_dir() and t.exists()]
        if existing and not overwrite:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise BadInputError(f"{existing[0]}{more} exist already: choose another folder, "
                                "or overwrite them (datarun download-kit --force)")
        written = []
        for member, target in zip(members, targets, strict=True):
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            written.append(target)
    return written


# --- the client --------------------------------------------------------------

KIT_FOLDER_SKIPPED = {"__pycache__", ".git", "training_output", ".ipynb_checkpoints"}


def zip_kit_folder(folder: Path) -> bytes:
    """The kit folder's files zipped (no caches, no .git, no training output)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and not KIT_FOLDER_SKIPPED & set(relative.parts) \
                    and path.suffix != ".pyc":
                archive.write(path, relative.as_posix())
    return buffer.getvalue()


class Client:
    """A Datarun server at ``url`` (e.g. ``http://127.0.0.1:8000``), as the
    user whose API ``token`` is given (or obtained with :meth:`login`)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S):
        if not url.startswith(("http://", "https://")):
            raise BadInputError(f"the server URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "datarun-client"

    @classmethod
    def from_config(cls, timeout: float = DEFAULT_TIMEOUT_S) -> Client:
        """The client of the saved login (``datarun login``)."""
        config = load_config()
        if not config.get("url"):
            raise AuthError("not logged in: run 'datarun login URL' (or set DATARUN_URL "
                            "and DATARUN_TOKEN)")
        return cls(config["url"], token=config.get("token"), timeout=timeout)

    # --- HTTP ----------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        try:
            response = self._session.request(method, url, headers=headers,
                                             timeout=self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            raise ServerUnreachable(f"could not reach the Datarun server at {self.url} "
                                    f"({url}): {_reason(exc)}", url=url) from exc
        except requests.Timeout as exc:
            raise ServerUnreachable(f"the Datarun server at {self.url} did not answer "
                                    f"{url} within {self.timeout} s", url=url) from exc
        except requests.RequestException as exc:
            raise ServerUnreachable(f"could not ask {url}: {exc}", url=url) from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _get(self, path: str, **params) -> object:
        params = {k: v for k, v in params.items() if v is not None}
        return _json(self._request("GET", path, params=params))

    def _get_all(self, path: str, **params) -> list[dict]:
        """Every item of a paginated list, page after page (the largest pages)."""
        items, page = [], 1
        while True:
            answer = self._get(path, page=page, page_size=MAX_PAGE_SIZE, **params)
            items += answer["results"]
            if page >= answer["pages"]:
                return items
            page += 1

    # --- account -------------------------------------------------------------

    def login(self, username: str, password: str) -> str:
        """Exchange a username and password for an API token, keep and return it."""
        try:
            response = self._request("POST", "auth/token/",
                                     data={"username": username, "password": password})
        except BadInputError as exc:
            raise AuthError(f"login refused for {username!r} at {self.url}: wrong username "
                            "or password", status=exc.status, code=exc.code,
                            details=exc.details, url=exc.url) from exc
        self.token = _json(response)["token"]
        return self.token

    # --- events --------------------------------------------------------------

    def events(self) -> list[dict]:
        return self._get_all("events/")

    def event(self, name: str) -> dict:
        """The event, its problem (score types, ``workflow_elements``), rules and your team."""
        return self._get(f"events/{name}/")

    def download_kit(self, event: str, dest_dir: str | Path = ".",
                     overwrite: bool = False) -> list[Path]:
        """Download the event's starting kit (problem.py, README, the starting
        kit submission, the training data) and unzip it under ``dest_dir``
        (files there already are kept unless ``overwrite``)."""
        data = self._request("GET", f"events/{event}/starting-kit.zip").content
        return extract_zip(data, dest_dir, overwrite=overwrite)

    # --- sign-up and teams ----------------------------------------------------

    def signup(self, event: str) -> dict:
        """Sign up to ``event``: your one-person team (``{"event", "team",
        "approved"}``; not approved while it awaits an event admin)."""
        return _json(self._request("POST", f"events/{event}/signup/"))

    def team(self, event: str) -> dict:
        """Your team in ``event``: ``id``, ``name``, ``approved``, ``members``."""
        return self._get(f"events/{event}/team/")

    def team_history(self, event: str) -> dict:
        """Your team's rank over time in ``event``: ``points`` (``t``, ``rank``,
        ``teams``, ``best``, ``best_submission``), one per change, and
        ``submissions`` (each scored one with its official public score)."""
        return self._get(f"events/{event}/team/history/")

    def team_rename(self, event: str, name: str) -> dict:
        return _json(self._request("PATCH", f"events/{event}/team/", json={"name": name}))

    def team_invite(self, event: str, username: str) -> dict:
        """Invite ``username`` into your team (up to the event's team size)."""
        return _json(self._request("POST", f"events/{event}/team/invitations/",
                                   json={"username": username}))

    def team_leave(self, event: str) -> None:
        """Leave your team (not once you have submitted with it)."""
        self._request("POST", f"events/{event}/team/leave/")

    def invitations(self) -> list[dict]:
        """Invitations into a team, for you: ``id``, ``event``, ``team``, ``invited_by``."""
        return self._get_all("invitations/")

    def invitation_accept(self, invitation_id: int) -> dict:
        """Join the team; your own one-person team goes if it has not submitted."""
        return _json(self._request("POST", f"invitations/{invitation_id}/accept/"))

    def invitation_decline(self, invitation_id: int) -> None:
        self._request("POST", f"invitations/{invitation_id}/decline/")

    def leaderboard(self, event: str, board: str = "public", kind: str | None = None, *,
                    page: int | None = None, page_size: int | None = None,
                    team: str | None = None, search: str | None = None) -> dict:
        """One page of the board (``page``; the first by default), ``team``'s
        rows only, or the rows whose team or submission name holds ``search``."""
        return self._get(f"events/{event}/leaderboard/", board=board, kind=kind, page=page,
                         page_size=page_size, team=team, search=search)

    def leaderboard_csv(self, event: str, board: str = "public",
                        kind: str | None = None) -> str:
        """The whole board as CSV text (for grading): rank, team, members,
        submission, scores, times, contributivity."""
        params = {k: v for k, v in {"board": board, "kind": kind}.items() if v is not None}
        return self._request("GET", f"events/{event}/leaderboard.csv",
                             params=params).content.decode("utf-8")

    # --- organisers ----------------------------------------------------------

    def upload_kit(self, path: str | Path, name: str, title: str = "") -> dict:
        """Superusers: upload a RAMP kit (its folder, zipped here, or a .zip) as
        the problem and unlisted event ``name``; the answer holds the event and
        the import report."""
        path = Path(path)
        if path.is_dir():
            data = zip_kit_folder(path)
            file_name = f"{path.resolve().name}.zip"
        elif path.is_file():
            data, file_name = path.read_bytes(), path.name
        else:
            raise BadInputError(f"{path} is neither a kit folder nor a .zip file")
        response = self._request("POST", "kits/", headers={"Idempotency-Key": uuid.uuid4().hex},
                                 data={"name": name, "title": title},
                                 files=[("kit", (file_name, data))])
        return _json(response)

    def kit_report(self, event: str) -> dict:
        """The import report of an event opened from an uploaded kit (its admins)."""
        return self._get(f"events/{event}/kit-report/")

    # --- submissions ---------------------------------------------------------

    def submit(self, event: str, name: str,
               path_or_files: str | Path | Mapping[str, bytes | str]) -> dict:
        """Submit to ``event`` under ``name``: a folder (the files the problem's
        workflow needs are taken from it), a .zip file, or ``{file name: content}``."""
        if isinstance(path_or_files, Mapping):
            files = [("files", (n, _as_bytes(c))) for n, c in path_or_files.items()]
            _precheck({n: c for _, (n, c) in files})
        else:
            path = Path(path_or_files)
            if path.is_dir():
                files = [("files", (n, c)) for n, c in self._folder_files(event, path).items()]
                _precheck({n: c for _, (n, c) in files})
            elif path.is_file():
                files = [("archive", (path.name, path.read_bytes()))]
                _precheck(_zip_python_files(files[0][1][1]))
            else:
                raise BadInputError(f"{path} is neither a folder nor a .zip file")
        # Sent again after a dropped connection or a 502/503/504 with the same
        # key: the server answers the first submission, never a second one.
        key = uuid.uuid4().hex
        for attempt in range(SUBMIT_RETRIES + 1):
            try:
                response = self._request("POST", f"events/{event}/submissions/",
                                         headers={"Idempotency-Key": key},
                                         data={"name": name}, files=files)
                return _json(response)
            except (ServerUnreachable, ServerFailed) as exc:
                if attempt == SUBMIT_RETRIES or exc.status not in (None, 502, 503, 504):
                    raise
                time.sleep(2 ** attempt)
        raise AssertionError("unreachable")

    def _folder_files(self, event: str, folder: Path) -> dict[str, bytes]:
        problem = self.event(event).get("problem") or {}
        names = expected_file_names(problem.get("workflow_elements") or [])
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise BadInputError(
                f"{folder} lacks {', '.join(missing)}: a submission to {event} holds "
                f"{', '.join(names)}")
        return {n: (folder / n).read_bytes() for n in names}

    def submission(self, submission_id: int) -> dict:
        """State (and ``queue_position`` when queued), per-fold states, scores, error."""
        return self._get(f"submissions/{submission_id}/")

    def submissions(self) -> list[dict]:
        """Your teams' submissions."""
        return self._get_all("submissions/")

    def wait(self, submission_id: int, on_progress: Callable[[dict], None] | None = None,
             poll: float = 1.0, timeout: float | None = None) -> dict:
        """Poll until the submission is scored, failed or cancelled; return it.
        ``on_progress`` gets each detail read on the way."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            detail = self.submission(submission_id)
            if on_progress is not None:
                on_progress(detail)
            if detail["state"] in FINAL_STATES:
                return detail
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"submission {submission_id} is still {detail['state']} "
                                   f"after {timeout} s")
            time.sleep(poll)

    # --- the collaborative phase ---------------------------------------------
    # Other teams' code is readable after the event's public opening.

    def code(self, submission_id: int) -> dict:
        """A submission's files: ``{"id", "name", "team", "files": {name: text}}``."""
        return self._get(f"submissions/{submission_id}/code/")

    def diff(self, submission_id: int, against: int) -> dict:
        """What changed from ``against`` to ``submission_id``, file by file
        (``files``: ``name``, ``changed``, ``diff``, a unified diff)."""
        return self._get(f"submissions/{submission_id}/diff/", against=against)

    def import_code(self, submission_id: int) -> dict:
        """Import a submission's files into your team's sandbox and return them
        (``files``); another team's is credited on your team's next submission,
        however it is sent."""
        return _json(self._request("POST", f"submissions/{submission_id}/import/"))

    def credits(self, submission_id: int) -> dict:
        """The submissions it took code from (``credits``) and that took code
        from it (``reused_by``)."""
        return self._get(f"submissions/{submission_id}/credits/")

    # --- runs and logs -------------------------------------------------------

    def runs(self, submission_id: int) -> list[dict]:
        """Every evaluation of the submission, newest first (``current``: the leaderboard's)."""
        return self._get_all(f"submissions/{submission_id}/runs/")

    def run(self, submission_id: int, run_id: int) -> dict:
        """One run: metadata, folds, scores, metrics, artifacts."""
        return self._get(f"submissions/{submission_id}/runs/{run_id}/")

    def artifact(self, submission_id: int, run_id: int, name: str) -> bytes:
        """A file kept for the run: ``submission/<file>`` or
        ``fold_<k>/y_pred_test.npy`` (names are in ``run(...)["artifacts"]``)."""
        return self._request("GET", f"submissions/{submission_id}/runs/{run_id}/"
                                    f"artifacts/{name}").content

    def reproduce(self, submission_id: int, run_id: int | None = None) -> dict:
        """Event admins: run a scored run again on its recorded inputs; the new
        run's ``reproduction`` says whether the predictions are identical."""
        data = {} if run_id is None else {"run": run_id}
        return _json(self._request("POST", f"submissions/{submission_id}/reproduce/",
                                   json=data))

    def logs(self, submission_id: int, after: int = 0, run_id: int | None = None) -> dict:
        """Log lines after sequence number ``after`` (of the current run unless
        ``run_id``): ``{"lines", "next", "finished", "truncated"}``."""
        if run_id is None:
            return self._get(f"submissions/{submission_id}/logs/", after=after)
        return self._get(f"submissions/{submission_id}/runs/{run_id}/logs/", after=after)

    def follow_logs(self, submission_id: int, after: int = 0, run_id: int | None = None,
                    poll: float = 1.0, timeout: float | None = None) -> Iterator[dict]:
        """Yield log lines as the run writes them, until it has finished and
        every line was delivered."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            page = self.logs(submission_id, after=after, run_id=run_id)
            yield from page["lines"]
            after = page["next"]
            if page["finished"]:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the logs of submission {submission_id} were still "
                                   f"growing after {timeout} s")
            if not page["lines"]:
                time.sleep(poll)


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError as exc:
        raise ServerUnreachable(
            f"{response.url} answered {response.headers.get('Content-Type') or 'something'}, "
            "not JSON: is the URL a Datarun server's?", status=response.status_code,
            url=response.url) from exc


def _precheck(files: dict[str, bytes]) -> None:
    """Refuse here, before sending, a .py file that does not compile, in the
    words of the server's check (``datarun.precheck``, which this file, needing
    only requests, does not import); the server checks again."""
    for name in sorted(n for n in files if n.endswith(".py")):
        line, message, text = None, "", ""
        try:
            ast.parse(files[name], filename=name)  # bytes: a coding line is honoured
            continue
        except SyntaxError as exc:
            line, message, text = exc.lineno, exc.msg, exc.text or ""
        except ValueError as exc:
            message = str(exc)
        where = f"{name}, line {line}" if line else name
        shown = f": {text.strip()}" if text.strip() else ""
        raise BadInputError(f"{where}: {message}{shown} (fix it and submit again; nothing "
                            "was queued and the submission was not counted)",
                            code="invalid_submission",
                            details={"file": name, "line": line, "message": message})


def _zip_python_files(data: bytes) -> dict[str, bytes]:
    """The .py files of a zip to submit, by base name (the server reads the
    archive itself and says what else is wrong with it)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {PurePosixPath(info.filename).name: archive.read(info)
                    for info in archive.infolist()
                    if info.filename.endswith(".py") and not info.is_dir()
                    and not info.filename.startswith("__MACOSX")
                    and info.file_size <= ZIP_PRECHECK_MAX_BYTES}
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        return {}


def _as_bytes(content: bytes | str) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _reason(exc: requests.ConnectionError) -> str:
    # requests nests the socket error a few levels down; its last line is the useful one.
    text = str(exc.args[0] if exc.args else exc)
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") or text


def _error_of(response: requests.Response) -> DatarunError:
    status = response.status_code
    try:
        body = response.json()["error"]
        message, code = str(body["message"]), str(body.get("code", "error"))
        details = body.get("details") or {}
    except (ValueError, KeyError, TypeError):
        message = (f"HTTP {status} from {response.url}, not in Datarun's error shape: "
                   "is the URL a Datarun server's?")
        code, details = "error", {}
    kwargs = {"status": status, "code": code, "details": details, "url": response.url}
    if status == 429 or code == "submission_refused":
        retry = response.headers.get("Retry-After", "")
        return RefusedError(message, retry_after=int(retry) if retry.isdigit() else None,
                            **kwargs)
    if status in (401, 403):
        return AuthError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status >= 500:
        return ServerFailed(message, **kwargs)
    return BadInputError(message, **kwargs)
