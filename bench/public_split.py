"""What the public split costs a kit's import.

For each example kit, prepares it --repeat times without the public split
(the baseline: what an import did before) and with it (carving fold 0 of
get_cv, writing data/train* and data/test*, loading them with the kit's own
functions), and prints the median times, their ratio, the public train/test
rows and the bytes of the public data.

Usage: python bench/public_split.py [--repeat 5]
"""
import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datarun import ramp_kits  # noqa: E402

EXAMPLES = ROOT / "datarun" / "examples"


def timed_prepare(kit: Path, public: bool) -> tuple[float, ramp_kits.PreparedKit, Path]:
    out = Path(tempfile.mkdtemp(prefix="bench-public-")) / "prepared"
    started = time.perf_counter()
    prepared = ramp_kits.prepare_kit(kit, out, public=public)
    return time.perf_counter() - started, prepared, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'kit':<14} {'without (s)':>11} {'with (s)':>9} {'ratio':>6} "
          f"{'public train/test rows':>23} {'public data':>12} source")
    for kit in sorted(p for p in EXAMPLES.iterdir() if (p / "problem.py").is_file()):
        times = {False: [], True: []}
        for _ in range(args.repeat):
            for public in (False, True):
                seconds, prepared, out = timed_prepare(kit, public)
                times[public].append(seconds)
                if public:
                    record = prepared.public_split
                    size = sum(p.stat().st_size for p in (out / "public" / "data").iterdir())
                shutil.rmtree(out.parent, ignore_errors=True)
        without, with_ = statistics.median(times[False]), statistics.median(times[True])
        print(f"{kit.name:<14} {without:>11.3f} {with_:>9.3f} {with_ / without:>6.2f} "
              f"{record['n_train']:>11}/{record['n_test']:<11} {size:>10} B {record['source']}")


if __name__ == "__main__":
    main()
