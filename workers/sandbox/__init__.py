"""Sandbox backends: where a fold's harness runs, under limits.

A backend takes a prepared work dir and :class:`Limits`, runs the harness and
returns a :class:`SandboxResult` with what it measured. Nothing here imports
Django: the caller passes settings in.
"""
from pathlib import Path

from workers.sandbox.base import (
    FoldStopped,
    Limits,
    SandboxBackend,
    SandboxFailure,
    SandboxResult,
    Termination,
)

_backends: dict[tuple, SandboxBackend] = {}


def get_backend(name: str, *, heartbeat_interval_s: float = 5.0, image: str = "",
                work_dir: Path | None = None, warm_containers: int = 2,
                env_wheels_dir: Path | None = None,
                expected_limits: Limits | None = None) -> SandboxBackend:
    """The backend called ``name``, one instance per process and configuration
    (``warm_containers``, ``env_wheels_dir``, ``expected_limits``: the Docker
    backend's, see its module)."""
    key = (name, heartbeat_interval_s, image, work_dir, warm_containers, env_wheels_dir,
           expected_limits)
    if key not in _backends:
        if name == "local":
            from workers.sandbox.local import LocalSandbox

            _backends[key] = LocalSandbox(heartbeat_interval_s=heartbeat_interval_s,
                                          work_dir=work_dir)
        elif name == "docker":
            from workers.sandbox.docker_backend import DockerSandbox

            _backends[key] = DockerSandbox(image=image or None, work_dir=work_dir,
                                           heartbeat_interval_s=heartbeat_interval_s,
                                           warm=warm_containers,
                                           env_wheels_dir=env_wheels_dir,
                                           expected_limits=expected_limits)
        else:
            raise ValueError(f"unknown sandbox backend {name!r}; "
                             "DATARUN_SANDBOX must be 'local' or 'docker'")
    return _backends[key]


__all__ = [
    "FoldStopped", "Limits", "SandboxBackend", "SandboxFailure", "SandboxResult", "Termination",
    "get_backend",
]
