"""The burst benchmark (bench/burst.py) in a tiny configuration: a burst of 6
submissions sent at once to a fold worker of 2 slots and a scorer, on a
PostgreSQL, Redis and gunicorn of its own. Every submission is scored and
the figures a reader compares with the ideal are printed."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_a_small_burst_is_scored_and_its_figures_printed(tmp_path):
    # Its own PostgreSQL cluster and Redis: their server binaries must be here.
    if not (list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or shutil.which("initdb")):
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    out = tmp_path / "figures.json"
    result = subprocess.run([sys.executable, "bench/burst.py", "--sizes", "6", "--slots", "2",
                             "--fit-ms", "30", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    [burst] = json.loads(out.read_text())
    assert (burst["backend"], burst["layout"], burst["size"]) == ("local", "separate", 6)
    assert burst["finished"] and burst["scored"] == 6 and burst["not_scored"] == 0, report
    assert burst["folds"] == 6 * 5, report
    # The figures are consistent: nothing beats the ideal, and the slots
    # cannot be busier than all the time.
    assert burst["makespan_over_ideal"] >= 1, report
    assert 0 < burst["slot_utilisation"] <= 1, report
    assert burst["submit_to_scored_p50_s"] <= burst["submit_to_scored_p95_s"], report
    # --fit-ms 30: every fold's fit spent 30 ms of CPU more.
    assert burst["compute_s"] >= 30 * 0.030, report
    # Where the CPU went: the fold worker's sandboxes spent at least those
    # 30 ms of CPU in each of the 30 folds (compute_s is wall time).
    [folds_cpu] = [v for k, v in burst["cpu_s"].items() if k.startswith("folds-local")]
    assert folds_cpu >= 30 * 0.030 and 0 < burst["machine_busy"] <= 1, report
    # Each claim names its slot (the worker process): a slot's cycle is known.
    assert burst["slot_cycle_minus_compute_median_ms"] is not None, report
    for line in ("burst of 6, local sandbox, 2 fold slots, a scorer beside them:",
                 "makespan (first sent -> last scored)", "makespan / ideal",
                 "slot utilisation (claim -> recorded)", "submit -> scored p50 / p95",
                 "last fold recorded -> scored p50 / p95", "machine CPU busy during the burst",
                 "CPU by process (ms per fold", "the machine, busy",
                 "a slot's cycle (claim -> its next claim) minus compute, median"):
        assert line in result.stdout, report
