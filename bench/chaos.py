"""Chaos benchmark: submissions keep arriving while workers, beat, a web
worker, Redis and PostgreSQL are killed or restarted; then count what was
lost, stuck, duplicated or wrong, and how long the platform took to finish
every evaluation after the last fault.

Everything runs on this machine, started and stopped here: a PostgreSQL
cluster of its own (initdb/pg_ctl, spare port), a Redis of its own (spare
port, no persistence, so that a restart loses every message), gunicorn, two
Celery fold worker nodes (queue ``sandbox``), a scorer node (queue
``scoring``) and beat, with the platform's default timeouts. Before
the faults, each kind of submission runs once without faults: the reference
its scores are compared with.

    python bench/chaos.py                      # 200 submissions, each fault twice
    python bench/chaos.py --ci                 # 40 submissions, each fault once
    python bench/chaos.py --json figures.json  # also write the figures
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
EVENT = "chaos"
FINAL = ("scored", "error", "cancelled")

_ESTIMATOR = """
import time
from sklearn.{module} import {cls}


def get_estimator():
    time.sleep({sleep})
    return {cls}({args})
"""
_FAILING = """
from sklearn.linear_model import LogisticRegression


class Broken(LogisticRegression):
    def fit(self, X, y):
        raise ValueError("this submission fails on purpose")


def get_estimator():
    return Broken()
"""
# name: (estimator.py, the state it must end in); deterministic estimators,
# so that a fault-free run gives the same scores bit for bit.
VARIANTS = {
    "logreg": (_ESTIMATOR.format(module="linear_model", cls="LogisticRegression",
                                 args="max_iter=1000", sleep=0), "scored"),
    "tree": (_ESTIMATOR.format(module="tree", cls="DecisionTreeClassifier",
                               args="random_state=0", sleep=0), "scored"),
    "knn": (_ESTIMATOR.format(module="neighbors", cls="KNeighborsClassifier", args="3",
                              sleep=0), "scored"),
    "slow": (_ESTIMATOR.format(module="linear_model", cls="LogisticRegression",
                               args="max_iter=1000", sleep=1.0), "scored"),
    "failing": (_FAILING, "error"),
}
FAULTS = ("worker_mid_claim", "worker_mid_fold", "scorer", "beat", "web_worker",
          "redis_restart", "postgres_restart")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    if shutil.which(name):
        return shutil.which(name)
    sys.exit(f"{name} not found (install PostgreSQL's server binaries)")


def as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def kill_tree(proc: psutil.Process | subprocess.Popen | int, sig=signal.SIGKILL) -> None:
    """Send ``sig`` to a process and every process under it."""
    try:
        root = psutil.Process(proc if isinstance(proc, int) else proc.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in family:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


class Cluster:
    """The processes of one platform, each started and stopped here."""

    def __init__(self, home: Path, worker_concurrency: int):
        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True)
        self.pgdata = home / "pgdata"
        self.pg_port, self.redis_port, self.web_port = free_port(), free_port(), free_port()
        self.concurrency = worker_concurrency
        self.redis: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.worker_options: dict[str, tuple[str, int, dict | None]] = {}
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/chaos",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "DATARUN_HOME": str(home / "datarun"),
            "DATARUN_API_URL": f"http://127.0.0.1:{self.web_port}",
            "SECRET_KEY": "chaos-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
        }

    # --- PostgreSQL -----------------------------------------------------------
    def start_postgres(self) -> None:
        self.home.chmod(0o755)
        self.pgdata.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.pgdata, "postgres", "postgres")
        subprocess.run(as_postgres([pg_bin("initdb"), "-D", str(self.pgdata), "-A", "trust",
                                    "-U", "postgres", "--no-sync"]),
                       check=True, capture_output=True)
        self._pg_ctl("start")
        subprocess.run(as_postgres([pg_bin("createdb"), "-h", "127.0.0.1", "-p",
                                    str(self.pg_port), "-U", "postgres", "chaos"]), check=True)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (f"-p {self.pg_port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.pgdata} -c fsync=off "
                   "-c max_connections=200")
        subprocess.run(as_postgres([pg_bin("pg_ctl"), action, "-D", str(self.pgdata), "-w",
                                    "-o", options, "-l", str(self.pgdata / "log"), *extra]),
                       check=True, capture_output=True)

    def restart_postgres(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    # --- Redis ----------------------------------------------------------------
    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.home)],
            stdout=open(self.logs / "redis.log", "a"), stderr=subprocess.STDOUT)
        self._wait_port(self.redis_port, "redis")

    def restart_redis(self) -> None:
        """Killed and started again without saving: every message is lost."""
        self.redis.kill()
        self.redis.wait()
        time.sleep(1)
        self.start_redis()

    # --- the platform ---------------------------------------------------------
    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(args, cwd=ROOT, env={**self.env, **(env or {})},
                                start_new_session=True,
                                stdout=open(self.logs / f"{name}.log", "a"),
                                stderr=subprocess.STDOUT)

    def start_web(self, *, deployed: bool = False) -> None:
        """gunicorn; ``deployed``: with the settings every deployment uses
        (config/gunicorn.py) instead of 3 processes of 4 threads."""
        options = (["-c", "python:config.gunicorn"] if deployed
                   else ["-w", "3", "--threads", "4"])
        self.web = self._spawn("web", [
            sys.executable, "-m", "gunicorn", *options, "config.wsgi:application",
            "-b", f"127.0.0.1:{self.web_port}", "--timeout", "60"])
        self._wait_port(self.web_port, "gunicorn")

    def start_worker(self, node: str, queue: str = "sandbox", concurrency: int | None = None,
                     env: dict | None = None) -> None:
        """A worker node reading ``queue`` (folds by default; the scorer's
        is ``scoring``), started again the same way after a fault."""
        self.worker_options[node] = (queue, concurrency or self.concurrency, env)
        self.workers[node] = self._spawn(node, [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue,
            "-c", str(concurrency or self.concurrency), "-n", f"{node}@%h", "-l", "INFO",
            "--without-gossip", "--without-mingle"], env)

    def restart_worker(self, node: str) -> None:
        self.start_worker(node, *self.worker_options[node])

    def wait_worker_ready(self, node: str, timeout: float = 120) -> None:
        log = self.logs / f"{node}.log"
        deadline = time.monotonic() + timeout
        while f"{node}@{socket.gethostname()} ready." not in log.read_text(errors="replace"):
            if self.workers[node].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {node} did not start: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def stop_worker(self, node: str) -> None:
        """Stopped as Celery is asked to stop (SIGTERM), then killed if it lingers."""
        proc = self.workers.pop(node)
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            proc.wait()

    def start_beat(self) -> None:
        self.beat = self._spawn("beat", [
            sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO",
            "-s", str(self.home / "beat-schedule")])

    def _wait_port(self, port: int, what: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not start on port {port}")

    def folds_running_on(self, node: str) -> bool:
        try:
            tree = psutil.Process(self.workers[node].pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return False
        for p in tree:
            try:
                if "workers.harness.forkserver" in " ".join(p.cmdline()) and p.children():
                    return True
            except psutil.NoSuchProcess:
                continue
        return False

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.beat, self.web]:
            if proc is not None:
                kill_tree(proc, signal.SIGTERM)
        time.sleep(2)
        for proc in [*self.workers.values(), self.beat, self.web]:
            if proc is not None:
                kill_tree(proc)
                proc.wait()
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait()
        if (self.pgdata / "postmaster.pid").exists():
            subprocess.run(as_postgres([pg_bin("pg_ctl"), "stop", "-D", str(self.pgdata),
                                        "-m", "immediate"]), capture_output=True)


class Faults:
    """Seeded faults, each logged with the time it ended."""

    def __init__(self, cluster: Cluster, rng: random.Random):
        self.cluster = cluster
        self.rng = rng
        self.done: list[tuple[str, float]] = []

    def inject(self, kind: str) -> None:
        getattr(self, kind)()
        self.done.append((kind, time.monotonic()))
        print(f"  fault: {kind}", flush=True)

    def _restart_node(self, node: str) -> None:
        kill_tree(self.cluster.workers[node])
        self.cluster.workers[node].wait()
        time.sleep(2)
        self.cluster.restart_worker(node)

    def _fold_nodes(self) -> list[str]:
        return sorted(n for n, (queue, *_) in self.cluster.worker_options.items()
                      if queue == "sandbox")

    def worker_mid_claim(self) -> None:
        # Best effort: a node that is not running a fold is taking a message
        # or claiming (prefetch 1, acks late), or idle.
        node = self.rng.choice(self._fold_nodes())
        self._restart_node(node)

    def scorer(self) -> None:
        # Scoring, contributivity or e-mail tasks in hand, or idle.
        self._restart_node("scorer")

    def worker_mid_fold(self) -> None:
        deadline = time.monotonic() + 15
        nodes = self._fold_nodes()
        while time.monotonic() < deadline:
            busy = [n for n in nodes if self.cluster.folds_running_on(n)]
            if busy:
                self._restart_node(self.rng.choice(busy))
                return
            time.sleep(0.05)
        self._restart_node(self.rng.choice(nodes))

    def beat(self) -> None:
        kill_tree(self.cluster.beat)
        self.cluster.beat.wait()
        time.sleep(2)
        self.cluster.start_beat()

    def web_worker(self) -> None:
        children = psutil.Process(self.cluster.web.pid).children()
        if children:
            kill_tree(self.rng.choice(children).pid)

    def redis_restart(self) -> None:
        self.cluster.restart_redis()

    def postgres_restart(self) -> None:
        self.cluster.restart_postgres()


class Participant:
    """Submits over the REST API as a careful client does: one Idempotency-Key
    per submission, sent again after a dropped connection or a 5xx."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token

    def submit(self, name: str, source: str, give_up_after: float = 120) -> dict:
        key = uuid.uuid4().hex
        record = {"name": name, "status": None, "id": None, "error_answers": 0}
        deadline = time.monotonic() + give_up_after
        while time.monotonic() < deadline:
            try:
                response = requests.post(
                    f"{self.url}/api/v1/events/{EVENT}/submissions/",
                    headers={"Authorization": f"Token {self.token}", "Idempotency-Key": key},
                    data={"name": name}, files={"files": ("estimator.py", source.encode())},
                    timeout=30)
            except requests.RequestException:
                record["error_answers"] += 1
                time.sleep(1)
                continue
            record["status"] = response.status_code
            if response.status_code >= 500:
                record["error_answers"] += 1
                time.sleep(1)
                continue
            if response.status_code == 201:
                record["id"] = response.json()["id"]
            return record
        return record


def setup_platform(n_participants: int, event_name: str = EVENT, title: str = "Chaos"
                   ) -> list[str]:
    """Migrate, import the iris kit, open the event (no interval between a
    team's submissions, no daily quota); the participants' tokens."""
    import django
    from django.core.management import call_command

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from databoard.models import Event
    from databoard.services import event_signup
    from datarun import services

    call_command("migrate", verbosity=0)
    services.problem_import_ramp_kit(path=ROOT / "datarun" / "examples" / "iris", name="iris")
    event = Event.objects.create(name=event_name, title=title, problem_name="iris")
    tokens = []
    for i in range(n_participants):
        user = get_user_model().objects.create_user(f"p{i}", password=uuid.uuid4().hex)
        event_signup(event=event, user=user)
        tokens.append(Token.objects.create(user=user).key)
    return tokens


def _db_retry(fn):
    """Read the database, waiting out its restart."""
    from django.db import InterfaceError, OperationalError, close_old_connections

    for _ in range(60):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            close_old_connections()
            from django.db import connection

            connection.close()
            time.sleep(1)
    return fn()


def _states(names: list[str]) -> dict[str, dict]:
    from databoard.models import Submission
    from datarun.models import Evaluation

    subs = list(Submission.objects.filter(team__event__name=EVENT, name__in=names)
                .values("id", "name", "evaluation_id", "contributivity"))
    evaluations = {e["id"]: e for e in Evaluation.objects.filter(
        id__in=[s["evaluation_id"] for s in subs]).values(
            "id", "state", "error_kind", "error_message")}
    return {s["name"]: {**s, **evaluations[s["evaluation_id"]]} for s in subs}


def _scores(evaluation_id: int) -> dict:
    from datarun.models import EvaluationScore

    return {f"{r.score_type.name}/{r.step}": (r.mean, r.bagged) for r in
            EvaluationScore.objects.filter(evaluation_id=evaluation_id).select_related(
                "score_type")}


def _score_difference(reference: dict, got: dict) -> str:
    """The first few (score, step) whose mean or bagged value differs."""
    keys = sorted(set(reference) | set(got))
    diffs = [f"{k} {reference.get(k)} -> {got.get(k)}" for k in keys
             if reference.get(k) != got.get(k)]
    return "; ".join(diffs[:3]) + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")


def _fold_history(evaluation_id: int) -> str:
    """Each fold's state, attempt and valid scores, to tell what a fault did."""
    from datarun.models import FoldRun, FoldScore

    folds = FoldRun.objects.filter(evaluation_id=evaluation_id).order_by("fold_index")
    scores = {}
    for row in FoldScore.objects.filter(fold_run__evaluation_id=evaluation_id, step="valid"
                                        ).values("fold_run_id", "score_type__name", "value"):
        scores.setdefault(row["fold_run_id"], []).append(
            f"{row['score_type__name']}={row['value']}")
    return ", ".join(f"#{f.fold_index} {f.state} a{f.attempt} [{' '.join(scores.get(f.id, []))}]"
                     for f in folds)


def _wait(names: list[str], deadline: float, *, contributivity: bool = False
          ) -> float | None:
    """Wait until every stored submission of ``names`` is final (or, with
    ``contributivity``, until every scored one has its contributivity and no
    update is pending); when it happened, or None at the deadline."""
    from databoard.models import Event

    while time.monotonic() < deadline:
        states = _db_retry(lambda: _states(names))
        if contributivity:
            pending = _db_retry(lambda: Event.objects.filter(
                name=EVENT, contributivity_due_at__isnull=False).exists())
            done = not pending and all(s["contributivity"] is not None
                                       for s in states.values() if s["state"] == "scored")
        else:
            done = all(s["state"] in FINAL for s in states.values())
        if done:
            return time.monotonic()
        time.sleep(0.5)
    return None


def run(*, submissions: int, rate: float, fault_rounds: int, seed: int, bound: float,
        concurrency: int, home: Path) -> dict:
    rng = random.Random(seed)
    cluster = Cluster(home, concurrency)
    try:
        cluster.start_postgres()
        cluster.start_redis()
        os.environ.update({k: cluster.env[k] for k in (
            "DATABASE_URL", "CELERY_BROKER_URL", "DATARUN_HOME", "SECRET_KEY", "DEBUG")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        sys.path.insert(0, str(ROOT))
        tokens = setup_platform(n_participants=10)
        cluster.start_web()
        for node in ("node1", "node2"):
            cluster.start_worker(node)
        cluster.start_worker("scorer", "scoring", 2)
        cluster.start_beat()
        participants = [Participant(cluster.env["DATARUN_API_URL"], t) for t in tokens]

        print("reference run (no faults)...", flush=True)
        reference = {}
        for i, (variant, (source, _)) in enumerate(VARIANTS.items()):
            record = participants[i % len(participants)].submit(f"ref-{variant}", source)
            assert record["id"], record
        ref_names = [f"ref-{v}" for v in VARIANTS]
        if _wait(ref_names, time.monotonic() + 300) is None:
            raise RuntimeError("the fault-free reference run did not finish")
        for name, state in _states(ref_names).items():
            reference[name.removeprefix("ref-")] = (state["state"], _scores(
                state["evaluation_id"]), state["evaluation_id"])

        window = submissions / rate
        kinds = [k for k in FAULTS for _ in range(fault_rounds)]
        rng.shuffle(kinds)
        # Faults spread over the first 80% of the submission window.
        times = sorted(rng.uniform(0.05, 0.8) * window for _ in kinds)
        faults = Faults(cluster, rng)
        plan = [(f"s{i:04d}", rng.choice(list(VARIANTS))) for i in range(submissions)]
        print(f"{submissions} submissions over {window:.0f} s, {len(kinds)} faults...",
              flush=True)

        def inject_all():
            for at, kind in zip(times, kinds, strict=True):
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                faults.inject(kind)

        t0 = time.monotonic()
        injector = threading.Thread(target=inject_all)
        injector.start()
        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = []
            for i, (name, variant) in enumerate(plan):
                time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                futures.append(pool.submit(participants[i % len(participants)].submit, name,
                                           VARIANTS[variant][0]))
            records = [f.result() for f in futures]
        last_sent = time.monotonic()
        injector.join()
        last_fault = max(at for _, at in faults.done)
        names = [name for name, _ in plan]
        all_final_at = _wait(names, last_fault + bound + 180)
        contributivity_at = _wait(names, time.monotonic() + 120, contributivity=True)

        states = _db_retry(lambda: _states(names))
        from datarun.models import RunMetric

        recorded_twice = _db_retry(lambda: _folds_recorded_twice(RunMetric))
        figures = _figures(plan, records, states, reference, recorded_twice)
        figures.update({
            "faults": [k for k, _ in faults.done],
            "recovery_s": None if all_final_at is None else round(all_final_at - last_fault, 1),
            "contributivity_after_s": None if contributivity_at is None or all_final_at is None
            else round(contributivity_at - all_final_at, 1),
            "last_submission_to_final_s": None if all_final_at is None
            else round(all_final_at - last_sent, 1),
            "recovery_bound_s": bound,
            "submission_window_s": round(window, 1),
        })
        return figures
    finally:
        cluster.stop()


def _folds_recorded_twice(run_metric) -> int:
    """Folds whose outcome was recorded twice, plus requests stored twice."""
    from django.db.models import Count

    from databoard.models import Submission

    folds = (run_metric.objects.filter(key="wall_time", fold_run__isnull=False)
             .values("fold_run_id").annotate(n=Count("id")).filter(n__gt=1).count())
    submissions = (Submission.objects.filter(team__event__name=EVENT).values("name")
                   .annotate(n=Count("id")).filter(n__gt=1).count())
    return folds + submissions


def _figures(plan, records, states, reference, recorded_twice) -> dict:
    accepted = [r for r in records if r["status"] == 201]
    refused = [r for r in records if r["status"] is not None and 400 <= r["status"] < 500]
    failed_answer = [r for r in records if r["status"] != 201 and r not in refused]
    variant_of = dict(plan)
    lost = [r["name"] for r in accepted if r["name"] not in states]
    stored_after_error = [r["name"] for r in failed_answer if r["name"] in states]
    counts = {"scored": 0, "participant_error": 0, "problem_error": 0, "platform_error": 0,
              "stuck": 0, "cancelled": 0}
    wrong = []
    for name, s in states.items():
        if s["state"] == "scored":
            counts["scored"] += 1
        elif s["state"] == "error":
            counts[f"{s['error_kind'] or 'platform'}_error"] += 1
        elif s["state"] == "cancelled":
            counts["cancelled"] += 1
        else:
            counts["stuck"] += 1
            continue
        ref_state, ref_scores, ref_id = reference[variant_of[name]]
        if s["state"] == "error" and s["error_kind"] == "platform":
            continue  # counted, never charged: not a wrong result
        if s["state"] != ref_state:
            wrong.append(f"{name}: {s['state']} ({s['error_kind'] or '-'}: "
                         f"{(s.get('error_message') or '')[:200]}), fault-free: {ref_state}")
        elif s["state"] == "scored" and (got := _scores(s["evaluation_id"])) != ref_scores:
            wrong.append(f"{name}: scores differ from the fault-free run's: "
                         f"{_score_difference(ref_scores, got)}; folds: "
                         f"{_fold_history(s['evaluation_id'])}; fault-free folds: "
                         f"{_fold_history(ref_id)}")
    scored = [s for s in states.values() if s["state"] == "scored"]
    with_contributivity = sum(s["contributivity"] is not None for s in scored)
    return {
        "submitted": len(records),
        "accepted": len(accepted),
        "refused_4xx": len(refused),
        "stored": len(states),
        "answered_error_but_stored": len(stored_after_error),
        "client_retries": sum(r["error_answers"] for r in records),
        **counts,
        "lost": len(lost),
        "duplicated": recorded_twice,
        "wrong": len(wrong),
        # Which, and how: in the report and the JSON.
        "wrong_names": wrong[:10],
        "contributivity_coverage": (f"{with_contributivity}/{len(scored)}"),
        "contributivity_complete": with_contributivity == len(scored),
    }


def print_figures(f: dict) -> None:
    rows = [
        ("submissions sent / accepted (201) / refused (4xx)",
         f"{f['submitted']} / {f['accepted']} / {f['refused_4xx']}"),
        ("stored", f["stored"]),
        ("answered error but stored", f["answered_error_but_stored"]),
        ("client retries (connection errors, 5xx)", f["client_retries"]),
        ("scored / participant error / platform error",
         f"{f['scored']} / {f['participant_error']} / {f['platform_error']}"),
        ("cancelled", f["cancelled"]),
        ("stuck", f["stuck"]),
        ("lost", f["lost"]),
        ("duplicated", f["duplicated"]),
        ("wrong (vs the fault-free run)", f["wrong"]),
        ("contributivity (scored submissions with a value)", f["contributivity_coverage"]),
        ("faults", ", ".join(f["faults"])),
        ("last fault -> every evaluation final (s)",
         f"{f['recovery_s']} (bound {f['recovery_bound_s']})"),
        ("last answer to a submission -> every evaluation final (s)",
         f["last_submission_to_final_s"]),
        ("every evaluation final -> contributivity complete (s)", f["contributivity_after_s"]),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for line in f["wrong_names"]:
        print(f"  wrong: {line}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true",
                        help="the short variant: 40 submissions, each fault once")
    parser.add_argument("--submissions", type=int)
    parser.add_argument("--rate", type=float, default=1.0, help="submissions per second")
    parser.add_argument("--fault-rounds", type=int, help="how many times each fault")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--bound", type=float, default=120.0,
                        help="seconds after the last fault by which all must be final")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="fold processes per worker node")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--keep", action="store_true", help="keep the logs and data dir")
    args = parser.parse_args(argv)
    submissions = args.submissions or (40 if args.ci else 200)
    rounds = args.fault_rounds or (1 if args.ci else 2)
    home = Path(tempfile.mkdtemp(prefix="datarun-chaos-"))
    try:
        figures = run(submissions=submissions, rate=args.rate, fault_rounds=rounds,
                      seed=args.seed, bound=args.bound, concurrency=args.concurrency,
                      home=home)
    finally:
        if args.keep:
            print(f"logs and data: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    ok = (figures["lost"] == figures["stuck"] == figures["duplicated"] == figures["wrong"]
          == figures["answered_error_but_stored"] == 0 and figures["contributivity_complete"]
          and figures["recovery_s"] is not None and figures["recovery_s"] <= args.bound)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
