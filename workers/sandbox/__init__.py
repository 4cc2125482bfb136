"""Sandbox backends: where a fold's harness runs, under limits.

A backend takes a prepared work dir and :class:`Limits`, runs the harness and
returns a :class:`SandboxResult` with what it measured. Nothing here imports
Django: the caller passes settings in.
"""
from workers.sandbox.base import (
    Limits,
    SandboxBackend,
    SandboxFailure,
    SandboxResult,
    Termination,
)


def get_backend(name: str, *, heartbeat_interval_s: float = 5.0) -> SandboxBackend:
    if name == "local":
        from workers.sandbox.local import LocalSandbox

        return LocalSandbox(heartbeat_interval_s=heartbeat_interval_s)
    raise ValueError(f"unknown sandbox backend {name!r}; DATARUN_SANDBOX must be 'local'")


__all__ = [
    "Limits", "SandboxBackend", "SandboxFailure", "SandboxResult", "Termination", "get_backend",
]
