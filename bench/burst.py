"""Burst benchmark: many submissions sent at once to real workers; how close
the fold slots come to the machine's limit.

Everything runs on this machine, started and stopped here, as bench/chaos.py
starts it: a PostgreSQL cluster and a Redis of their own (spare ports),
gunicorn (config/gunicorn.py, as deployed), a fold worker with ``--slots``
processes (queue ``sandbox``) and a scorer (queue ``scoring``: scoring,
contributivity), as `make run` and the Compose file lay them out. After one
warm-up submission, each burst (50 and then 200 iris starting kits by
default) is sent at once through the REST API, and for each it prints:

  - makespan: the first submission sent -> the last one scored;
  - ideal: the folds' own compute (train + validate + test, as the harness
    timed them) summed, divided by the slots; makespan / ideal, and the ideal
    as a share of the makespan;
  - slot utilisation: the time the slots held a fold (claim -> recorded) over
    slots x makespan, and the share of it that was the folds' compute; the
    slots' idle time split into idle while a fold task waited (sent, not yet
    claimed: the hand-off between folds) and idle with none waiting (the
    submissions still coming in, the last ones finishing), and the
    hand-off per fold;
  - submit -> scored p50 / p95 over the burst's submissions, and last fold
    recorded -> scored p50 / p95 (the hop from the folds to scoring).

    python bench/burst.py                        # local sandbox, 50 then 200
    python bench/burst.py --docker               # and the Docker sandbox (warm containers)
    python bench/burst.py --layouts separate,shared  # and one worker reading both queues
    python bench/burst.py --sizes 4 --json f.json    # a tiny run (tests/bench/test_burst.py)
    python bench/burst.py --fit-ms 500           # folds of half a second of compute

It also prints the CPU time each process spent per fold and the machine's
busy share: with folds of a few milliseconds on a small machine, the
platform's own CPU per fold (claim, report, record, score), not idle slots,
is what bounds the makespan.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402 - after the path is set
from bench.chaos import Cluster, setup_platform  # noqa: E402

EVENT = "burst"
FINAL = ("scored", "error", "cancelled")
PARTICIPANTS = 10
# Each layout: the worker nodes it starts, as (node, queues, processes); None
# stands for the fold slots.
LAYOUTS = {
    # make run and docker-compose.yml: folds and trusted work apart.
    "separate": [("folds", "sandbox", None), ("scorer", "scoring", 2)],
    # One worker reading both queues (the layout before issue 17).
    "shared": [("shared", "sandbox,scoring", None)],
}


def submit(url: str, token: str, name: str, code: bytes) -> dict:
    sent = time.time()
    response = requests.post(f"{url}/api/v1/events/{EVENT}/submissions/",
                             headers={"Authorization": f"Token {token}",
                                      "Idempotency-Key": uuid.uuid4().hex},
                             data={"name": name}, files={"files": ("estimator.py", code)},
                             timeout=300)
    if response.status_code != 201:
        raise RuntimeError(f"submission {name} refused: {response.status_code} "
                           f"{response.text[:300]}")
    return {"name": name, "sent": sent, "evaluation_id": response.json()["evaluation_id"]}


def wait_final(evaluation_ids: list[int], timeout: float, on_final=None) -> bool:
    """Until every evaluation is final (then ``on_final()``) and no
    contributivity update is pending (the scorer idle before the next
    burst); False at the deadline."""
    from databoard.models import Event
    from datarun.models import Evaluation

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = Evaluation.objects.filter(id__in=evaluation_ids).exclude(state__in=FINAL).count()
        if left == 0:
            if on_final is not None:
                on_final()
            while time.monotonic() < deadline and Event.objects.filter(
                    name=EVENT, contributivity_due_at__isnull=False).exists():
                time.sleep(0.5)
            return True
        time.sleep(0.1)
    return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def figures(records: list[dict], slots: int) -> dict:
    """The burst's figures, read from the database (server clock: the same
    machine as the client's)."""
    from datarun.models import Evaluation, FoldRun

    ids = [r["evaluation_id"] for r in records]
    evaluations = {e.id: e for e in Evaluation.objects.filter(id__in=ids)}
    folds = list(FoldRun.objects.filter(evaluation_id__in=ids, state="scored"))
    scored = [e for e in evaluations.values() if e.state == "scored"]
    start = min(r["sent"] for r in records)
    end = max(e.finished_at.timestamp() for e in evaluations.values() if e.finished_at)
    makespan = end - start
    compute = sum(f.train_time + f.valid_time + f.test_time for f in folds)
    ideal = compute / slots
    last_fold = {}
    for f in folds:
        last_fold[f.evaluation_id] = max(last_fold.get(f.evaluation_id, 0.0),
                                         f.finished_at.timestamp())
    to_scored = [evaluations[r["evaluation_id"]].finished_at.timestamp() - r["sent"]
                 for r in records if evaluations[r["evaluation_id"]].state == "scored"]
    hop = [e.finished_at.timestamp() - last_fold[e.id] for e in scored if e.id in last_fold]
    overhead = [(f.finished_at - f.started_at).total_seconds()
                - (f.train_time + f.valid_time + f.test_time) for f in folds]
    cycles = [cycle - (f.train_time + f.valid_time + f.test_time)
              for f, cycle in slot_cycles(folds)]
    idle_waiting, idle_none = idle_slot_time(folds, slots, start, end)
    # A slot holds a fold from its claim until it is recorded, or until the
    # slot claims its next one (the report then goes on beside it).
    held = slots * makespan - idle_waiting - idle_none
    errors: dict[str, int] = {}
    for e in evaluations.values():
        if e.state != "scored":
            why = f"{e.state}: {e.error_message[:150]}" if e.error_message else e.state
            errors[why] = errors.get(why, 0) + 1
    return {
        "submissions": len(records),
        "scored": len(scored),
        "not_scored": len(records) - len(scored),
        "not_scored_why": errors,
        "folds": len(folds),
        "slots": slots,
        "makespan_s": round(makespan, 2),
        "compute_s": round(compute, 2),
        "ideal_s": round(ideal, 2),
        "makespan_over_ideal": round(makespan / ideal, 2) if ideal else None,
        "ideal_share": round(ideal / makespan, 3) if makespan else None,
        "slot_utilisation": round(held / (slots * makespan), 3) if makespan else None,
        "compute_share_of_held": round(compute / held, 3) if held > 0 else None,
        "fold_overhead_median_ms": round(statistics.median(overhead) * 1000, 1)
        if overhead else None,
        "slot_cycle_minus_compute_median_ms": round(statistics.median(cycles) * 1000, 1)
        if cycles else None,
        "idle_with_fold_waiting_s": round(idle_waiting, 2),
        "idle_with_none_waiting_s": round(idle_none, 2),
        "handoff_per_fold_ms": round(idle_waiting / len(folds) * 1000, 1) if folds else None,
        "submit_to_scored_p50_s": round(percentile(to_scored, 0.5), 2) if to_scored else None,
        "submit_to_scored_p95_s": round(percentile(to_scored, 0.95), 2) if to_scored else None,
        "last_fold_to_scored_p50_ms": round(percentile(hop, 0.5) * 1000, 1) if hop else None,
        "last_fold_to_scored_p95_ms": round(percentile(hop, 0.95) * 1000, 1) if hop else None,
    }


def slot_cycles(folds: list) -> list[tuple]:
    """``(fold, seconds)`` for each fold a slot (runner host and slot) claimed
    another fold after: from its claim to the slot's next claim, the slot's
    whole cost of the fold (its report goes on beside the next one)."""
    slots: dict[tuple, list] = {}
    for f in folds:
        slots.setdefault((f.worker_host, (f.environment or {}).get("slot")), []).append(f)
    cycles = []
    for claims in slots.values():
        claims.sort(key=lambda f: f.started_at)
        cycles += [(f, (after.started_at - f.started_at).total_seconds())
                   for f, after in zip(claims, claims[1:], strict=False)]
    return cycles


def idle_slot_time(folds: list, slots: int, start: float, end: float) -> tuple[float, float]:
    """Slot-seconds idle between ``start`` and ``end``: while a fold task
    waited (sent, not claimed yet), and while none did."""
    events = []  # (time, change of waiting folds, change of busy slots)
    for f in folds:
        sent = f.dispatched_at or f.started_at
        events += [(sent.timestamp(), 1, 0), (f.started_at.timestamp(), -1, 1),
                   (f.finished_at.timestamp(), 0, -1)]
    events.sort()
    waiting = busy = 0
    at = start
    idle_waiting = idle_none = 0.0
    for t, d_waiting, d_busy in [*events, (end, 0, 0)]:
        t = min(max(t, start), end)
        idle = max(0, slots - busy) * (t - at)
        share = min(max(0, slots - busy), waiting) / max(1, slots - busy)
        idle_waiting += idle * share
        idle_none += idle * (1 - share)
        waiting, busy, at = waiting + d_waiting, busy + d_busy, t
    return idle_waiting, idle_none


def print_figures(label: str, f: dict) -> None:
    def pct(x):
        return "-" if x is None else f"{x * 100:.0f} %"

    rows = [
        ("scored / not scored", f"{f['scored']} / {f['not_scored']} ({f['folds']} folds)"),
        ("makespan (first sent -> last scored)", f"{f['makespan_s']:.1f} s"),
        (f"ideal (fold compute {f['compute_s']:.1f} s / {f['slots']} slots)",
         f"{f['ideal_s']:.1f} s"),
        ("makespan / ideal", f"{f['makespan_over_ideal']}x ({pct(f['ideal_share'])} of ideal)"),
        ("slot utilisation (claim -> recorded)",
         f"{pct(f['slot_utilisation'])} (compute {pct(f['compute_share_of_held'])} of it)"),
        ("per-fold span minus compute, median", f"{f['fold_overhead_median_ms']} ms"),
        ("a slot's cycle (claim -> its next claim) minus compute, median",
         f"{f['slot_cycle_minus_compute_median_ms']} ms"),
        ("slots idle while a fold task waited / none waited",
         f"{f['idle_with_fold_waiting_s']} s / {f['idle_with_none_waiting_s']} s "
         f"(hand-off {f['handoff_per_fold_ms']} ms per fold)"),
        ("submit -> scored p50 / p95",
         f"{f['submit_to_scored_p50_s']} s / {f['submit_to_scored_p95_s']} s"),
        ("last fold recorded -> scored p50 / p95",
         f"{f['last_fold_to_scored_p50_ms']} ms / {f['last_fold_to_scored_p95_ms']} ms"),
        ("machine CPU busy during the burst", pct(f.get("machine_busy"))),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{label}:")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for why, count in f["not_scored_why"].items():
        print(f"  not scored ({count}): {why}")
    if f.get("cpu_s"):
        cpu.print_used("  CPU by process", f["cpu_s"], max(1, f["folds"]), "fold")


def submission(fit_ms: int) -> bytes:
    """The iris starting kit, its fit made ``fit_ms`` milliseconds of CPU
    longer (0: as it is)."""
    code = (ROOT / "datarun" / "examples" / "iris" / "submissions" / "starting_kit"
            / "estimator.py").read_text()
    if fit_ms:
        code = code.replace("def get_estimator():", f"""class Busy(LogisticRegression):
    def fit(self, X, y):
        import time
        end = time.process_time() + {fit_ms / 1000!r}
        while time.process_time() < end:
            pass
        return super().fit(X, y)


def get_estimator():""").replace("LogisticRegression(max_iter=1000)", "Busy(max_iter=1000)")
    return code.encode()


def run(*, sizes: list[int], slots: int, backends: list[str], layouts: list[str],
        home: Path, timeout_per_fold: float, fit_ms: int = 0) -> list[dict]:
    code = submission(fit_ms)
    cluster = Cluster(home, slots)
    results = []
    try:
        cluster.start_postgres()
        cluster.start_redis()
        os.environ.update({k: cluster.env[k] for k in (
            "DATABASE_URL", "CELERY_BROKER_URL", "DATARUN_HOME", "SECRET_KEY", "DEBUG")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        tokens = setup_platform(PARTICIPANTS, EVENT, "Burst")
        cluster.start_web(deployed=True)
        url = cluster.env["DATARUN_API_URL"]
        n = 0
        for backend in backends:
            for layout in layouts:
                env = {"DATARUN_SANDBOX": backend}
                nodes = []
                for node, queues, processes in LAYOUTS[layout]:
                    name = f"{node}-{backend}"
                    cluster.start_worker(name, queues, processes or slots, env)
                    nodes.append(name)
                for name in nodes:
                    cluster.wait_worker_ready(name)
                label = (f"{backend} sandbox, {slots} fold slots, "
                         + ("a scorer beside them" if layout == "separate"
                            else "one worker reading both queues"))
                # One submission first: fork servers or warm containers
                # started, the inputs in the runner's cache.
                warm = submit(url, tokens[0], f"warm-up-{backend}-{layout}", code)
                if not wait_final([warm["evaluation_id"]], 300):
                    raise RuntimeError(f"the warm-up submission was not scored ({label})")
                for size in sizes:
                    n += 1
                    print(f"{label}: sending {size} submissions at once...", flush=True)
                    groups = {"web (gunicorn)": [cluster.web.pid],
                              **{f"{name} (Celery{', its slots and sandboxes' if i == 0 else ''})":
                                 [cluster.workers[name].pid] for i, name in enumerate(nodes)}}
                    before = cpu.reading(groups)
                    with ThreadPoolExecutor(max_workers=min(size, 32)) as pool:
                        futures = [pool.submit(submit, url, tokens[i % len(tokens)],
                                               f"b{n}-{i:04d}", code) for i in range(size)]
                        records = [f.result() for f in futures]
                    ids = [r["evaluation_id"] for r in records]
                    after: dict = {}

                    def read_cpu(after=after, groups=groups) -> None:
                        after.update(cpu.reading(groups))

                    finished = wait_final(ids, 120 + size * 5 * timeout_per_fold / slots,
                                          on_final=read_cpu)
                    # Read when the last one was seen scored (within 0.1 s).
                    cpu_s = cpu.used(before, after or cpu.reading(groups))
                    result = {"backend": backend, "layout": layout, "size": size,
                              "finished": finished, **figures(records, slots),
                              "fit_ms": fit_ms, "cpu_s": cpu_s,
                              "machine_busy": round(cpu_s["machine"] / (
                                  cpu_s["machine"] + cpu_s["machine idle"]), 3)}
                    print_figures(f"burst of {size}, {label}", result)
                    results.append(result)
                for name in nodes:
                    cluster.stop_worker(name)
        return results
    finally:
        cluster.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200",
                        help="burst sizes, comma-separated (default 50,200)")
    parser.add_argument("--slots", type=int, default=2, help="fold worker processes")
    parser.add_argument("--docker", action="store_true",
                        help="also the Docker sandbox (warm containers), after the local one")
    parser.add_argument("--layouts", default="separate",
                        help="worker layouts, comma-separated: separate (a fold worker and "
                             "a scorer, the default) and shared (one worker, both queues)")
    parser.add_argument("--timeout-per-fold", type=float, default=3.0,
                        help="seconds allowed per fold and slot before a burst gives up")
    parser.add_argument("--fit-ms", type=int, default=0,
                        help="make each fold's fit this many ms of CPU longer (default 0: "
                             "the iris starting kit as it is, about 20 ms of compute a fold)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--keep", action="store_true", help="keep the logs and data dir")
    args = parser.parse_args(argv)
    layouts = args.layouts.split(",")
    if unknown := set(layouts) - set(LAYOUTS):
        parser.error(f"unknown layout(s): {', '.join(sorted(unknown))}")
    backends = ["local", "docker"] if args.docker else ["local"]
    home = Path(tempfile.mkdtemp(prefix="datarun-burst-"))
    try:
        results = run(sizes=[int(s) for s in args.sizes.split(",")], slots=args.slots,
                      backends=backends, layouts=layouts, home=home,
                      timeout_per_fold=args.timeout_per_fold, fit_ms=args.fit_ms)
    finally:
        if args.keep:
            print(f"logs and data: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print("\nsummary (makespan / ideal, slot utilisation, submit -> scored p50 / p95):")
    for r in results:
        print(f"  {r['backend']:<6} {r['layout']:<8} {r['size']:>4} submissions: "
              f"{r['makespan_over_ideal']}x ({r['ideal_share'] * 100:.0f} % of ideal), "
              f"slots busy {r['slot_utilisation'] * 100:.0f} %, "
              f"{r['submit_to_scored_p50_s']} s / {r['submit_to_scored_p95_s']} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["finished"] and r["not_scored"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
