"""``datarun runner``: run folds of a compute pool on this machine, pulling
them from the platform over HTTPS (no database, no broker, no shared disk);
``datarun runner prepare``: prepare a sensitive-data problem here and
register only its metadata with the pool."""
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from datarun.cli.app import app

runner_app = typer.Typer(help="Run a compute pool's folds on this machine.")
app.add_typer(runner_app, name="runner")

DEFAULT_HOME = Path(os.environ.get("DATARUN_RUNNER_HOME",
                                   Path.home() / ".cache" / "datarun-runner"))
Url = Annotated[str | None, typer.Option(
    help="the platform's address, e.g. https://datarun.example.org", envvar="DATARUN_API_URL")]
Token = Annotated[str | None, typer.Option(
    help="the pool's runner token (shown when the pool was created)",
    envvar="DATARUN_RUNNER_TOKEN")]
Home = Annotated[Path, typer.Option(help="the runner's problems, cache and work dirs")]


def _gpus(given: list[str]) -> list[dict]:
    """The GPUs the runner offers: ``--gpu none``, each ``--gpu NAME:MEMORY_MIB``
    (device indices in the order given), or by default those nvidia-smi finds."""
    from workers import gpus

    if given == ["none"]:
        return []
    if not given:
        return gpus.detect()
    out = []
    for position, text in enumerate(given):
        name, _, memory = text.rpartition(":")
        if not name or not memory.isdigit():
            raise typer.BadParameter(f"{text!r}: give a GPU as NAME:MEMORY_MIB, e.g. "
                                     "'A100:81920', or --gpu none")
        out.append({"name": name, "memory_mb": int(memory), "index": str(position)})
    return out


def _checked(url: str | None, token: str | None) -> tuple[str, str]:
    if not url or not token:
        raise typer.BadParameter("give the platform's --url and the pool's --token "
                                 "(or DATARUN_API_URL and DATARUN_RUNNER_TOKEN)")
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http(s):// address")
    return url, token


@runner_app.callback(invoke_without_command=True)
def runner(
    ctx: typer.Context,
    url: Url = None,
    token: Token = None,
    name: Annotated[str, typer.Option(help="how this runner is shown (default: host name)")]
    = "",
    sandbox: Annotated[str, typer.Option(help="local or docker")] = "local",
    slots: Annotated[int, typer.Option(min=1, help="folds run at once")] = 1,
    home: Home = DEFAULT_HOME,
    gpu: Annotated[list[str], typer.Option(
        help="a GPU this runner offers, as NAME:MEMORY_MIB (repeat for each, in device "
             "order), or 'none'; by default the GPUs nvidia-smi lists. Slots share them out; "
             "folds needing GPUs go only to slots holding enough")] = [],  # noqa: B006
    heartbeat: Annotated[float, typer.Option(help="seconds between heartbeats")] = 5.0,
    share_logs: Annotated[bool, typer.Option(
        help="sensitive-data folds: send their logs and error details too (by default only "
             "scores and resource figures leave this machine)")] = False,
) -> None:
    """Run this pool's folds here until stopped (Ctrl-C or SIGTERM)."""
    if ctx.invoked_subcommand is not None:
        return
    url, token = _checked(url, token)
    if sandbox not in ("local", "docker"):
        raise typer.BadParameter("--sandbox is local or docker")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from workers.remote_runner import RunnerConfig, serve

    config = RunnerConfig(api_url=url, token=token, sandbox=sandbox, slots=slots,
                          home=home.resolve(), gpus=_gpus(gpu),
                          heartbeat_interval_s=heartbeat, share_logs=share_logs)
    if name:
        config.name = name
    raise typer.Exit(serve(config))


@runner_app.command("prepare")
def prepare(
    kit_dir: Annotated[Path, typer.Argument(help="the RAMP kit (problem.py, data/, ...)")],
    name: Annotated[str, typer.Option(help="the problem's name on the platform")],
    url: Url = None,
    token: Token = None,
    home: Home = DEFAULT_HOME,
    publish_starting_kit: Annotated[bool, typer.Option(
        help="publish submissions/starting_kit/ and README.md for participants")] = True,
) -> None:
    """Prepare a sensitive-data problem on this machine: its data and labels
    stay here; the pool's runners score its folds here, and the platform gets
    its metadata, hashes, score types and the published starting kit."""
    url, token = _checked(url, token)
    from datarun.errors import ApplicationError
    from workers.pool_problems import prepare_and_register
    from workers.runner_client import RunnerApiError, RunnerClient

    try:
        report = prepare_and_register(kit_dir, name=name, home=home.resolve(),
                                      client=RunnerClient(url, token),
                                      publish_starting_kit=publish_starting_kit)
    except (ApplicationError, RunnerApiError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, ApplicationError) else 6) from None
    typer.echo(f"registered {report['name']}: {report['n_train']} training rows, "
               f"{report['n_test']} test rows, {report['n_folds']} folds; data kept in "
               f"{report['prepared']}; published: {', '.join(report['published']) or 'nothing'}")
