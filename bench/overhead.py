"""Platform overhead against running the folds in one process, as ramp-test does.

For one example kit and its starting kit, prints for each sandbox backend
(local, and Docker with warm containers and with a cold container per fold
when a Docker daemon and the runtime image are here), in one run:
  (a) wall time from the API call to "scored" through the platform (a real
      fold worker with 2 processes and a scorer, as `make run` starts them;
      web view called in this process);
  (b) wall time of `ramp-test --submission starting_kit` in a fresh process,
      which loads the data and trains, predicts and scores the folds one
      after another;
  (c) the ratio a / b, and the per-fold platform overhead: the fold's time in
      the sandbox minus the harness's own compute, and the whole fold span
      (claimed -> recorded) minus that compute;
  (d) where a submission's time goes, API call -> scored, step by step
      (medians, from the records' timestamps: one clock, this machine's);
  (e) the CPU time each process spent per submission (web, fold worker with
      its sandboxes, scorer, PostgreSQL, Redis, Docker, this benchmark) and
      the machine's busy share: on a small machine, the platform's own CPU
      per fold, not waiting, is what bounds it.

Uses the embedded defaults in a temporary DATARUN_HOME unless DATABASE_URL /
CELERY_BROKER_URL are set.
Submissions come one after another, each sent once the machine is idle again
(``--pause idle``, the default: a Docker worker re-warms the containers the
last submission used, about a second of CPU each), which is how long that
took is printed too; ``--pause 2`` sends each 2 s after the last was scored.
Usage: python bench/overhead.py [--kit iris] [--repeat 5] [--backends local,docker]
                                [--warm 3,0] (warm containers per fold slot, comma-separated)
                                [--pause idle|SECONDS]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402 - after the path is set
from bench.burst import slot_cycles  # noqa: E402

# How often this client reads the evaluation's state: each read is CPU the
# platform's processes do not get (2 CPUs here).
POLL_S = 0.005


def docker_unavailable() -> str | None:
    """Why folds cannot run in Docker here, or None."""
    import shutil

    if not shutil.which("docker") or subprocess.run(["docker", "info"],
                                                    capture_output=True).returncode:
        return "no Docker daemon answers"
    from workers.sandbox.image import runtime_image

    image = runtime_image()
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
        return f"the runtime image {image} is missing (python3 deploy/runtime/build.py)"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="iris")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pause", default="idle",
                        help="between one submission scored and the next sent: seconds, or "
                             "'idle' (the default): until the machine is idle again (a warm "
                             "container pool re-warmed), printing how long that took")
    parser.add_argument("--backends", default="local,docker",
                        help="sandbox backends to time, comma-separated (docker: warm and "
                             "cold containers; left out, saying why, without a daemon or "
                             "the runtime image)")
    parser.add_argument("--warm", default="3,0",
                        help="Docker: warm containers per fold slot (DATARUN_WARM_CONTAINERS), "
                             "comma-separated for one variant each; 0: a cold container per "
                             "fold")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="datarun-bench-")
    os.environ.setdefault("DATARUN_HOME", home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from databoard.models import Event
    from datarun.models import Evaluation, FoldRun

    kit_dir = ROOT / "datarun" / "examples" / args.kit
    code = (kit_dir / "submissions" / "starting_kit" / "estimator.py").read_bytes()
    call_command("migrate", verbosity=0)
    call_command("import_ramp_kit", str(kit_dir), name=args.kit, event=args.kit, replace=True,
                 stdout=open(os.devnull, "w"))
    Event.objects.filter(name=args.kit).update(problem_name=args.kit)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = APIClient()
    client.force_authenticate(user)
    client.post(f"/api/v1/events/{args.kit}/signup/")

    from bench.webserver import start_web

    # The worker runs folds through the runner API of a real web server.
    web, url = start_web(Path(settings.DATARUN_HOME) / "gunicorn.log")

    def celery_worker(name: str, queue: str, concurrency: int, env: dict) -> subprocess.Popen:
        log = open(Path(settings.DATARUN_HOME) / f"{name}.log", "w")
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue,
             "-n", f"{name}@%h", "-c", str(concurrency), "-l", "WARNING"],
            cwd=ROOT, env={**os.environ, "DATARUN_API_URL": url, **env},
            stdout=log, stderr=subprocess.STDOUT,
        )

    # The scorer serves every variant; each variant gets a fresh fold worker.
    scorer = celery_worker("scorer", "scoring", 1, {})

    def platform_runs(label: str, worker_env: dict) -> tuple[list[dict], dict]:
        """``repeat`` + 1 submissions, one after another, on a fresh worker;
        and the CPU seconds each group of processes spent on the warm ones."""
        worker = celery_worker("folds-" + "-".join(label.replace(",", "").split()),
                               "sandbox", args.concurrency, worker_env)
        runs = []
        cpu_before = None
        try:
            time.sleep(1)
            for i in range(args.repeat + 1):  # the first one warms the worker up
                if i == 1:
                    cpu_before = cpu.reading(groups(worker))
                from django.core.files.uploadedfile import SimpleUploadedFile

                t0, sent = time.perf_counter(), time.time()
                response = client.post(
                    f"/api/v1/events/{args.kit}/submissions/",
                    {"name": f"run{i}-{time.time_ns()}",
                     "files": [SimpleUploadedFile("estimator.py", code)]},
                    format="multipart",
                )
                answered = time.time()
                assert response.status_code == 201, response.json()
                evaluation_id = response.json()["evaluation_id"]
                while True:
                    state = Evaluation.objects.filter(id=evaluation_id).values_list(
                        "state", flat=True).get()
                    if state in ("scored", "error"):
                        break
                    if time.perf_counter() - t0 > 300:
                        raise SystemExit(f"{label}: submission {i} not scored after 300 s "
                                         f"(see the logs in {settings.DATARUN_HOME})")
                    time.sleep(POLL_S)
                elapsed, seen = time.perf_counter() - t0, time.time()
                assert state == "scored", Evaluation.objects.get(id=evaluation_id).error_message
                runs.append({"elapsed": elapsed, "evaluation_id": evaluation_id, "sent": sent,
                             "answered": answered, "seen": seen})
                # Folds come one submission after another, as a participant
                # sends them, not back to back: warm containers get ready.
                if args.pause == "idle":
                    runs[-1]["settled"] = cpu.wait_until_idle()
                else:
                    time.sleep(float(args.pause))
            cpu_used = cpu.used(cpu_before, cpu.reading(groups(worker)))
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        return runs, cpu_used

    def groups(worker: subprocess.Popen) -> dict[str, list[int]]:
        return {"web (gunicorn: API, runner API, scoring folds as they report)": [web.pid],
                "fold worker (Celery, its slots and their sandboxes)": [worker.pid],
                "scorer (Celery: evaluation scores, read model)": [scorer.pid]}

    # Every backend in the same run: local, then Docker twice (warm
    # containers, then one cold container per fold).
    backends = args.backends.split(",")
    variants, left_out = [], []
    if "local" in backends:
        variants.append(("local", {"DATARUN_SANDBOX": "local"}))
    if "docker" in backends and args.warm:
        if why := docker_unavailable():
            left_out.append(f"docker: {why}")
        else:
            variants += [(f"docker, warm containers ({depth} per slot)" if int(depth)
                          else "docker, cold containers",
                          {"DATARUN_SANDBOX": "docker", "DATARUN_WARM_CONTAINERS": depth})
                         for depth in args.warm.split(",")]
    try:
        results = [(label, platform_runs(label, env)) for label, env in variants]
    finally:
        for proc in (scorer, web):
            proc.terminate()
            proc.wait(timeout=60)

    ramp_test = str(Path(sys.executable).parent / "ramp-test")
    baseline = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([ramp_test, "--submission", "starting_kit"], cwd=kit_dir, check=True,
                       capture_output=True)
        baseline.append(time.perf_counter() - t0)
    subprocess.run(["rm", "-rf", str(kit_dir / "submissions" / "starting_kit" / "__pycache__")])

    b = statistics.median(baseline)
    ms = 1000
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = settings.CELERY_BROKER_URL.split("://")[0]
    print(f"kit: {args.kit}, submission: starting_kit, "
          f"worker concurrency: {args.concurrency}, database: {database}, "
          f"broker: {broker}, "
          + ("the machine idle again between submissions" if args.pause == "idle"
             else f"{float(args.pause):g} s between submissions"))
    for line in left_out:
        print(f"left out: {line}")
    print(f"(b) ramp-test in a fresh process:  median {b:.3f} s over {len(baseline)} runs "
          f"(min {min(baseline):.3f}, max {max(baseline):.3f})")
    overheads = {}
    for label, (runs, cpu_used) in results:
        cold = runs[0]["elapsed"]
        warm = [r["elapsed"] for r in runs[1:]]
        warm_ids = [r["evaluation_id"] for r in runs[1:]]
        folds = FoldRun.objects.filter(evaluation_id__in=warm_ids)
        sandbox_overhead, span_overhead = [], []
        for f in folds:
            compute = f.train_time + f.valid_time + f.test_time
            sandbox_overhead.append(f.wall_time - compute)
            span_overhead.append((f.finished_at - f.started_at).total_seconds() - compute)
        n_folds = folds.filter(evaluation_id=warm_ids[0]).count()
        a = statistics.median(warm)
        overheads[label] = statistics.median(sandbox_overhead) * ms
        print(f"\n{label} ({n_folds} folds per submission):")
        print(f"(a) platform, API call -> scored: median {a:.3f} s over {len(warm)} runs "
              f"(min {min(warm):.3f}, max {max(warm):.3f}); first run on a fresh worker "
              f"{cold:.3f} s")
        print(f"(c) ratio a/b: {a / b:.2f}")
        print(f"per-fold overhead, sandbox (start -> predictions back) minus harness compute: "
              f"median {overheads[label]:.1f} ms, max {max(sandbox_overhead) * ms:.1f} ms")
        print(f"per-fold overhead, whole fold span (claim -> recorded) minus harness compute: "
              f"median {statistics.median(span_overhead) * ms:.1f} ms, "
              f"max {max(span_overhead) * ms:.1f} ms")
        settled = [r["settled"] for r in runs[1:] if "settled" in r]
        if settled:
            print(f"after each submission, the machine idle again (busy < 15 % of 0.5 s) in: "
                  f"median {statistics.median(settled):.2f} s, max {max(settled):.2f} s "
                  "(submissions closer than that wait for the platform's own work: a "
                  "warm pool re-warming)")
        print("(d) API call -> scored, step by step (median ms):")
        for step, value in time_line(runs[1:]):
            print(f"      {step:<64} {value * ms:8.1f}")
        cpu.print_used("(e) CPU by process, the pauses included", cpu_used,
                       args.repeat, "submission")
    cold_ms = overheads.get("docker, cold containers")
    for label, warm_ms in overheads.items():
        if cold_ms and label.startswith("docker, warm"):
            print(f"\n{label}: per-fold sandbox overhead {warm_ms:.0f} ms against "
                  f"{cold_ms:.0f} ms cold ({warm_ms / cold_ms:.2f}x). A warm fold's wall time "
                  "starts at its go: waiting for a container still importing shows in the "
                  "whole fold span only.")


def time_line(runs: list[dict]) -> list[tuple[str, float]]:
    """Where a submission's time goes, API call -> seen scored: each step's
    median over ``runs`` (seconds). The fold steps are per fold; the
    submission's folds share the worker's slots."""
    from datarun.models import Evaluation, FoldRun

    steps: dict[str, list[float]] = {}

    def add(step: str, value: float) -> None:
        steps.setdefault(step, []).append(value)

    for run in runs:
        evaluation = Evaluation.objects.get(id=run["evaluation_id"])
        folds = list(FoldRun.objects.filter(evaluation=evaluation))
        created = evaluation.created_at.timestamp()
        # A fold claimed before its message's send was recorded keeps none.
        sent = [f.dispatched_at for f in folds if f.dispatched_at is not None]
        first_claim = min(f.started_at for f in folds).timestamp()
        first_sent = min(sent).timestamp() if sent else first_claim
        last_recorded = max(f.finished_at for f in folds).timestamp()
        scored = evaluation.finished_at.timestamp()
        add("API call -> evaluation created (pre-check, rules, files stored)",
            created - run["sent"])
        add("evaluation created -> API answer (commit, response)", run["answered"] - created)
        add("evaluation created -> first fold task sent (on commit)", first_sent - created)
        add("first fold task sent -> first fold claimed (broker, worker, claim)",
            first_claim - first_sent)
        add("first fold claimed -> last fold recorded (the folds)", last_recorded - first_claim)
        for f in folds:
            compute = f.train_time + f.valid_time + f.test_time
            span = (f.finished_at - f.started_at).total_seconds()
            add("  per fold: claimed -> recorded, out of the sandbox (inputs, work dir, "
                "report, record)", span - f.wall_time)
            add("  per fold: in the sandbox, minus compute", f.wall_time - compute)
            add("  per fold: compute (train + validate + test)", compute)
        # A slot claims its next fold as soon as it hands the last one's report over.
        for f, cycle in slot_cycles(folds):
            add("  per fold: a slot's cycle, claim -> its next claim", cycle)
            add("  per fold: a slot's cycle minus compute (its own overhead)",
                cycle - (f.train_time + f.valid_time + f.test_time))
        add("last fold recorded -> evaluation scored (with its report, or the scorer)",
            scored - last_recorded)
        add("evaluation scored -> seen by this client (its 5 ms poll)", run["seen"] - scored)
        add("total, API call -> seen scored", run["seen"] - run["sent"])
    return [(step, statistics.median(values)) for step, values in steps.items()]


if __name__ == "__main__":
    main()
