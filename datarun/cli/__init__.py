"""The ``datarun`` command line: talks to a server through
:mod:`datarun.client` (``login``, ``events``, ``submit``...) or runs a kit
locally with the server's harness and scoring (``test``)."""
from datarun.cli.app import app, main

__all__ = ["app", "main"]
