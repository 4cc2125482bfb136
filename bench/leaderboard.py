"""Leaderboards and pages at --submissions scored submissions and 200 viewers.

Builds a competitive event of --submissions scored submissions over --teams
teams with the rows a scored evaluation really leaves (5 fold runs with their
stdout, stderr and environment, 45 fold scores, 9 evaluation scores each, on
the iris kit), builds its leaderboard read model, and checks that the rows
the boards read equal the rows the full recomputation gives (same ranks, same
scores) before printing anything. Then, against a gunicorn over loopback:

  - an open-loop mix of --rate requests/s for --duration s: 200 open pages
    refreshing their table every 10 s with the ETag they have, full page
    loads, API clients on the first and a deep page, the competition and the
    private boards, the event page, a submission page and a health check,
    while one more submission is scored every 10 s;
  - the saturation throughput: the same mix at rising rates until p99 passes
    200 ms.

Prints p50/p95/p99 per endpoint, SQL queries per request (the same requests
made in-process), the time to update the read model when one more submission
is scored, and contributivity for every submission (predictions in storage,
written in one statement). Latencies count from the moment a request was due
(open loop), so queueing shows.

Needs PostgreSQL (DATABASE_URL). Usage:
  python bench/leaderboard.py [--submissions 10000] [--teams 500] [--rate 50]
      [--duration 60] [--servers before,deployed] [--no-saturation] [--no-contributivity]
"""
import argparse
import http.client
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVENT = "bench-leaderboard"
STDOUT = "epoch 1/10 loss 0.4123 accuracy 0.9\n" * 30
STDERR = "UserWarning: lbfgs failed to converge (status=1)\n" * 5
ENVIRONMENT = {"python": "3.11.9", "packages": {f"package-{i}": "1.2.3" for i in range(20)}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# --- the event ----------------------------------------------------------------------

class World:
    """The event's rows, made as the platform makes them, in bulk."""

    def __init__(self, n_submissions: int, n_teams: int, seed: int = 0):
        from django.contrib.auth import get_user_model

        from databoard.models import Event, Submission, Team, TeamMember
        from datarun import services as datarun_services
        from datarun.models import Evaluation, Problem, ScoreType

        self.rng = random.Random(seed)
        Event.objects.filter(name=EVENT).delete()
        get_user_model().objects.filter(username__startswith="bench-lb-").delete()
        # An earlier run's problem and evaluations (its storage was another DATARUN_HOME).
        Evaluation.objects.filter(problem__name="bench-leaderboard-iris").delete()
        Problem.objects.filter(name="bench-leaderboard-iris").delete()
        self.problem = datarun_services.problem_import_ramp_kit(
            path=ROOT / "datarun" / "examples" / "iris", name="bench-leaderboard-iris")
        self.score_types = list(ScoreType.objects.filter(problem=self.problem).order_by("index"))
        self.event = Event.objects.create(
            name=EVENT, title="Leaderboard bench", problem_name=self.problem.name,
            is_competitive=True, opens_at=None)
        users = get_user_model().objects.bulk_create(
            get_user_model()(username=f"bench-lb-{i}") for i in range(n_teams + 1))
        self.admin = users[-1]
        self.event.admins.add(self.admin)
        self.teams = Team.objects.bulk_create(
            Team(event=self.event, name=f"team-{i:04d}") for i in range(n_teams))
        TeamMember.objects.bulk_create(
            TeamMember(team=t, user=u, event=self.event)
            for t, u in zip(self.teams, users, strict=False))
        self.members = {t.id: u for t, u in zip(self.teams, users, strict=False)}
        self.start = self.event.created_at - timedelta(days=30)
        self.n = 0
        for first in range(0, n_submissions, 1000):
            self.add(min(1000, n_submissions - first))
        # A fifth of the teams select a submission for the competition.
        for team in self.teams[::5]:
            chosen = Submission.objects.filter(team=team).order_by("?").first()
            Team.objects.filter(id=team.id).update(selected_submission=chosen)

    def add(self, count: int) -> list:
        """``count`` scored submissions, with every row scoring leaves."""
        from django.utils import timezone

        from databoard.models import Submission
        from datarun.models import Evaluation, EvaluationScore, FoldRun, FoldScore

        now = timezone.now()
        evaluations = Evaluation.objects.bulk_create(
            Evaluation(problem=self.problem, files={"estimator.py": "0" * 64},
                       code_hash="0" * 64, limits={"wall_time_s": 600, "memory_mb": 2048},
                       sandbox_backend="local", state="scored", started_at=now,
                       finished_at=now) for _ in range(count))
        folds = FoldRun.objects.bulk_create(
            FoldRun(evaluation=e, fold_index=k, state="scored", attempt=1,
                    worker_host="worker-1", isolation="bubblewrap", train_time=0.2 + k / 100,
                    valid_time=0.01, test_time=0.02, wall_time=1.5, cpu_time=1.1,
                    peak_memory=150 * 2**20 + k, stdout=STDOUT, stderr=STDERR,
                    environment=ENVIRONMENT, started_at=now, finished_at=now)
            for e in evaluations for k in range(5))
        skill = {e.id: self.rng.uniform(0.6, 0.99) for e in evaluations}
        fold_scores, scores = [], []
        for fold in folds:
            for st in self.score_types:
                for step in ("train", "valid", "test"):
                    fold_scores.append(FoldScore(fold_run=fold, score_type=st, step=step,
                                                 value=self._value(skill[fold.evaluation_id])))
        for e in evaluations:
            for st in self.score_types:
                for step in ("train", "valid", "test"):
                    value = self._value(skill[e.id])
                    scores.append(EvaluationScore(
                        evaluation=e, score_type=st, step=step,
                        mean=None if value is None else value - 0.001,
                        std=0.01, bagged=None if step == "train" else value))
        FoldScore.objects.bulk_create(fold_scores, batch_size=5000)
        EvaluationScore.objects.bulk_create(scores, batch_size=5000)
        submissions = []
        for e in evaluations:
            team = self.teams[self.rng.randrange(len(self.teams))]
            self.n += 1
            submissions.append(Submission(
                team=team, name=f"sub-{self.n:05d}", submitted_by=self.members[team.id],
                evaluation_id=e.id))
        submissions = Submission.objects.bulk_create(submissions)
        # Submission times spread over 30 days (auto_now_add set them all to now).
        for s in submissions:
            s.created_at = self.start + timedelta(seconds=self.rng.uniform(0, 30 * 86400))
        Submission.objects.bulk_update(submissions, ["created_at"], batch_size=5000)
        return submissions

    def _value(self, skill: float) -> float | None:
        if self.rng.random() < 0.002:
            return None  # a missing score now and then: it ranks last
        return round(skill + self.rng.gauss(0, 0.01), 6)


def check_rows(world: World) -> None:
    """The read model's rows equal the full recomputation's, on each board."""
    from django.contrib.auth.models import AnonymousUser

    from databoard import leaderboard_selectors as boards
    from datarun.api.pagination import PageRequest

    for user, board, kind in [(AnonymousUser(), "public", "bagged"),
                              (AnonymousUser(), "public", "mean"),
                              (world.admin, "private", "bagged"),
                              (world.admin, "competition", "bagged")]:
        expected = boards.leaderboard_recomputed(event=world.event, user=user, board=board,
                                                 kind=kind)["rows"]
        got, number = [], 1
        while True:
            data = boards.leaderboard_rows(event=world.event, user=user, board=board, kind=kind,
                                           page=PageRequest(number=number, size=500))
            got += data["rows"]
            if number >= data["pages"]:
                break
            number += 1
        if got != expected:
            diff = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True))
                        if a != b) \
                if len(got) == len(expected) else "length"
            sys.exit(f"the {board} board ({kind}) differs from the recomputation at {diff}")
        print(f"  {board:11s} {kind:6s} {len(got):6d} rows equal the recomputation")


# --- the load ------------------------------------------------------------------------

class Endpoint:
    def __init__(self, name: str, rate: float, path: str, headers: dict | None = None,
                 conditional: bool = False):
        self.name, self.rate, self.path = name, rate, path
        self.headers, self.conditional = headers or {}, conditional
        self.etag = None


def endpoints(world: World, session: str, admin_session: str, token: str) -> list[Endpoint]:
    """The mix at 50 requests/s; scaled to other rates as a whole."""
    from databoard.models import Submission

    e = EVENT
    mine = Submission.objects.filter(team_id=world.teams[7].id).first()
    deep = max(1, world.n // 50 // 2)
    participant = {"Cookie": f"sessionid={session}"}
    return [
        Endpoint("table refresh (304s)", 20, f"/events/{e}/leaderboard/table/",
                 conditional=True),
        Endpoint("leaderboard page", 5, f"/events/{e}/leaderboard/", participant),
        Endpoint("API board, page 1", 8, f"/api/v1/events/{e}/leaderboard/"),
        Endpoint(f"API board, page {deep}", 4, f"/api/v1/events/{e}/leaderboard/?page={deep}"),
        Endpoint("competition board", 3, f"/events/{e}/leaderboard/?board=competition",
                 participant),
        Endpoint("private board (API)", 3, f"/api/v1/events/{e}/leaderboard/?board=private",
                 {"Authorization": f"Token {token}"}),
        Endpoint("event page", 3, f"/events/{e}/", participant),
        Endpoint("submission page", 3, f"/submissions/{mine.id}/", participant),
        Endpoint("health", 1, "/api/v1/health/"),
    ]


def login_session(user) -> str:
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        load_backend,
    )
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    # The backend a login records: the first that loads users (not axes').
    session[BACKEND_SESSION_KEY] = next(
        path for path in settings.AUTHENTICATION_BACKENDS
        if hasattr(load_backend(path), "get_user"))
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def drive(url: str, mix: list[Endpoint], rate: float, duration: float, threads: int = 96
          ) -> dict[str, list[tuple[float, int]]]:
    """Open loop: each request is sent when due whatever the others are doing;
    its latency counts from when it was due."""
    host = urlsplit(url)
    total = sum(e.rate for e in mix)
    schedule = []
    rng = random.Random(1)
    for endpoint in mix:
        share = rate * endpoint.rate / total
        t = rng.uniform(0, 1 / share)
        while t < duration:
            schedule.append((t, endpoint))
            t += rng.expovariate(share)
    schedule.sort(key=lambda x: x[0])
    results: dict[str, list[tuple[float, int]]] = defaultdict(list)
    lock = threading.Lock()

    def one(due: float, endpoint: Endpoint) -> None:
        headers = dict(endpoint.headers)
        if endpoint.conditional and endpoint.etag:
            headers["If-None-Match"] = endpoint.etag
        status = 0
        try:
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
            conn.request("GET", endpoint.path, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            if endpoint.conditional and response.getheader("ETag"):
                endpoint.etag = response.getheader("ETag")
            conn.close()
        except OSError:
            status = -1
        with lock:
            results[endpoint.name].append((time.monotonic() - start - due, status))

    with ThreadPoolExecutor(threads) as pool:
        start = time.monotonic()
        for due, endpoint in schedule:
            delay = due - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, due, endpoint)
    return results


def report(results, mix: list[Endpoint], queries: dict[str, int]) -> dict[str, float]:
    """Prints the table; returns p99 over all requests and the health check's."""
    print(f"  {'endpoint':26s} {'n':>5s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} "
          f"{'queries':>7s}  statuses")
    every = []
    for endpoint in mix:
        rows = results.get(endpoint.name, [])
        if not rows:
            continue
        ms = [1000 * r[0] for r in rows]
        every += ms
        statuses = defaultdict(int)
        for _, status in rows:
            statuses[status] += 1
        print(f"  {endpoint.name:26s} {len(ms):5d} {percentile(ms, 50):8.1f} "
              f"{percentile(ms, 95):8.1f} {percentile(ms, 99):8.1f} "
              f"{queries.get(endpoint.name, '-'):>7}  "
              + " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
    print(f"  {'all requests':26s} {len(every):5d} {percentile(every, 50):8.1f} "
          f"{percentile(every, 95):8.1f} {percentile(every, 99):8.1f}")
    return {"p99": percentile(every, 99),
            "health p99": percentile([1000 * r[0] for r in results["health"]], 99)}


# The web servers measured one after the other, on the same event and mix.
SERVERS = {
    "before": ("gunicorn -w 2 --threads 4 as before (every worker takes every connection "
               "and queues it), a new database connection per request",
               {"config": False, "workers": 2, "options": ("--threads", "4"),
                "env": {"DATARUN_DB_CONN_MAX_AGE": "0"}}),
    "deployed": ("config/gunicorn.py (a worker per core, 4 threads, a connection taken only "
                 "by a free thread), persistent database connections",
                 {"config": True, "workers": None}),
}


def server_setup(name: str) -> tuple[str, dict]:
    """A name of SERVERS, or wNtM: config/gunicorn.py with N workers of M threads."""
    if name in SERVERS:
        return SERVERS[name]
    workers, _, threads = name.lstrip("w").partition("t")
    if not (workers.isdigit() and threads.isdigit()):
        sys.exit(f"unknown server {name!r}: one of {', '.join(SERVERS)}, or wNtM")
    return (f"config/gunicorn.py with {workers} workers x {threads} threads",
            {"config": True, "workers": int(workers),
             "env": {"DATARUN_WEB_THREADS": threads}})


def saturation(url: str, mix: list[Endpoint]) -> int | None:
    """The last rate of the mix whose p99 stays within 200 ms."""
    print("  saturation (same mix, 15 s per rate; p99 over all endpoints):")
    best = None
    for rate in (50, 100, 150, 200, 300, 400, 600, 800):
        results = drive(url, mix, rate, 15)
        every = [1000 * r[0] for rows in results.values() for r in rows]
        p99 = percentile(every, 99)
        print(f"    {rate:4d} requests/s: p99 {p99:8.1f} ms, health p99 "
              f"{percentile([1000 * r[0] for r in results['health']], 99):7.1f} ms")
        if p99 > 200:
            break
        best = rate
    print(f"    saturation throughput: {best or '< 50'} requests/s "
          f"(the last rate with p99 <= 200 ms)")
    return best


def count_queries(mix: list[Endpoint], world: World, token: str) -> dict[str, int]:
    """SQL statements per request, the same requests made in-process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    participant = Client()
    participant.force_login(world.members[world.teams[7].id])
    out = {}
    for endpoint in mix:
        client = participant if "Cookie" in endpoint.headers else Client()
        extra = {}
        if "Authorization" in endpoint.headers:
            extra["HTTP_AUTHORIZATION"] = endpoint.headers["Authorization"]
        client.get(endpoint.path, **extra)  # warm (the session, the board's ETag)
        if endpoint.conditional:
            etag = client.get(endpoint.path, **extra)["ETag"]
            extra["HTTP_IF_NONE_MATCH"] = etag
        with CaptureQueriesContext(connection) as captured:
            response = client.get(endpoint.path, **extra)
        assert response.status_code in (200, 304), (endpoint.path, response.status_code)
        out[endpoint.name] = len(captured)
    return out


def score_one_more(world: World) -> float:
    """One more submission scored: seconds the read model's update took."""
    from databoard.services.leaderboards import leaderboard_evaluation_scored

    (submission,) = world.add(1)
    t = time.perf_counter()
    leaderboard_evaluation_scored(evaluation_id=submission.evaluation_id)
    return time.perf_counter() - t


def contributivity(world: World) -> None:
    import numpy as np
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from databoard.models import Submission
    from databoard.services.contributivity import contributivity_update
    from datarun import ramp_kits, storage

    trusted = ramp_kits.load_trusted(str(storage.resolve(world.problem.storage_dir)),
                                     world.problem.data_hash)
    truth = trusted.problem.Predictions(y_true=trusted.y_train).y_pred
    rng = np.random.default_rng(0)
    ids = list(Submission.objects.of_event(world.event).values_list("evaluation_id", flat=True))
    t = time.perf_counter()
    for evaluation_id in ids:
        skill = rng.uniform(0.5, 2.0)
        for k in range(len(trusted.folds)):
            logits = skill * truth + rng.normal(size=truth.shape)
            proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            storage.artifact_put(storage.artifact_key(evaluation_id,
                                                      storage.predictions_name(k, "train")),
                                 storage.predictions_bytes(proba))
    print(f"  predictions of {len(ids)} submissions written in {time.perf_counter() - t:.1f} s")
    with CaptureQueriesContext(connection) as captured:
        t = time.perf_counter()
        values = contributivity_update(event_id=world.event.id)
        elapsed = time.perf_counter() - t
    writes = [q for q in captured if q["sql"].startswith('UPDATE "databoard_submission"')]
    write_time = sum(float(q["time"]) for q in writes)
    print(f"  contributivity of {len(values)} submissions: {elapsed:.2f} s, "
          f"{len(captured)} queries ({len(writes)} UPDATE of the submissions, "
          f"{write_time * 1000:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--servers", default="before,deployed",
                        help="web servers to measure in turn: "
                             f"{', '.join(SERVERS)}, or wNtM (N workers x M threads)")
    parser.add_argument("--no-saturation", action="store_true")
    parser.add_argument("--no-contributivity", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    os.environ.setdefault("DATARUN_HOME", tempfile.mkdtemp(prefix="datarun-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from bench.webserver import start_web
    from databoard.services.leaderboards import leaderboard_update

    call_command("migrate", verbosity=0)
    print(f"Building {args.submissions} scored submissions over {args.teams} teams ...")
    t = time.perf_counter()
    world = World(args.submissions, args.teams)
    print(f"  built in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    written = leaderboard_update(event_id=world.event.id)
    print(f"  read model built whole: {written} rows in {time.perf_counter() - t:.2f} s")
    # What autovacuum does after bulk writes in a live database: without
    # statistics the planner takes 10,000 rows for 4 and sorts instead of
    # reading an index.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print("Checking the boards against the full recomputation ...")
    check_rows(world)
    quiet = sorted(score_one_more(world) for _ in range(10))
    print(f"Read model update when one more submission is scored (quiet): "
          f"median {statistics.median(quiet) * 1000:.1f} ms, max {quiet[-1] * 1000:.1f} ms")

    token = Token.objects.create(user=world.admin).key
    session = login_session(world.members[world.teams[7].id])
    mix = endpoints(world, session, "", token)
    queries = count_queries(mix, world, token)
    summary = {}
    for name in args.servers.split(","):
        description, setup = server_setup(name)
        log = Path(tempfile.mkdtemp(prefix="bench-lb-")) / "gunicorn.log"
        proc, url = start_web(log, **setup)
        updates: list[float] = []
        stop = threading.Event()

        def scorer(updates=updates, stop=stop):
            while not stop.wait(10):
                updates.append(score_one_more(world))

        try:
            print(f"\n[{name}] {description}")
            print(f"Open-loop mix at {args.rate:.0f} requests/s for {args.duration:.0f} s "
                  f"(one more submission scored every 10 s):")
            drive(url, mix, args.rate, min(5.0, args.duration))  # warm the workers
            thread = threading.Thread(target=scorer, daemon=True)
            thread.start()
            results = drive(url, mix, args.rate, args.duration)
            stop.set()
            thread.join()
            summary[name] = report(results, mix, queries)
            if updates:
                print(f"  read model updates under load: {len(updates)}, median "
                      f"{statistics.median(updates) * 1000:.1f} ms, "
                      f"max {max(updates) * 1000:.1f} ms")
            if not args.no_saturation:
                summary[name]["saturation"] = saturation(url, mix)
        finally:
            stop.set()
            proc.terminate()
            proc.wait(timeout=30)
    first = next(iter(summary))
    print(f"\nSummary at {args.rate:.0f} requests/s (ratios against {first}, same run):")
    base = summary[first]
    for name, figures in summary.items():
        print(f"  {name:10s} p99 {figures['p99']:8.1f} ms ({base['p99'] / figures['p99']:5.1f}x)"
              f"   health p99 {figures['health p99']:7.1f} ms "
              f"({base['health p99'] / figures['health p99']:5.1f}x)"
              + (f"   saturation {figures.get('saturation') or '< 50'} requests/s"
                 if "saturation" in figures else ""))
    if not args.no_contributivity:
        print("\nContributivity:")
        contributivity(world)


if __name__ == "__main__":
    main()
