"""Compute pools with real runner processes started the way the README says
(`datarun runner --url ... --token ...`), with no database and no storage:
two events on two pools, a runner killed mid-fold, a token reset mid-run,
folds that need a GPU."""
import hashlib
import os
import time

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from databoard.models import Event, Submission
from datarun import services
from datarun.models import FoldRun, FoldScore, RunLogLine
from tests.conftest import EXAMPLES, superuser
from tests.integration.helpers import make_event, participant, submit, wait_final
from tests.integration.runners import Runner

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

IRIS = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()
DIABETES = (EXAMPLES / "diabetes" / "submissions" / "starting_kit" / "estimator.py").read_text()
# The starting kit, slowed down so that a fold is still running when the test
# acts on it.
SLOW_IRIS = """
import time

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class SlowLogisticRegression(LogisticRegression):
    def fit(self, X, y):
        time.sleep(3)
        return super().fit(X, y)


def get_estimator():
    return make_pipeline(StandardScaler(), SlowLogisticRegression(max_iter=1000))
"""


@pytest.fixture
def runners(live_server_process, celery_worker_process, tmp_path):
    """Start runners with ``runners(token, name, *options)``; all stopped at the end."""
    started: list[Runner] = []

    def start(token: str, name: str, *extra: str) -> Runner:
        runner = Runner(live_server_process.url, token, name, tmp_path / name, *extra)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()


def superuser_client() -> APIClient:
    admin = get_user_model().objects.filter(username="root").first() or \
        get_user_model().objects.create_superuser("root", password="pw-root-1234")
    client = APIClient()
    client.force_authenticate(admin)
    return client


def pool_event(kit: str, event: str, pool: str, **pool_fields) -> str:
    """An event on ``kit`` whose folds run on a new pool; the pool's token."""
    make_event(EXAMPLES / kit, event, min_submission_interval_s=0)
    answer = superuser_client().post("/api/v1/pools/", {"name": pool, **pool_fields},
                                     format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["commands"]["shell"].startswith("datarun runner --url http")
    token = answer.json()["token"]
    put = superuser_client().put(f"/api/v1/events/{event}/pool/",
                                          {"pool": pool, "fold_gpus": pool_fields.get(
                                              "gpus_per_slot") or None}, format="json")
    assert put.status_code == 200, put.json()
    return token


def signed_up_as(event: str, username: str) -> APIClient:
    client = participant(username)
    assert client.post(f"/api/v1/events/{event}/signup/").status_code == 201
    return client


def fold_scores(submission_id: int) -> dict:
    evaluation_id = Submission.objects.get(id=submission_id).evaluation_id
    return {(s.fold_run.fold_index, s.score_type.name, s.step): s.value
            for s in FoldScore.objects.filter(fold_run__evaluation_id=evaluation_id)
            .select_related("fold_run", "score_type")}


def hosts(submission_id: int) -> set[str]:
    evaluation_id = Submission.objects.get(id=submission_id).evaluation_id
    return set(FoldRun.objects.filter(evaluation_id=evaluation_id)
               .values_list("worker_host", flat=True))


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_events_on_two_pools_are_scored_by_their_own_runners(runners):
    token_a = pool_event("iris", "iris-a", "pool-a", sandbox="local")
    token_b = pool_event("diabetes", "diabetes-b", "pool-b", sandbox="local")
    runner_a = runners(token_a, "runner-a")
    runner_b = runners(token_b, "runner-b")
    alice = signed_up_as("iris-a", "alice")
    bob = signed_up_as("diabetes-b", "bob")
    on_a = submit(alice, "iris-a", "a1", {"estimator.py": IRIS})["id"]
    on_b = submit(bob, "diabetes-b", "b1", {"estimator.py": DIABETES})["id"]
    for client, sid, runner in ((alice, on_a, runner_a), (bob, on_b, runner_b)):
        detail = wait_final(client, sid, timeout=180)
        assert detail["state"] == "scored", (detail, runner.log())
    assert hosts(on_a) == {"runner-a"} and hosts(on_b) == {"runner-b"}
    # The pool page's figures: each runner as it described itself.
    pools = {p["name"]: p for p in superuser_client().get("/api/v1/pools/").json()["results"]}
    assert [r["host"] for r in pools["pool-a"]["runners"]] == ["runner-a"]
    assert pools["pool-a"]["runners"][0]["cpus"] == float(os.cpu_count())

    # The same code on the platform's own workers gives the same numbers.
    Event.objects.filter(name="iris-a").update(pool=None)
    again = submit(alice, "iris-a", "a2", {"estimator.py": IRIS})["id"]
    assert wait_final(alice, again, timeout=180)["state"] == "scored"
    assert "runner-a" not in hosts(again)
    assert fold_scores(again) == fold_scores(on_a)


def test_a_runner_killed_mid_fold_is_replaced_by_another(runners):
    token = pool_event("iris", "iris-kill", "pool-kill", sandbox="local")
    first = runners(token, "runner-first")
    alice = signed_up_as("iris-kill", "alice")
    sid = submit(alice, "iris-kill", "slow", {"estimator.py": SLOW_IRIS})["id"]
    evaluation_id = Submission.objects.get(id=sid).evaluation_id
    killed = wait_for(lambda: FoldRun.objects.filter(
        evaluation_id=evaluation_id, state="running", worker_host="runner-first").first(),
        90, "runner-first to run a fold")
    first.kill()
    runners(token, "runner-second")
    detail = wait_final(alice, sid, timeout=240)
    assert detail["state"] == "scored", (detail.get("error"), detail.get("folds"))
    killed.refresh_from_db()
    assert (killed.state, killed.attempt, killed.worker_host) == (
        "scored", 2, "runner-second")


def test_a_reset_token_stops_its_runner_and_the_fold_goes_back_to_the_queue(runners):
    token = pool_event("iris", "iris-revoke", "pool-revoke", sandbox="local")
    old = runners(token, "runner-old")
    alice = signed_up_as("iris-revoke", "alice")
    sid = submit(alice, "iris-revoke", "slow", {"estimator.py": SLOW_IRIS})["id"]
    evaluation_id = Submission.objects.get(id=sid).evaluation_id
    fold = wait_for(lambda: FoldRun.objects.filter(
        evaluation_id=evaluation_id, state="running").first(), 90, "a running fold")
    reset = superuser_client().post("/api/v1/pools/pool-revoke/token/")
    assert reset.status_code == 200
    fold.refresh_from_db()
    assert fold.state == "queued"
    # Its runner is refused from its next call and stops (exit status 3).
    wait_for(lambda: old.proc.poll() is not None, 60, "the old runner to stop")
    assert old.proc.returncode == 3, old.log()
    assert "refused this runner" in old.log()
    runners(reset.json()["token"], "runner-new")
    assert wait_final(alice, sid, timeout=240)["state"] == "scored"
    fold.refresh_from_db()
    assert fold.worker_host == "runner-new" and fold.attempt == 2


PRINT_GPUS = """
import os

print("visible GPUs:", repr(os.environ.get("CUDA_VISIBLE_DEVICES")))
"""


def test_folds_needing_a_gpu_go_only_to_runners_offering_one(runners):
    token = pool_event("iris", "iris-gpu", "pool-gpu", sandbox="local", gpus_per_slot=1)
    runners(token, "cpu-only", "--gpu", "none")
    alice = signed_up_as("iris-gpu", "alice")
    sid = submit(alice, "iris-gpu", "needs-gpu", {"estimator.py": IRIS + PRINT_GPUS})["id"]
    evaluation_id = Submission.objects.get(id=sid).evaluation_id
    wait_for(lambda: services.pools_overview(user=superuser())[0]["runners"], 60,
             "the CPU runner to poll")
    time.sleep(3)
    assert set(FoldRun.objects.filter(evaluation_id=evaluation_id)
               .values_list("state", flat=True)) == {"queued"}
    # Two slots sharing two GPUs: each slot holds one, and a fold sees only
    # the device its slot gave it.
    runners(token, "with-gpu", "--slots", "2", "--gpu", "Test GPU:16384",
            "--gpu", "Test GPU:16384")
    assert wait_final(alice, sid, timeout=180)["state"] == "scored"
    assert hosts(sid) == {"with-gpu"}
    fold = FoldRun.objects.filter(evaluation_id=evaluation_id).first()
    assert fold.environment["gpus"] == [{"name": "Test GPU", "memory_mb": 16384}] * 2
    seen = {line.text for line in RunLogLine.objects.filter(
        fold_run__evaluation_id=evaluation_id, text__startswith="visible GPUs:")}
    assert seen and seen <= {"visible GPUs: '0'", "visible GPUs: '1'"}, seen
    # A fold that needs no GPU sees none, on a runner that has some.
    cpu_event = pool_event("diabetes", "diabetes-cpu", "pool-cpu", sandbox="local")
    runners(cpu_event, "gpu-box", "--gpu", "Test GPU:16384")
    bob = signed_up_as("diabetes-cpu", "bob")
    cpu_sid = submit(bob, "diabetes-cpu", "no-gpu",
                     {"estimator.py": DIABETES + PRINT_GPUS})["id"]
    assert wait_final(bob, cpu_sid, timeout=180)["state"] == "scored"
    cpu_evaluation = Submission.objects.get(id=cpu_sid).evaluation_id
    assert {line.text for line in RunLogLine.objects.filter(
        fold_run__evaluation_id=cpu_evaluation, text__startswith="visible GPUs:")} == \
        {"visible GPUs: ''"}


def test_a_runner_builds_the_environment_of_a_problem_that_has_one(runners, tmp_path):
    """A pool runner (no database, no shared disk) given folds of a problem
    with its own environment fetches the lock and the package files over the
    runner API, checks their hashes, builds the venv in its home once, and
    runs the folds in it; the next submission reuses it."""
    from datarun.environments import READY_MARKER
    from datarun.models import Problem
    from tests.conformance.test_corpus import _kit
    from tests.conformance.test_environments import wait_prepared
    from tests.integration.test_cli_test_parity import starting_kit_files

    kit_dir = _kit("pinned_environment", tmp_path / "kits")
    make_event(kit_dir, "pinned-pool", min_submission_interval_s=0)
    environment = wait_prepared(Problem.objects.get(name="pinned-pool"))
    answer = superuser_client().post("/api/v1/pools/", {"name": "pool-env", "sandbox": "local"},
                                     format="json")
    token = answer.json()["token"]
    assert superuser_client().put("/api/v1/events/pinned-pool/pool/", {
        "pool": "pool-env", "fold_gpus": None}, format="json").status_code == 200

    # The endpoints: the runner's token only, and only files a lock names.
    locked = environment.packages[0]
    runner_api = APIClient()
    assert runner_api.get(f"/api/v1/runner/wheels/{locked['sha256']}").status_code == 401
    runner_api.credentials(HTTP_AUTHORIZATION=f"Runner {token}")
    wheel = runner_api.get(f"/api/v1/runner/wheels/{locked['sha256']}")
    assert wheel.status_code == 200
    assert hashlib.sha256(b"".join(wheel.streaming_content)).hexdigest() == locked["sha256"]
    assert runner_api.get(f"/api/v1/runner/wheels/{'0' * 64}").status_code == 404
    lock = runner_api.get(f"/api/v1/runner/environments/{environment.lock_hash}/").json()
    assert lock["python"] == environment.python and lock["packages"] == environment.packages

    runner = runners(token, "runner-env")
    alice = signed_up_as("pinned-pool", "alice")
    files = starting_kit_files(kit_dir)
    first = submit(alice, "pinned-pool", "e1", files)["id"]
    detail = wait_final(alice, first, timeout=900)  # the runner's build included
    assert detail["state"] == "scored", (detail, runner.log())
    assert hosts(first) == {"runner-env"}
    evaluation_id = Submission.objects.get(id=first).evaluation_id
    assert all("pandas 2.2.3, scikit-learn 1.5.2" in f.stdout
               for f in FoldRun.objects.filter(evaluation_id=evaluation_id))
    home = tmp_path / "runner-env" / "environments"
    marker = home / environment.lock_hash / READY_MARKER
    assert marker.is_file()
    assert {p["filename"] for p in environment.packages} <= {
        p.name for p in (home / "wheels").iterdir()}
    built_at = marker.stat().st_mtime_ns
    assert f"environment {environment.lock_hash[:12]} built in" in runner.log()

    second = submit(alice, "pinned-pool", "e2", files)["id"]
    assert wait_final(alice, second, timeout=300)["state"] == "scored", runner.log()
    assert marker.stat().st_mtime_ns == built_at  # reused, not built again
    assert fold_scores(second) == fold_scores(first)
