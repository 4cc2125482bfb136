"""Per-fold overhead of the HTTP runner path against the in-process path.

Both paths run the same folds of one kit's starting kit in the same local
sandbox, in this process, one after another:

  in-process  what workers did before the runner API: claim, lay out the work
              dir from the server's storage, run, record, all as direct calls
              of datarun's services on the database;
  HTTP        what every worker does now (workers.fold_runner.run_ticket):
              claim, fetch inputs by hash into the runner cache, stream
              heartbeats and log lines, report the outcome, all through the
              runner API of a real gunicorn.

A fold's overhead is its whole span (claim -> recorded) minus the time the
sandbox ran. The HTTP path is measured with a cold cache (first pass, every
input downloaded) and a warm one. Prints medians per fold and the HTTP minus
in-process difference (target: within 20 ms per fold, warm cache).

Uses the embedded defaults (SQLite) in a temporary DATARUN_HOME unless
DATABASE_URL is set. Usage: python bench/runner.py [--kit iris] [--repeat 5]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="iris")
    parser.add_argument("--repeat", type=int, default=5)
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
    from workers.fold_io import prepare_workdir, read_outcome
    from workers.fold_runner import limits_from, run_ticket, runner_environment
    from workers.runner_client import InputCache, RunnerClient
    from workers.sandbox.local import LocalSandbox

    call_command("migrate", verbosity=0)
    problem = services.problem_import_ramp_kit(
        path=ROOT / "datarun" / "examples" / args.kit, name=f"bench-runner-{time.time_ns()}")
    code = (ROOT / "datarun" / "examples" / args.kit / "submissions" / "starting_kit"
            / "estimator.py").read_bytes()
    prepared = storage.resolve(problem.storage_dir)
    sandbox = LocalSandbox(heartbeat_interval_s=settings.DATARUN_LOG_POLL_INTERVAL,
                           work_dir=home / "work")
    sandbox.warm_up()
    web, url = start_web(home / "gunicorn.log")
    client = RunnerClient(url, settings.DATARUN_RUNNER_TOKEN)
    environment = runner_environment("local")
    ran = []

    class Timed:
        """The sandbox, recording how long each fold ran in it."""

        inputs_read_only = sandbox.inputs_read_only

        def workdir_parent(self):
            return sandbox.workdir_parent()

        def cleanup(self, workdir):
            sandbox.cleanup(workdir)

        def run(self, workdir, limits, heartbeat):
            t0 = time.perf_counter()
            result = sandbox.run(workdir, limits, heartbeat=heartbeat)
            ran.append(time.perf_counter() - t0)
            return result

    timed = Timed()

    def in_process(fold_run_id: int) -> None:
        ticket = services.fold_run_claim(fold_run_id=fold_run_id, environment=environment)
        workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
        prepare_workdir(ticket, workdir,
                        inputs=ramp_kits.fold_inputs(prepared, ticket.fold_index),
                        files={n: storage.blob_path(d) for n, d in ticket.files.items()},
                        link_inputs=sandbox.inputs_read_only)
        limits = limits_from(ticket.limits, settings.DATARUN_LOG_LIMIT_BYTES)
        result = timed.run(workdir, limits, heartbeat=lambda: services.fold_run_heartbeat(
            fold_run_id=fold_run_id, attempt=ticket.attempt))
        outcome = read_outcome(ticket, workdir, result, limits)
        sandbox.cleanup(workdir)
        services.fold_run_finish(spec=ticket, outcome=outcome)

    def over_http(fold_run_id: int, cache: InputCache) -> None:
        ticket = client.claim(fold_run_id, environment)
        run_ticket(ticket, client, timed, cache,
                   log_limit_bytes=settings.DATARUN_LOG_LIMIT_BYTES,
                   heartbeat_interval_s=settings.DATARUN_HEARTBEAT_INTERVAL,
                   run_log_limit_bytes=settings.DATARUN_RUN_LOG_LIMIT_BYTES)

    def overheads(run_fold) -> list[float]:
        evaluation = services.evaluation_create(problem=problem, files={"estimator.py": code})
        out = []
        for fold_run in evaluation.fold_runs.order_by("fold_index"):
            ran.clear()
            t0 = time.perf_counter()
            run_fold(fold_run.id)
            out.append(time.perf_counter() - t0 - ran[0])
            fold_run.refresh_from_db()
            assert fold_run.state == "scored", (fold_run.state, fold_run.error_message)
        return out

    try:
        overheads(in_process)  # warm the database, the trusted inputs and imports up
        rows = {"in-process": [], "HTTP, cold cache": [], "HTTP, warm cache": []}
        for i in range(args.repeat):
            rows["in-process"] += overheads(in_process)
            cold = InputCache(home / f"cache-{i}")
            first = overheads(lambda f, c=cold: over_http(f, c))
            # Fold 0 downloads the problem's shared inputs, each fold its indices.
            rows["HTTP, cold cache"].append(first[0])
            rows["HTTP, warm cache"] += overheads(lambda f, c=cold: over_http(f, c))
    finally:
        web.terminate()
        web.wait()
        sandbox.close()
    base = statistics.median(rows["in-process"])
    print(f"kit {args.kit}, {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
          f"{args.repeat} repetitions; per-fold overhead (span minus time in the sandbox)")
    print(f"{'path':<20} {'median':>10} {'p90':>10} {'vs in-process':>15}")
    for name, values in rows.items():
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        median = statistics.median(values)
        print(f"{name:<20} {median * 1000:>8.1f} ms {p90 * 1000:>7.1f} ms "
              f"{(median - base) * 1000:>+12.1f} ms")
    warm = statistics.median(rows["HTTP, warm cache"]) - base
    print(f"warm-cache HTTP overhead over in-process: {warm * 1000:+.1f} ms per fold "
          f"(target: within 20 ms) -> {'met' if warm <= 0.020 else 'NOT met'}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
