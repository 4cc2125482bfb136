"""What streaming a fold's log costs the fold.

Runs fold 0 of an example kit in the local sandbox with a submission that
prints --lines lines over --seconds seconds while it trains, --repeat times
in each mode:
  (a) the worker's log streamer (workers.fold_runner.LogStreamer): reads the
      new lines every --poll seconds and stores them in the database;
  (b) a callback that does nothing (the fold's output is only in its files);
and prints the median fold wall time of each, the ratio a / b, the time the
streamer itself took and how many lines it stored per fold.

Uses the embedded defaults in a temporary DATARUN_HOME unless DATABASE_URL
is set. Usage: python bench/log_stream.py [--lines 20000] [--seconds 3] [--repeat 5]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TALKATIVE = """
import time

from sklearn.linear_model import LogisticRegression


class Talkative(LogisticRegression):
    def fit(self, X, y):
        # LINES lines in batches of 100, spread over SECONDS seconds.
        for i in range(LINES):
            print(f"iteration {i}: loss {1 / (i + 1):.6f}", flush=i % 100 == 99)
            if i % 100 == 99:
                time.sleep(SECONDS * 100 / LINES)
        return super().fit(X, y)


def get_estimator():
    return Talkative(max_iter=1000)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="iris")
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="datarun-bench-"))
    os.environ.setdefault("DATARUN_HOME", str(home))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from bench.webserver import start_web
    from datarun import ramp_kits, services, storage
    from datarun.models import RunLogLine
    from workers.fold_io import prepare_workdir
    from workers.fold_runner import LogStreamer, limits_from, runner_environment
    from workers.runner_client import RunnerClient
    from workers.sandbox.local import LocalSandbox

    call_command("migrate", verbosity=0)
    problem = services.problem_import_ramp_kit(path=ROOT / "datarun" / "examples" / args.kit,
                                               name=f"bench-log-{time.time_ns()}")
    code = (TALKATIVE.replace("LINES", str(args.lines))
            .replace("SECONDS", str(args.seconds)).encode())
    sandbox = LocalSandbox(heartbeat_interval_s=args.poll, work_dir=home / "work")
    # Lines go through the runner API, as every worker's do.
    web, url = start_web(home / "gunicorn.log")
    client = RunnerClient(url, settings.DATARUN_RUNNER_TOKEN)
    prepared = storage.resolve(problem.storage_dir)

    def one_fold(stream: bool) -> dict:
        evaluation = services.evaluation_create(problem=problem, files={"estimator.py": code})
        fold = evaluation.fold_runs.get(fold_index=0)
        spec = client.claim(fold.id, runner_environment("local"))
        workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
        prepare_workdir(spec, workdir, inputs=ramp_kits.fold_inputs(prepared, 0),
                        files={n: storage.blob_path(d) for n, d in spec.files.items()})
        spent = [0.0]
        # Heartbeats at the worker's interval are rare next to the lines: not sent here.
        streamer = LogStreamer(spec, client, workdir, 3600,
                               settings.DATARUN_RUN_LOG_LIMIT_BYTES)

        def tick():
            t0 = time.perf_counter()
            streamer.tick()
            spent[0] += time.perf_counter() - t0

        result = sandbox.run(workdir, limits_from(spec.limits, settings.DATARUN_LOG_LIMIT_BYTES),
                             heartbeat=tick if stream else (lambda: None))
        if stream:
            t0 = time.perf_counter()
            streamer.flush()
            spent[0] += time.perf_counter() - t0
        sandbox.cleanup(workdir)
        if result.exit_code != 0:
            sys.exit(f"the fold failed: {result.stderr[-2000:]}")
        return {"wall": result.wall_time, "spent": spent[0],
                "lines": RunLogLine.objects.filter(fold_run_id=fold.id).count()}

    one_fold(True)  # warm the fork server and the database up
    rows = {True: [], False: []}
    for _ in range(args.repeat):
        for stream in (True, False):
            rows[stream].append(one_fold(stream))
    sandbox.close()
    web.terminate()
    web.wait()

    def med(stream, key):
        return statistics.median(r[key] for r in rows[stream])

    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"kit {args.kit}, fold 0, a submission printing {args.lines} lines over "
          f"{args.seconds:g} s while it trains; "
          f"poll every {args.poll:g} s; database {database}; median of {args.repeat}\n")
    print(f"{'mode':26} {'fold wall time':>15} {'streamer time':>14} {'lines stored':>13}")
    print(f"{'(a) log streamed':26} {med(True, 'wall'):13.3f} s {med(True, 'spent'):12.3f} s "
          f"{med(True, 'lines'):13.0f}")
    print(f"{'(b) no streaming':26} {med(False, 'wall'):13.3f} s {'':>14} "
          f"{med(False, 'lines'):13.0f}")
    print(f"\nratio a / b: {med(True, 'wall') / med(False, 'wall'):.2f} "
          "(the streamer runs in the worker, between the sandbox's samples)")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
