"""Joining an event from a terminal: ``datarun signup``, ``datarun team ...``
and ``datarun init`` (sign-up aside, what a participant does first)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datarun.cli.app import app
from datarun.cli.local import test_kit
from datarun.cli.remote import (
    JsonOption,
    _add_row,
    _client,
    _day,
    _fmt,
    _print_json,
    _reported,
    _say,
    out,
)

team_app = typer.Typer(help="Your team in an event: show, rename, invite, leave; "
                            "your invitations: list, accept, decline.",
                       no_args_is_help=True)
app.add_typer(team_app, name="team")

EventArg = Annotated[str, typer.Argument(help="The event's name (see datarun events).")]


def _show_team(event: str, team: dict) -> None:
    state = "approved" if team["approved"] else "awaiting an event admin's approval"
    _say(f"Team {team['name']} in {event} ({state}): {', '.join(team['members'])}")


@app.command()
def signup(event: EventArg, json_out: JsonOption = False) -> None:
    """Sign up to an event: your one-person team (see datarun team)."""
    with _reported(json_out):
        answer = _client().signup(event)
    if json_out:
        _print_json(answer)
        return
    state = ("you may submit now" if answer["approved"]
             else "it awaits an event admin's approval before you may submit")
    _say(f"Signed up to {event} as team {answer['team']}: {state}")


@team_app.command("show")
def team_show(event: EventArg, json_out: JsonOption = False) -> None:
    """Your team in the event and its members."""
    with _reported(json_out):
        team = _client().team(event)
    if json_out:
        _print_json(team)
    else:
        _show_team(event, team)


@team_app.command("history")
def team_history(event: EventArg, json_out: JsonOption = False) -> None:
    """Your team's rank over time: teams ranked by their best public score so far."""
    with _reported(json_out):
        history = _client().team_history(event)
    if json_out:
        _print_json(history)
        return
    if not history["points"]:
        _say(f"Team {history['team']} has no scored submission in {event} yet: no rank.")
        return
    score = history["score"]
    table = Table("when", "rank", "of teams", f"best {score['name']}", "submission",
                  title=f"{event}: rank of team {history['team']} over time "
                        f"(by best public {score['name']}, {history['kind']})")
    for point in history["points"]:
        _add_row(table, _day(point["t"], minutes=True), str(point["rank"]),
                 str(point["teams"]), _fmt(point["best"], score["precision"]),
                 point["best_submission"])
    out.print(table)


@team_app.command("rename")
def team_rename(event: EventArg, name: Annotated[str, typer.Argument(help="The new name.")],
                json_out: JsonOption = False) -> None:
    """Rename your team."""
    with _reported(json_out):
        team = _client().team_rename(event, name)
    if json_out:
        _print_json(team)
    else:
        _show_team(event, team)


@team_app.command("invite")
def team_invite(event: EventArg,
                username: Annotated[str, typer.Argument(help="Whom to invite.")],
                json_out: JsonOption = False) -> None:
    """Invite a user into your team; they accept with datarun team accept ID."""
    with _reported(json_out):
        invitation = _client().team_invite(event, username)
    if json_out:
        _print_json(invitation)
    else:
        _say(f"Invited {invitation['user']} into {invitation['team']} (invitation "
             f"{invitation['id']}); they accept with: datarun team accept {invitation['id']}")


@team_app.command("leave")
def team_leave(event: EventArg, json_out: JsonOption = False) -> None:
    """Leave your team in the event (not once you have submitted with it)."""
    with _reported(json_out):
        _client().team_leave(event)
    if json_out:
        _print_json({"event": event, "left": True})
    else:
        _say(f"You left your team in {event}; sign up again with: datarun signup {event}")


@team_app.command("invitations")
def team_invitations(json_out: JsonOption = False) -> None:
    """Invitations into a team, for you."""
    with _reported(json_out):
        rows = _client().invitations()
    if json_out:
        _print_json(rows)
        return
    if not rows:
        _say("No invitations")
        return
    table = Table("id", "event", "team", "invited by")
    for i in rows:
        _add_row(table, str(i["id"]), i["event"], i["team"], i["invited_by"])
    out.print(table)


@team_app.command("accept")
def team_accept(invitation: Annotated[int, typer.Argument(help="The invitation's id.")],
                json_out: JsonOption = False) -> None:
    """Accept an invitation: you join the team (yours goes, if it never submitted)."""
    with _reported(json_out):
        team = _client().invitation_accept(invitation)
    if json_out:
        _print_json(team)
    else:
        _say(f"You joined {team['name']}: {', '.join(team['members'])}")


@team_app.command("decline")
def team_decline(invitation: Annotated[int, typer.Argument(help="The invitation's id.")],
                 json_out: JsonOption = False) -> None:
    """Decline an invitation."""
    with _reported(json_out):
        _client().invitation_decline(invitation)
    if json_out:
        _print_json({"invitation": invitation, "declined": True})
    else:
        _say(f"Invitation {invitation} declined")


@app.command()
def init(
    event: EventArg,
    dest: Annotated[Path, typer.Option("--dest", "-d", help="Folder to unzip into.")] = Path("."),
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite files that exist already.")] = False,
    no_signup: Annotated[bool, typer.Option(
        "--no-signup", help="Do not sign up to the event (already done, or later).")] = False,
) -> None:
    """Start on an event: sign up, download its starting kit, run it once (datarun test).

    Signs up unless you are in a team of the event already (or --no-signup).
    """
    with _reported(False):
        client = _client()
        if not no_signup and client.event(event).get("my_team") is None:
            answer = client.signup(event)
            _say(f"Signed up to {event} as team {answer['team']}"
                 + ("" if answer["approved"] else " (awaiting an event admin's approval)"))
        files = client.download_kit(event, dest, overwrite=force)
    kit_dir = _kit_root(files, dest)
    _say(f"Downloaded the starting kit into {kit_dir} ({len(files)} files); "
         f"running it once: datarun test {kit_dir}")
    try:
        test_kit(kit_dir, submission="starting_kit", as_json=False, time_limit=None,
                 memory_mb=None)
    except typer.Exit as done:
        if done.exit_code == 0:
            _say(f"Next: edit {kit_dir / 'submissions' / 'starting_kit'}, test it with "
                 f"datarun test {kit_dir}, then datarun submit "
                 f"{kit_dir / 'submissions' / 'starting_kit'} --event {event} --name NAME")
        raise


def _kit_root(files: list[Path], dest: Path) -> Path:
    """The kit's folder (the one holding problem.py) among the files unzipped."""
    for path in files:
        if path.name == "problem.py":
            return path.parent
    return Path(dest)
