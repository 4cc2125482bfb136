"""`datarun test` against `ramp-test` on the same kit and submission.

For each example kit (or --kit), runs in fresh processes, --repeat times each:
  (a) `datarun test KIT --submission starting_kit --json`: the server's
      harness in the local sandbox, fold by fold, and the server's scoring;
  (b) `ramp-test --ramp-kit-dir KIT --submission starting_kit`: rampwf's
      own loop in one process;
and prints the median wall times, the ratio a / b and datarun's bagged
valid score of the official score type next to the one ramp-test prints.

Usage: python bench/local_test.py [--kit iris] [--repeat 3]
"""
import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "datarun" / "examples"
BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout


def ramp_bagged_valid(output: str) -> str:
    """The first score of ramp-test's 'Bagged scores' valid line."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    section = plain.split("Bagged scores", 1)[1]
    match = re.search(r"valid\s+([-\d.]+)", section)
    return match.group(1) if match else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", action="append", help="example kit (default: all)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kits = args.kit or sorted(p.name for p in EXAMPLES.iterdir() if (p / "problem.py").exists())
    print(f"{'kit':<14} {'datarun test':>13} {'ramp-test':>10} {'ratio':>6}  "
          f"bagged valid (datarun / ramp-test)")
    for name in kits:
        work = Path(tempfile.mkdtemp(prefix="bench-local-test-"))
        kit = work / name
        shutil.copytree(EXAMPLES / name, kit)
        ours, theirs = [], []
        for _ in range(args.repeat):
            seconds, out = timed([str(BIN / "datarun"), "test", str(kit), "--submission",
                                  "starting_kit", "--json"], cwd=kit)
            ours.append(seconds)
            report = json.loads(out)
            seconds, ramp_out = timed([str(BIN / "ramp-test"), "--ramp-kit-dir", str(kit),
                                       "--submission", "starting_kit"], cwd=kit)
            theirs.append(seconds)
        official = next(st for st in report["score_types"] if st["official"])
        bagged = report["scores"][official["name"]]["valid"]["bagged"]
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{name:<14} {a:>11.2f} s {b:>8.2f} s {a / b:>6.2f}  "
              f"{bagged:.{official['precision']}f} / {ramp_bagged_valid(ramp_out)}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
