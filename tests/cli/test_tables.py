"""How the CLI fits what the server says into its tables."""
from rich.console import Console

from datarun.cli.remote import _short_error


def test_a_multi_line_error_keeps_one_line_in_the_status_table():
    error = "fold 2 failed: ValueError: bad input\nTraceback (most recent call last):\n  ..."

    cell = _short_error({"id": 7, "error": error})

    assert cell == "error: fold 2 failed: ValueError: bad input (below)"
    console = Console(width=200, record=True)
    console.print(cell)
    assert len(console.export_text().splitlines()) == 1


def test_a_long_error_is_cut_with_an_ellipsis_and_a_short_one_kept_whole():
    long = _short_error({"id": 7, "error": "x" * 200})
    assert long.startswith("error: xxx") and long.endswith("… (below)") and len(long) < 70
    assert _short_error({"id": 7, "error": "out of memory"}) == "error: out of memory"
