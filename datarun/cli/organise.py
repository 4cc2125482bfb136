"""Organisers' commands: upload a RAMP kit as an event, read its import report."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datarun.cli.app import app
from datarun.cli.remote import JsonOption, _client, _print_json, _reported, _say, out


def _print_report(report: dict) -> None:
    problem = report.get("problem") or {}
    out.print(f"rows: {problem.get('n_train')} training, {problem.get('n_test')} test; "
              f"{problem.get('n_folds')} folds", markup=False)
    out.print("scores: " + ", ".join(
        st["name"] + (" (official)" if st.get("official") else "")
        for st in problem.get("score_types", [])), markup=False)
    out.print("submission files: " + ", ".join(problem.get("workflow_elements", [])),
              markup=False)
    out.print("description: " + ("the kit's README" if report.get("description_from_readme")
                                 else "none (the kit has no README)"), markup=False)
    kit = report.get("starting_kit")
    if kit is None:
        out.print(f"starting kit: not run ({report.get('starting_kit_note')})", markup=False)
    elif kit["state"] == "scored":
        scores = ", ".join(f"{s['name']} {s['valid']:.{s['precision']}f}"
                           for s in kit["scores"] if s["valid"] is not None)
        out.print(f"starting kit: scored, validation {scores}", markup=False)
    else:
        error = f": {kit['error']}" if kit.get("error") else ""
        out.print(f"starting kit: {kit['state']}{error}", markup=False)


@app.command("upload-kit")
def upload_kit(
    path: Annotated[Path, typer.Argument(help="The kit's folder (problem.py, data/, "
                                              "submissions/) or a .zip of it.")],
    name: Annotated[str, typer.Option("--name", help="The event's and the problem's name.")],
    title: Annotated[str, typer.Option("--title", help="Default: the kit's title.")] = "",
    json_out: JsonOption = False,
) -> None:
    """Superusers: upload a RAMP kit; it becomes an unlisted event of that name."""
    with _reported(json_out):
        answer = _client().upload_kit(path, name, title)
    if json_out:
        _print_json(answer)
        return
    out.print(f"event {answer['event']['name']} created (unlisted): "
              f"{answer['event']['title']}", markup=False)
    _print_report(answer["report"])
    _say(f"Follow the starting kit with: datarun kit-report {name}")


@app.command("kit-report")
def kit_report(event: str, json_out: JsonOption = False) -> None:
    """The import report of an event opened from an uploaded kit (its admins)."""
    with _reported(json_out):
        report = _client().kit_report(event)
    if json_out:
        _print_json(report)
        return
    _print_report(report)
