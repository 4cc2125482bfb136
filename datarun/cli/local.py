"""``datarun test``: run a kit and a submission locally (no server).

The folds run in the server's harness and local sandbox and are scored with
the server's scoring (:mod:`workers.local_runs`), so the numbers printed are
the ones a server would show for the same files.
"""
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from datarun.cli.app import app
from datarun.errors import ApplicationError
from datarun.public_split import KIT_RECORD_FILE
from workers.local_runs import DEFAULT_LIMITS, kit_limits, run_kit
from workers.sandbox import Limits

EXIT_SCORED = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
MISSING = "—"


@app.command("test")
def test_kit(
    kit_dir: Annotated[Path, typer.Argument(
        help="The RAMP kit's folder (problem.py, data/, submissions/).", show_default=False)],
    submission: Annotated[str, typer.Option(
        "--submission", "-s", help="The submission to run: a folder under submissions/.")
    ] = "starting_kit",
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print only the result as JSON (full precision) on stdout.")] = False,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", min=0.1, show_default=False,
        help="Wall-time limit per fold, in seconds [default: the event's, from the kit's "
             f"limits.json, else {DEFAULT_LIMITS.wall_time_s:g}].")] = None,
    memory_mb: Annotated[int | None, typer.Option(
        "--memory-mb", min=16, show_default=False,
        help="Memory limit per fold, in MiB [default: the event's, else "
             f"{DEFAULT_LIMITS.memory_mb}].")] = None,
    shared_runtime: Annotated[bool, typer.Option(
        "--shared-runtime", help="Run with this machine's packages even when the kit "
                                 "declares its own (requirements-lock.txt, requirements.txt)."
    )] = False,
) -> None:
    """Train and score a submission on every fold, as the server would.

    A kit that declares its packages runs in its own environment, as on the
    server: a venv per lock under ~/.cache/datarun/environments, built on
    first use (DATARUN_ENVIRONMENTS_DIR elsewhere).

    The scores go to stdout, progress and errors to stderr. Exit status: 0
    scored, 1 the submission failed, 2 bad input (no such kit or submission).
    """
    # Stopped like Ctrl-C, so that the sandbox and the temporary files go too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # As the other commands: the scores on stdout (not cut to 80 columns when
    # piped), progress and messages on stderr, whole lines the terminal wraps.
    out = Console(highlight=False, emoji=False, soft_wrap=True,
                  width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
    err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)
    progress = None if as_json else _progress_printer(err, submission)
    try:
        kit = kit_limits(kit_dir)
        limits = Limits(wall_time_s=kit.wall_time_s if time_limit is None else time_limit,
                        memory_mb=kit.memory_mb if memory_mb is None else memory_mb,
                        cpus=kit.cpus)
        report = run_kit(kit_dir, submission, limits=limits, on_progress=progress,
                         own_environment=not shared_runtime)
    except ApplicationError as exc:
        if as_json:
            _print_json({"error": {"code": exc.code, "message": exc.message}})
        err.print(Text(f"error: {exc.message}"))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    report["public_split"] = _public_split(kit_dir)
    if as_json:
        _print_json(report)
    elif report["error"]:
        _print_failure(err, report["error"])
    else:
        _print_scores(out, report)
        if report["public_split"]:
            split = report["public_split"]
            err.print(Text(f"test: this kit's public test set ({split.get('n_test')} rows; "
                           f"{split.get('rule')}), not the private test set of the "
                           "leaderboard's test scores"))
    raise typer.Exit(EXIT_FAILED if report["error"] else EXIT_SCORED)


def _public_split(kit_dir: Path) -> dict | None:
    """What a downloaded kit's ``public_split.json`` says of its test set, if it has one."""
    try:
        return json.loads((Path(kit_dir) / KIT_RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _print_json(data: dict) -> None:
    # allow_nan=False: scores that are not finite are already None.
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def _progress_printer(console: Console, submission: str):
    def on_progress(event: dict) -> None:
        stage = event["stage"]
        if stage == "environment":
            console.print(Text(f"Building the kit's environment ({event['n_packages']} "
                               f"packages) in {event['folder']}"))
        elif stage == "preparing":
            console.print(Text("Preparing the kit (loading its data, computing its folds)"))
        elif stage == "running" and event["fold"] == 0:
            console.print(Text(f"Running submissions/{submission} on {event['n_folds']} folds"))
        elif stage == "done":
            wall = event["row"]["wall_time"]
            console.print(Text(
                f"  [{event['fold'] + 1}/{event['n_folds']}] fold {event['fold']} "
                f"{'failed' if event['error'] else 'scored'}"
                + (f" in {wall:.2f} s" if wall is not None else "")))
    return on_progress


def _number(value: float | None, precision: int) -> str:
    return MISSING if value is None else f"{value:.{precision}f}"


def _seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def _table(title: str, score_types: list[dict], first: str, with_time: bool) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column(first, no_wrap=True)
    for st in score_types:
        direction = "↓" if st["is_lower_the_better"] else "↑"
        table.add_column(f"{st['name']} {direction}", justify="right", no_wrap=True,
                         style="bold" if st["official"] else None)
    if with_time:
        table.add_column("time (s)", justify="right", no_wrap=True)
    return table


def _print_scores(console: Console, report: dict) -> None:
    score_types = report["score_types"]
    folds = report["folds"]
    console.print()
    console.print(Text(f"{report['problem']}: submissions/{report['submission']}",
                       style="bold"))
    per_fold = _table("Scores per fold", score_types, "fold  step", with_time=True)
    for row in folds:
        for step in ("train", "valid", "test"):
            per_fold.add_row(
                f"{row['fold']:>4}  {step}",
                *(_number(row["scores"][step][st["name"]], st["precision"])
                  for st in score_types),
                _seconds(row[f"{step}_time"]),
                end_section=step == "test" and row is not folds[-1],
            )
    console.print(per_fold)
    over_folds = _table(f"Mean ± std over {len(folds)} folds", score_types, "step",
                        with_time=False)
    for step in ("train", "valid", "test"):
        over_folds.add_row(step, *(
            f"{_number(s['mean'], st['precision'])} ± {_number(s['std'], st['precision'])}"
            for st in score_types
            for s in (report["scores"][st["name"]][step],)
        ))
    console.print(over_folds)
    bagged = _table("Bagged scores", score_types, "step", with_time=False)
    for step in ("valid", "test"):
        bagged.add_row(step, *(
            _number(report["scores"][st["name"]][step]["bagged"], st["precision"])
            for st in score_types
        ))
    console.print(bagged)


def _print_failure(console: Console, error: dict) -> None:
    # The message names the fold, as the server words it.
    console.print(Text(f"The submission failed: {error['message']}", style="red"))
    if error["traceback"].strip():
        console.print()
        console.print(Text(error["traceback"].rstrip("\n")))
    for title, text in (("What it printed on stdout", error["stdout"]),
                        ("What it printed on stderr", error["stderr"])):
        if text.strip():
            console.print(Text(f"\n{title}:", style="bold"))
            console.print(Text(text.rstrip("\n")))
