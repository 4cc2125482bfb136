"""The typer application every command module registers on."""
import typer

app = typer.Typer(
    name="datarun",
    help="Datarun from a terminal: submit to events, follow runs, test kits locally.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    # With a callback, typer keeps the subcommand names even if only one
    # command module is loaded.
    pass


def load_commands() -> None:
    """Importing the command modules registers their commands on ``app``."""
    from datarun.cli import collab, local, organise, remote, runner, teams  # noqa: F401


def main() -> None:
    load_commands()
    app()
