"""Commands that talk to a Datarun server through :mod:`datarun.client`.

Results go to stdout (with ``--json``: JSON only), messages to stderr. The
exit codes (:data:`EXIT_CODES`) say what went wrong without parsing text.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from datarun.cli.app import app
from datarun.client import (
    FINAL_STATES,
    AuthError,
    Client,
    DatarunError,
    NotFoundError,
    RefusedError,
    ServerFailed,
    ServerUnreachable,
    save_config,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_REFUSED = 5
EXIT_UNREACHABLE = 6
EXIT_INTERRUPTED = 130  # Ctrl-C while waiting, as shells report SIGINT

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the submission failed or was cancelled",
    EXIT_BAD_INPUT: "bad usage or input",
    EXIT_AUTH: "not logged in, or authentication or permission refused",
    EXIT_NOT_FOUND: "not found (event, submission, run)",
    EXIT_REFUSED: "refused by an event rule (too soon, over the quota, closed)",
    EXIT_UNREACHABLE: "server unreachable (or failing)",
}

# The app belongs to datarun/cli/app.py; the exit codes are documented under
# every command list of `datarun --help`.
app.info.epilog = "Exit codes: " + "; ".join(f"{code} {text}"
                                              for code, text in EXIT_CODES.items()) + "."

POLL_S = 1.0

# Piped output is not cut to 80 columns (COLUMNS still sets the width).
out = Console(highlight=False, emoji=False, soft_wrap=True,
              width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]


def _exit_code(error: DatarunError) -> int:
    if isinstance(error, AuthError):
        return EXIT_AUTH
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, RefusedError):
        return EXIT_REFUSED
    if isinstance(error, (ServerUnreachable, ServerFailed)):
        return EXIT_UNREACHABLE
    return EXIT_BAD_INPUT


@contextmanager
def _reported(json_out: bool) -> Iterator[None]:
    """Turn a client error into its message on stderr (and its JSON on stdout
    with ``--json``) and the command's exit code."""
    try:
        yield
    except DatarunError as error:
        if json_out:
            _print_json({"error": {"code": error.code, "message": error.message,
                                   "details": error.details, "status": error.status}})
        err.print(f"error: {error.message}", markup=False)
        raise typer.Exit(_exit_code(error)) from None


def _add_row(table: Table, *values: str) -> None:
    # Names, titles and error messages are shown as written, never as rich markup.
    table.add_row(*(Text(value) for value in values))


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def _say(text: str) -> None:
    err.print(text, markup=False)


def _client() -> Client:
    return Client.from_config()


# --- login and events ---------------------------------------------------------

@app.command()
def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://127.0.0.1:8000")],
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from stdin (else it is asked).")] = False,
    token: Annotated[str | None, typer.Option(
        "--token", help="Use this API token instead of a username and password.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Log in to a server and save the login (an API token) for the other commands."""
    with _reported(json_out):
        client = Client(url, token=token)
        if token:
            client.submissions()  # any authenticated request checks the token
        else:
            if username is None:
                username = typer.prompt("Username", err=True)
            if password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            else:
                password = typer.prompt("Password", hide_input=True, err=True)
            if not password:
                _say("error: the password is empty")
                raise typer.Exit(EXIT_BAD_INPUT)
            client.login(username, password)
        path = save_config({"url": client.url, "token": client.token, "username": username})
    if json_out:
        _print_json({"url": client.url, "username": username, "config": str(path)})
    else:
        who = f" as {username}" if username else ""
        _say(f"Logged in to {client.url}{who}; the token is saved in {path}")


@app.command()
def events(json_out: JsonOption = False) -> None:
    """The events you can see."""
    with _reported(json_out):
        rows = _client().events()
    if json_out:
        _print_json(rows)
        return
    table = Table("event", "title", "problem", "opens", "closes")
    for e in rows:
        _add_row(table, e["name"], e["title"], e["problem_name"], _day(e["opens_at"]),
                      _day(e["closes_at"]))
    out.print(table)


@app.command("download-kit")
def download_kit(
    event: str,
    dest: Annotated[Path, typer.Option("--dest", "-d", help="Folder to unzip into.")] = Path("."),
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite files that exist already.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Download an event's starting kit (problem.py, README, starting kit, training data)."""
    with _reported(json_out):
        files = _client().download_kit(event, dest, overwrite=force)
    if json_out:
        _print_json({"event": event, "dest": str(dest), "files": [str(f) for f in files]})
        return
    for path in files:
        out.print(str(path), markup=False)
    kits = sorted({p.parent for p in files if p.parent.name == "starting_kit"})
    if kits:
        _say(f"Submit it with: datarun submit {kits[0]} --event {event} --name NAME")


# --- submissions --------------------------------------------------------------

def progress_text(detail: dict) -> str:
    """Where a submission is, in a few words: "queued (position 3)",
    "fold 2 running (1 of 5 folds done)"."""
    state = detail["state"]
    if state in ("new", "queued"):
        ahead = detail.get("queue_position")
        return "queued" if ahead is None else f"queued (position {ahead + 1})"
    if state != "running":
        return state
    folds = detail.get("folds") or []
    n = len(folds) or detail.get("n_folds") or 0
    # Folds are named by their index, as in the API, the web page and the logs.
    running = [str(f["fold"]) for f in folds if f["state"] == "running"]
    done = sum(f["state"] == "scored" for f in folds)
    if running:
        which = f"fold {running[0]}" if len(running) == 1 else f"folds {', '.join(running)}"
        return f"{which} running ({done} of {n} folds done)"
    if n and done == n:
        return "scoring"
    return f"running: {done} of {n} folds done, the others waiting for a worker"


class _Progress:
    """The submission's state on stderr: a spinner on a terminal, a line per
    change otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.last = None
        self.status = None

    def __enter__(self):
        if not self.quiet and err.is_terminal:
            self.status = err.status("submitted")
            self.status.__enter__()
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.__exit__(*exc)

    def update(self, detail: dict) -> None:
        text = progress_text(detail)
        if self.quiet or text == self.last:
            return
        self.last = text
        if self.status is not None:
            self.status.update(text)
        else:
            _say(text)


def _print_log_line(line: dict, console: Console) -> None:
    text = line["text"].rstrip("\n")
    if line["stream"] == "note":
        text = f"({text})"
    console.print(f"fold {line['fold']} | {text}", markup=False)


def _wait(client: Client, submission_id: int, *, show_logs: bool, quiet: bool) -> dict:
    after, logs_done = 0, not show_logs
    polls_after_final = 0
    with _Progress(quiet) as progress:
        while True:
            if not logs_done:
                page = client.logs(submission_id, after=after)
                for line in page["lines"]:
                    _print_log_line(line, err)
                after, logs_done = page["next"], page["finished"]
            detail = client.submission(submission_id)
            progress.update(detail)
            if detail["state"] in FINAL_STATES:
                # The last lines may land just after the final state.
                polls_after_final += 1
                if logs_done or polls_after_final > 10:
                    return detail
            time.sleep(POLL_S)


@app.command()
def submit(
    path: Annotated[Path, typer.Argument(
        metavar="DIR", help="A folder holding the submission's files, or a .zip of them.")],
    event: Annotated[str, typer.Option("--event", "-e")],
    name: Annotated[str, typer.Option("--name", "-n", help="The submission's name.")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once submitted.")] = False,
    logs: Annotated[bool, typer.Option("--logs", help="Show the run's log lines.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Submit a folder (or zip) to an event and follow it until it is scored or fails."""
    with _reported(json_out):
        client = _client()
        detail = client.submit(event, name, path)
        _say(f"Submitted {name} to {event}: submission {detail['id']}")
        if no_wait:
            if json_out:
                _print_json(detail)
            else:
                _say(f"Follow it with: datarun status --event {event}, "
                     f"datarun logs {detail['id']} --follow")
            return
        try:
            detail = _wait(client, detail["id"], show_logs=logs, quiet=json_out)
        except KeyboardInterrupt:
            _say(f"Stopped waiting; submission {detail['id']} goes on: datarun status "
                 f"--event {event}")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        score_types = (client.event(event).get("problem") or {}).get("score_types") or []
    if json_out:
        _print_json(detail)
    elif detail["state"] == "scored":
        out.print(scores_table(detail, score_types))
    if detail["state"] != "scored":
        _report_failure(detail)
        raise typer.Exit(EXIT_FAILED)


def _report_failure(detail: dict) -> None:
    if detail["state"] == "cancelled":
        _say(f"submission {detail['id']} ({detail['name']}) was cancelled")
        return
    whose = {"platform": "the platform failed",
             "problem": "the problem's own code failed"}.get(detail.get("error_kind"), "it failed")
    _say(f"submission {detail['id']} ({detail['name']}): {whose}: {detail.get('error')}")
    traceback = detail.get("error_traceback") or next(
        (f["error_traceback"] for f in detail.get("folds", []) if f.get("error_traceback")), "")
    if traceback:
        _say(traceback.rstrip("\n"))


def _fmt(value, precision: int | None) -> str:
    if value is None:
        return "-"
    return f"{value:.{precision if precision is not None else 4}f}"


def scores_table(detail: dict, score_types: list[dict]) -> Table:
    """Per score type: train, valid and (when shown) test, mean ± std and bagged."""
    precision = {st["name"]: st.get("precision") for st in score_types}
    names = [st["name"] for st in score_types] or sorted(detail["scores"])
    steps = [s for s in ("train", "valid", "test")
             if any(s in detail["scores"].get(n, {}) for n in names)]
    table = Table("score", *[f"{s} mean ± std" for s in steps],
                  *[f"{s} bagged" for s in steps if s != "train"],
                  title=f"{detail['name']} (submission {detail['id']}): scored")
    for n in names:
        by_step = detail["scores"].get(n, {})
        p = precision.get(n)
        means = [f"{_fmt(by_step.get(s, {}).get('mean'), p)} ± "
                 f"{_fmt(by_step.get(s, {}).get('std'), p)}" for s in steps]
        bagged = [_fmt(by_step.get(s, {}).get("bagged"), p) for s in steps if s != "train"]
        _add_row(table, n, *means, *bagged)
    return table


@app.command()
def status(
    event: Annotated[str | None, typer.Option("--event", "-e", help="Only this event.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Your submissions and their states."""
    with _reported(json_out):
        client = _client()
        rows = [s for s in client.submissions() if event is None or s["event"] == event]
        officials = _official_scores(client, {s["event"] for s in rows})
    if json_out:
        _print_json(rows)
        return
    if not rows:
        _say("No submissions yet" + (f" in {event}" if event else ""))
        return
    table = Table("id", "event", "name", "state", "score (valid)", "submitted")
    for s in rows:
        official, kind = officials.get(s["event"], (None, "bagged"))
        score = "-"
        if official is not None:
            value = s["scores"].get(official["name"], {}).get("valid", {}).get(kind)
            if value is not None:
                score = f"{official['name']} {_fmt(value, official.get('precision'))}"
        state = s["state"] if s["state"] != "error" else _short_error(s)
        _add_row(table, str(s["id"]), s["event"], s["name"], state, score,
                      _day(s["submitted_at"], minutes=True))
    out.print(table)
    for s in rows:
        if s["state"] == "error" and _short_error(s).endswith("(below)"):
            out.print(Text(f"\nsubmission {s['id']} ({s['name']}) failed:", style="bold"))
            out.print(Text(s["error"].strip()))


def _short_error(submission: dict, width: int = 50) -> str:
    """An error in one short line for a table cell (the whole of it is
    printed under the table)."""
    lines = (submission.get("error") or "").strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) > width:
        first = first[:width - 1].rstrip() + "…"
    return f"error: {first}" + (" (below)" if len(lines) > 1 or first.endswith("…") else "")


def _official_scores(client: Client, event_names: set[str]) -> dict[str, tuple]:
    officials = {}
    for name in event_names:
        try:
            detail = client.event(name)
        except NotFoundError:
            continue
        score_types = (detail.get("problem") or {}).get("score_types") or []
        if score_types:
            officials[name] = (score_types[0], detail["rules"]["leaderboard_kind"])
    return officials


@app.command()
def leaderboard(
    event: str,
    board: Annotated[str, typer.Option(
        "--board", help="public (validation), private (test) or competition.")] = "public",
    kind: Annotated[str | None, typer.Option(
        "--kind", help="bagged or mean (default: the event's).")] = None,
    page: Annotated[int | None, typer.Option("--page", help="Which page (default: the first).")
                    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's rows.")] = None,
    search: Annotated[str | None, typer.Option(
        "--search", help="Only rows whose team or submission name holds this.")] = None,
    csv_out: Annotated[bool, typer.Option(
        "--csv", help="Print the whole board as CSV (for grading), not a page.")] = False,
    json_out: JsonOption = False,
) -> None:
    """An event's leaderboard, a page at a time (or whole, as CSV)."""
    if csv_out:
        with _reported(json_out):
            sys.stdout.write(_client().leaderboard_csv(event, board=board, kind=kind))
        return
    with _reported(json_out):
        data = _client().leaderboard(event, board=board, kind=kind, page=page, team=team,
                                     search=search)
    if json_out:
        _print_json(data)
        return
    steps = ["valid", "test"] if data["test_scores_shown"] else ["valid"]
    columns = [(st, step) for st in data["score_types"] for step in steps]
    table = Table("rank", "team", "submission",
                  *[f"{st['name']} {step}" for st, step in columns], "submitted",
                  title=f"{data['event']}: {data['board']} leaderboard ({data['kind']})")
    for row in data["rows"]:
        values = [_fmt(row["scores"].get(st["name"], {}).get(step, {}).get(data["kind"]),
                       st.get("precision")) for st, step in columns]
        _add_row(table, str(row["rank"]), row["team"], row["submission"], *values,
                      _day(row["submitted_at"], minutes=True))
    table.caption = f"page {data['page']} of {data['pages']} ({data['count']} rows)"
    if data.get("my_team"):
        mine = data["my_team"]
        table.caption += f"; your team {mine['name']}: rank {mine['rank']}, page {mine['page']}"
    out.print(table)


@app.command()
def runs(
    submission: Annotated[int, typer.Argument(help="The submission's id.")],
    json_out: JsonOption = False,
) -> None:
    """Every run (evaluation) of a submission, newest first; * marks the leaderboard's."""
    with _reported(json_out):
        rows = _client().runs(submission)
    if json_out:
        _print_json(rows)
        return
    table = Table("run", "kind", "state", "started by", "created", "finished")
    for r in rows:
        _add_row(table, f"{r['id']}{' *' if r['current'] else ''}", r["kind"], r["state"],
                 r["started_by"], _day(r["created_at"], minutes=True),
                 _day(r["finished_at"], minutes=True))
    out.print(table)


@app.command("logs")
def logs_command(
    submission: Annotated[int, typer.Argument(help="The submission's id.")],
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing lines until the run has finished.")] = False,
    run: Annotated[int | None, typer.Option(
        "--run", help="A run's id (see datarun runs); default: the current run.")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print JSON only (with --follow: one JSON line per log line).")] = False,
) -> None:
    """The log lines of a submission's run (what its code printed, per fold)."""
    with _reported(json_out):
        client = _client()
        if follow:
            printed = 0
            for line in client.follow_logs(submission, run_id=run, poll=POLL_S):
                printed += 1
                if json_out:
                    print(json.dumps(line), flush=True)
                else:
                    _print_log_line(line, out)
            if not printed and not json_out:
                _say(NOTHING_PRINTED.format(submission=submission))
            return
        page = client.logs(submission, run_id=run)
    if json_out:
        _print_json(page)
        return
    for line in page["lines"]:
        _print_log_line(line, out)
    if not page["finished"]:
        _say(f"(the run is still going: datarun logs {submission} --follow to keep reading)")
    elif not page["lines"] and not page.get("truncated"):
        _say(NOTHING_PRINTED.format(submission=submission))


NOTHING_PRINTED = ("(the run is over and its code printed nothing: no log lines; its state, "
                   "scores and any error are in: datarun status)")


def _day(value: str | None, minutes: bool = False) -> str:
    """An ISO time as the server sent it (UTC), cut to the day or the minute."""
    if not value:
        return "-"
    return value[:16].replace("T", " ") if minutes else value[:10]


@app.command()
def reproduce(
    submission: Annotated[int, typer.Argument(help="The submission's id.")],
    run: Annotated[int | None, typer.Option(
        "--run", help="The scored run to reproduce (see datarun runs); default: the current "
                      "one.")] = None,
    no_wait: Annotated[bool, typer.Option(
        "--no-wait", help="Start the reproduction and return.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Event admins: run a scored run again on its recorded inputs and compare
    the predictions fold by fold (exit 0 identical, 1 different or failed)."""
    with _reported(json_out):
        client = _client()
        started = client.reproduce(submission, run_id=run)
        if not json_out:
            _say(f"reproduction run {started['id']} of run {started['reproduces']} started")
        result = started
        while not no_wait and result["state"] not in FINAL_STATES:
            time.sleep(POLL_S)
            result = client.run(submission, started["id"])
    report = result.get("reproduction") or {}
    if json_out:
        _print_json(result)
    elif not no_wait:
        _print_reproduction(result, report)
    if no_wait:
        return
    raise typer.Exit(EXIT_OK if report.get("state") == "identical" else EXIT_FAILED)


def _print_reproduction(run: dict, report: dict) -> None:
    if run["state"] != "scored":
        _say(f"the reproduction {run['state']}: {run.get('error') or ''}".rstrip(": "))
        return
    table = Table("input or software", "original", "reproduction", "")
    for row in [*report.get("inputs", []), *report.get("software", [])]:
        _add_row(table, row["what"], str(row["original"]), str(row["reproduction"]),
                 "same" if row["same"] else "DIFFERS")
    out.print(table)
    folds = Table("fold", "training-set predictions", "test-set predictions")
    for fold in report.get("folds", []):
        _add_row(folds, str(fold["fold"]), *(
            "identical" if fold[which]["identical"]
            else f"differ (max |diff| {fold[which]['max_abs_diff']})"
            for which in ("train", "test")))
    out.print(folds)
    out.print(Text("identical: every fold's predictions are the same, bit for bit"
                   if report.get("state") == "identical"
                   else f"{report.get('state')}: some predictions changed"))
