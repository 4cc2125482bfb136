"""The collaborative phase from a terminal: read another team's code, diff
two submissions, import one (credited on your team's next submission, also
one sent with ``datarun submit``), and list a submission's credits."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datarun.cli.app import app
from datarun.cli.remote import (
    EXIT_BAD_INPUT,
    JsonOption,
    _add_row,
    _client,
    _print_json,
    _reported,
    _say,
    out,
)

SubmissionArg = Annotated[int, typer.Argument(help="The submission's id.")]


def _write_files(files: dict[str, str], dest: Path, force: bool) -> list[Path]:
    """Write the files under ``dest``; refuse names that are not plain file
    names, and existing files unless ``force``."""
    targets = {}
    for name in files:
        if Path(name).name != name or name.startswith(".") or "\\" in name:
            _say(f"error: the server sent an unsafe file name {name!r}; nothing was written")
            raise typer.Exit(EXIT_BAD_INPUT)
        targets[name] = dest / name
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        _say(f"error: {', '.join(existing)} exist already: choose another folder (--dest), "
             "or overwrite them (--force)")
        raise typer.Exit(EXIT_BAD_INPUT)
    dest.mkdir(parents=True, exist_ok=True)
    for name, target in targets.items():
        target.write_text(files[name])
    return list(targets.values())


@app.command()
def code(
    submission: SubmissionArg,
    dest: Annotated[Path | None, typer.Option(
        "--dest", "-d", help="Write the files into this folder instead of printing them.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files in --dest.")] = False,
    json_out: JsonOption = False,
) -> None:
    """A submission's files: your team's, or another team's after the public opening."""
    with _reported(json_out):
        data = _client().code(submission)
    if json_out:
        _print_json(data)
    elif dest is None:
        for name, text in data["files"].items():
            out.print(f"==> {data['team']}/{data['name']}/{name} <==", markup=False)
            out.print(text, markup=False, end="" if text.endswith("\n") else "\n")
    if dest is not None:
        for path in _write_files(data["files"], dest, force):
            _say(str(path))


@app.command()
def diff(
    submission: SubmissionArg,
    against: Annotated[int, typer.Option(
        "--against", "-a", help="The submission to compare with (the old side).")],
    json_out: JsonOption = False,
) -> None:
    """What changed from --against to SUBMISSION, as a unified diff."""
    with _reported(json_out):
        data = _client().diff(submission, against)
    if json_out:
        _print_json(data)
        return
    for f in data["files"]:
        if f["changed"]:
            out.print(f["diff"], markup=False)
    if not any(f["changed"] for f in data["files"]):
        _say("(no difference)")


@app.command("import")
def import_command(
    submission: SubmissionArg,
    dest: Annotated[Path, typer.Option(
        "--dest", "-d", help="Also write the files into this folder.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files in --dest.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Import a submission's code into your team's sandbox and into --dest; another
    team's is credited on your team's next submission (datarun submit included)."""
    with _reported(json_out):
        data = _client().import_code(submission)
    written = _write_files(data["files"], dest, force)
    if json_out:
        _print_json({**data, "written": [str(p) for p in written]})
        return
    for path in written:
        out.print(str(path), markup=False)
    source = data["source"]
    if data["credited"]:
        _say(f"Your team's next submission credits {source['team']}'s {source['name']} "
             f"(submission {source['id']}).")


@app.command()
def credits(submission: SubmissionArg, json_out: JsonOption = False) -> None:
    """Whose code a submission took, and which submissions took its code."""
    with _reported(json_out):
        data = _client().credits(submission)
    if json_out:
        _print_json(data)
        return
    table = Table("", "submission", "team", "name")
    for key, label in (("credits", "credits"), ("reused_by", "reused by")):
        for s in data[key]:
            _add_row(table, label, str(s["id"]), s["team"], s["name"])
    if not table.rows:
        _say(f"(submission {submission} credits no one, and no one reused it yet)")
        return
    out.print(table)
