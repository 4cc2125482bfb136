"""Compute pools on the trusted side: tokens kept hashed, fair claims,
GPU needs, reset tokens, the admin."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from datarun import services
from datarun.errors import PermissionDenied
from datarun.models import ComputePool, FoldRun
from datarun.services.fold_runs import FoldTokenInvalid, fold_token_check
from tests.conftest import EXAMPLES, superuser

pytestmark = pytest.mark.django_db

ESTIMATOR = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()
RUNNER = {"host": "site-1", "sandbox": "local"}


@pytest.fixture
def problem():
    return services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-pools")


def test_a_pool_token_is_shown_once_and_kept_only_as_its_hash(problem):
    pool, token = services.pool_create(user=superuser(), name="site", sandbox="local")
    assert token.startswith("drp_") and len(token) > 40
    assert token not in str(ComputePool.objects.filter(id=pool.id).values().first())
    assert services.pool_for_token(token) == pool
    assert services.pool_for_token(token[:-1] + "x") is None


def test_only_superusers_see_create_or_reset_pools_whoever_calls_the_service(problem):
    organiser = get_user_model().objects.create_user("organiser", is_staff=True)
    with pytest.raises(PermissionDenied, match="only a superuser"):
        services.pool_create(user=organiser, name="site", sandbox="local")
    assert not ComputePool.objects.exists()
    pool, _ = services.pool_create(user=superuser(), name="site", sandbox="local")
    for call in (lambda: services.pools_overview(user=organiser),
                 lambda: services.pool_token_reset(pool=pool, user=organiser)):
        with pytest.raises(PermissionDenied):
            call()
    assert [p["name"] for p in services.pools_overview(user=superuser())] == ["site"]


def test_claims_serve_teams_in_turn_and_oldest_first(problem):
    pool, _ = services.pool_create(user=superuser(), name="site", sandbox="local")
    # Team a submits three times, then team b once: b's first fold runs before
    # a's second submission.
    a = [services.evaluation_create(problem=problem, files={"estimator.py": ESTIMATOR},
                                    pool=pool, owner="team:a") for _ in range(3)]
    b = services.evaluation_create(problem=problem, files={"estimator.py": ESTIMATOR},
                                   pool=pool, owner="team:b")
    order = []
    for _ in range(4):
        ticket = services.fold_run_claim_next(pool=pool, environment=RUNNER)
        order.append(("b" if ticket.evaluation_id == b.id else "a", ticket.fold_index))
        assert ticket.evaluation_id in {b.id, a[0].id}
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    # Folds of the built-in pool are not the pool's, and the other way round.
    builtin = services.evaluation_create(problem=problem, files={"estimator.py": ESTIMATOR})
    ticket = services.fold_run_claim_next(pool=pool, environment=RUNNER)
    assert ticket.evaluation_id != builtin.id
    pooled = FoldRun.objects.filter(evaluation=a[2]).first()
    assert services.fold_run_claim(fold_run_id=pooled.id, environment=RUNNER) is None


def test_folds_needing_gpus_wait_for_a_runner_offering_them(problem):
    pool, _ = services.pool_create(user=superuser(), name="gpu", sandbox="docker", gpus_per_slot=1)
    services.evaluation_create(problem=problem, files={"estimator.py": ESTIMATOR},
                               limits={"gpus": 2}, pool=pool)
    one_gpu = {**RUNNER, "gpus": [{"name": "T4", "memory_mb": 15360}]}
    assert services.fold_run_claim_next(pool=pool, environment=RUNNER) is None
    assert services.fold_run_claim_next(pool=pool, environment=one_gpu) is None
    two = {**RUNNER, "gpus": [{"name": "T4", "memory_mb": 15360}] * 2}
    assert services.fold_run_claim_next(pool=pool, environment=two).limits["gpus"] == 2


def test_a_reset_token_voids_the_fold_tokens_issued_under_the_old_one(problem):
    pool, _ = services.pool_create(user=superuser(), name="site", sandbox="local")
    services.evaluation_create(problem=problem, files={"estimator.py": ESTIMATOR}, pool=pool)
    ticket = services.fold_run_claim_next(pool=pool, environment=RUNNER)
    assert fold_token_check(token=ticket.token, fold_run_id=ticket.fold_run_id) == 1
    services.pool_token_reset(pool=pool, user=superuser())
    with pytest.raises(FoldTokenInvalid, match="was reset"):
        fold_token_check(token=ticket.token, fold_run_id=ticket.fold_run_id)
    assert FoldRun.objects.get(id=ticket.fold_run_id).state == "queued"


def test_superusers_create_a_pool_in_the_admin_and_see_its_token_once():
    root = get_user_model().objects.create_superuser("root", password="pw-root-1234")
    client = Client()
    client.force_login(root)
    response = client.post("/admin/datarun/computepool/add/", {
        "name": "lab", "description": "", "cpus_per_slot": 2, "memory_mb_per_slot": 4096,
        "gpus_per_slot": 0, "sandbox": "docker", "concurrency": 2}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("Runner token of lab (shown once)" in m for m in shown), shown
    token = next(m for m in shown if "drp_" in m).split("<code>")[1].split("</code>")[0]
    assert services.pool_for_token(token).name == "lab"


def _registration(**overrides) -> dict:
    digest = "a" * 64
    inputs = {n: digest for n in ("problem.py", "X_train.pkl", "y_train.pkl", "X_test.pkl",
                                  "fold.npz", "kit_files.zip")}
    return {"name": "clinic", "title": "Clinic", "workflow_elements": ["estimator"],
            "prediction_shape": [2], "n_train": 90, "n_test": 30, "n_folds": 2,
            "data_hash": digest, "folds_hash": digest,
            "score_types": [{"name": "auc", "is_lower_the_better": False, "precision": 3,
                             "minimum": 0.0, "maximum": 1.0}],
            "fold_inputs": [inputs, inputs], **overrides}


@pytest.mark.parametrize("overrides, message", [
    ({"starting_kit": {"submissions/starting_kit/estimator.py": "not base64!"}}, "base64"),
    ({"starting_kit": {"data/train.csv": "eA=="}}, "is not a starting kit file"),
    ({"fold_inputs": [{}]}, "each fold names the inputs"),
    ({"n_folds": 3}, "3 folds but 2 sets of fold inputs"),
    ({"data_hash": "not-a-hash"}, "data_hash"),
])
def test_a_malformed_problem_registration_is_refused_and_creates_nothing(overrides, message):
    from rest_framework.test import APIClient

    _, token = services.pool_create(user=superuser(), name="site", sandbox="local")
    client = APIClient()
    answer = client.post("/api/v1/runner/problems/", _registration(**overrides), format="json",
                         HTTP_AUTHORIZATION=f"Runner {token}")
    assert answer.status_code == 400, answer.json()
    assert message in answer.json()["error"]["message"]
    from datarun.models import Problem

    assert not Problem.objects.filter(name="clinic").exists()
    ok = client.post("/api/v1/runner/problems/", _registration(), format="json",
                     HTTP_AUTHORIZATION=f"Runner {token}")
    assert ok.status_code == 201 and Problem.objects.get(name="clinic").pool.name == "site"
