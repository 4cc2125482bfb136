"""``datarun runner``: run folds of a compute pool on this machine, pulling
them from the platform over HTTPS (no database, no broker, no shared disk)."""
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from datarun.cli.app import app

EXIT_REFUSED = 3


def _gpu(text: str) -> dict:
    name, _, memory = text.rpartition(":")
    if not name or not memory.isdigit():
        raise typer.BadParameter(f"{text!r}: give a GPU as NAME:MEMORY_MIB, e.g. 'A100:81920'")
    return {"name": name, "memory_mb": int(memory)}


@app.command("runner")
def runner(
    url: Annotated[str, typer.Option(help="the platform's address, e.g. https://datarun.example.org",
                                     envvar="DATARUN_API_URL")],
    token: Annotated[str, typer.Option(help="the pool's runner token (shown when the pool "
                                             "was created)", envvar="DATARUN_RUNNER_TOKEN")],
    name: Annotated[str, typer.Option(help="how this runner is shown (default: host name)")]
    = "",
    sandbox: Annotated[str, typer.Option(help="local or docker")] = "local",
    slots: Annotated[int, typer.Option(min=1, help="folds run at once")] = 1,
    home: Annotated[Path, typer.Option(help="the runner's cache and work dirs")]
    = Path(os.environ.get("DATARUN_RUNNER_HOME", Path.home() / ".cache" / "datarun-runner")),
    gpu: Annotated[list[str], typer.Option(help="a GPU this runner offers, as NAME:MEMORY_MIB "
                                                "(repeat for each); folds needing GPUs go only "
                                                "to runners offering them")] = [],  # noqa: B006
    heartbeat: Annotated[float, typer.Option(help="seconds between heartbeats")] = 5.0,
) -> None:
    """Run this pool's folds here until stopped (Ctrl-C or SIGTERM)."""
    if sandbox not in ("local", "docker"):
        raise typer.BadParameter("--sandbox is local or docker")
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http(s):// address")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from workers.remote_runner import RunnerConfig, serve

    config = RunnerConfig(api_url=url, token=token, sandbox=sandbox, slots=slots,
                          home=home.resolve(), gpus=[_gpu(g) for g in gpu],
                          heartbeat_interval_s=heartbeat)
    if name:
        config.name = name
    raise typer.Exit(serve(config))
