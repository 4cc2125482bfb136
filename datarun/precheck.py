"""Checks of submission code before it is queued (no Django): the server runs
them on every submission, ``datarun submit`` and the Python client before
sending one, so that a syntax error costs no fold and no quota."""
from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class SyntaxProblem:
    """Where a submission file cannot be compiled, and why."""

    file: str
    line: int | None
    message: str
    text: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        shown = f": {self.text.strip()}" if self.text.strip() else ""
        return (f"{where}: {self.message}{shown} (fix it and submit again; nothing was "
                "queued and the submission was not counted)")

    def as_details(self) -> dict:
        return {"file": self.file, "line": self.line, "message": self.message}


def syntax_problem(name: str, data: bytes) -> SyntaxProblem | None:
    """The first syntax error of a Python file ``name``, or None (files that
    are not ``.py`` are not checked)."""
    if not name.endswith(".py"):
        return None
    try:
        # Parsing only: nothing of the participant's code runs here. Bytes,
        # so that a coding line (PEP 263) is honoured as Python would.
        ast.parse(data, filename=name)
    except SyntaxError as exc:
        return SyntaxProblem(name, exc.lineno, exc.msg, exc.text or "")
    except ValueError as exc:  # e.g. a NUL byte in the source
        return SyntaxProblem(name, None, str(exc), "")
    return None


def first_syntax_problem(files: dict[str, bytes]) -> SyntaxProblem | None:
    """The first file (by name) that does not compile, or None."""
    for name in sorted(files):
        problem = syntax_problem(name, files[name])
        if problem is not None:
            return problem
    return None
