"""The short chaos run (bench/chaos.py --ci): 40 submissions while each fault
strikes once (fold worker nodes killed mid-claim and mid-fold, the scorer
killed, beat killed, a web worker killed, Redis restarted without saving,
PostgreSQL restarted) on a PostgreSQL, Redis, gunicorn, two fold worker nodes,
a scorer and beat of its own, with the default timeouts. Nothing is lost,
stuck, duplicated or wrong, every scored submission has its contributivity,
and all is final within 120 s of the last fault."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_the_short_chaos_run_loses_nothing_and_recovers_within_the_bound(tmp_path):
    # Its own PostgreSQL cluster and Redis: their server binaries must be here.
    if not (list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or shutil.which("initdb")):
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    out = tmp_path / "figures.json"
    result = subprocess.run([sys.executable, "bench/chaos.py", "--ci", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    report = result.stdout[-2000:]
    assert figures["accepted"] == figures["stored"] == 40, report
    assert figures["answered_error_but_stored"] == 0, report
    assert figures["lost"] == 0, report
    assert figures["stuck"] == 0, report
    assert figures["duplicated"] == 0, report
    assert figures["wrong"] == 0, "\n".join(figures["wrong_names"]) + "\n" + report
    assert figures["contributivity_complete"], report
    assert len(figures["faults"]) == 7, report
    assert figures["recovery_s"] is not None and figures["recovery_s"] <= 120, report
    assert result.returncode == 0, report
