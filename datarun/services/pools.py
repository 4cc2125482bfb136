"""Compute pools: machines an organiser registers, whose runners pull the
pool's folds over HTTPS (the model of GitLab and GitHub self-hosted runners).

A pool's runner token is shown once, at creation or reset, and stored as its
sha256. Resetting it refuses every runner holding the old one within one
heartbeat (fold tokens carry the token's generation) and puts the folds they
were running back in the queue.
"""
import hashlib
import secrets

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from datarun import storage
from datarun.errors import ApplicationError, NotFound, PermissionDenied
from datarun.models import ComputePool, FoldRun, PoolRunner, Problem, ScoreType
from datarun.states import RunState

TOKEN_PREFIX = "drp_"
# What an organiser says of a new pool (pool_create's arguments).
POOL_FIELDS = ("name", "description", "cpus_per_slot", "memory_mb_per_slot", "gpus_per_slot",
               "sandbox", "concurrency")


class InvalidPool(ApplicationError):
    code = "invalid_pool"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _superuser(user) -> None:
    # A pool may be a data owner's machine or a paid GPU box: only superusers
    # see or change pools, from the pages, the API and the admin alike.
    if not getattr(user, "is_superuser", False):
        raise PermissionDenied("only a superuser manages compute pools")


@transaction.atomic
def pool_create(*, user, name: str, description: str = "", cpus_per_slot: float = 1.0,
                memory_mb_per_slot: int = 2048, gpus_per_slot: int = 0,
                sandbox: str = ComputePool.Sandbox.DOCKER, concurrency: int = 1
                ) -> tuple[ComputePool, str]:
    """A new pool and its runner token (the only time the token is shown)."""
    _superuser(user)
    if ComputePool.objects.filter(name=name).exists():
        raise InvalidPool(f"a pool named {name!r} exists already: pick another name")
    token = _new_token()
    pool = ComputePool.objects.create(
        name=name, description=description, cpus_per_slot=cpus_per_slot,
        memory_mb_per_slot=memory_mb_per_slot, gpus_per_slot=gpus_per_slot, sandbox=sandbox,
        concurrency=concurrency, token_hash=_hash(token), token_prefix=token[:12])
    return pool, token


@transaction.atomic
def pool_token_reset(*, pool: ComputePool, user) -> str:
    """Replace the pool's runner token: runners holding the old one are
    refused from their next call, and the folds they were running go back to
    the queue for runners with the new one."""
    _superuser(user)
    pool = ComputePool.objects.select_for_update().get(id=pool.id)
    token = _new_token()
    pool.token_hash = _hash(token)
    pool.token_prefix = token[:12]
    pool.token_generation += 1
    pool.save(update_fields=["token_hash", "token_prefix", "token_generation"])
    for fold_run in FoldRun.objects.select_for_update().filter(
            evaluation__pool=pool, state=RunState.RUNNING):
        # queued_at stays: the fold keeps its place in the queue.
        fold_run.set_state(RunState.QUEUED)
        fold_run.save(update_fields=["state"])
    return token


def pool_for_token(token: str) -> ComputePool | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    return ComputePool.objects.filter(token_hash=_hash(token)).first()


def runner_seen(*, pool: ComputePool, environment: dict) -> None:
    """Remember how a runner of ``pool`` described itself, and when."""
    PoolRunner.objects.update_or_create(
        pool=pool, host=environment["host"],
        defaults={"cpus": environment.get("cpus"), "memory_mb": environment.get("memory_mb"),
                  "gpus": environment.get("gpus", []), "sandbox": environment.get("sandbox", ""),
                  "software": {k: environment.get(k) for k in ("python", "platform", "packages")
                               if k in environment},
                  "last_seen": timezone.now()})


def pools_overview(*, user) -> list[dict]:
    """Every pool with its runners (as they last described themselves) and
    how many of its folds are queued and running."""
    _superuser(user)
    counts = {(row["evaluation__pool"], row["state"]): row["n"] for row in
              FoldRun.objects.filter(state__in=[RunState.QUEUED, RunState.RUNNING])
              .values("evaluation__pool", "state").annotate(n=Count("id"))}
    running_by_host = {(row["evaluation__pool"], row["worker_host"]): row["n"] for row in
                       FoldRun.objects.filter(state=RunState.RUNNING)
                       .values("evaluation__pool", "worker_host").annotate(n=Count("id"))}
    out = []
    for pool in ComputePool.objects.order_by("name").prefetch_related("runners"):
        out.append({
            "name": pool.name, "description": pool.description,
            "cpus_per_slot": pool.cpus_per_slot, "memory_mb_per_slot": pool.memory_mb_per_slot,
            "gpus_per_slot": pool.gpus_per_slot, "sandbox": pool.sandbox,
            "concurrency": pool.concurrency, "token_prefix": pool.token_prefix,
            "created_at": pool.created_at,
            "queued": counts.get((pool.id, RunState.QUEUED), 0),
            "running": counts.get((pool.id, RunState.RUNNING), 0),
            "runners": [{"host": r.host, "cpus": r.cpus, "memory_mb": r.memory_mb,
                         "gpus": r.gpus, "sandbox": r.sandbox, "last_seen": r.last_seen,
                         "running": running_by_host.get((pool.id, r.host), 0)}
                        for r in sorted(pool.runners.all(), key=lambda r: r.host)],
        })
    return out


def pool_get(name: str) -> ComputePool:
    try:
        return ComputePool.objects.get(name=name)
    except ComputePool.DoesNotExist:
        raise NotFound(f"no compute pool named {name!r}") from None


def runner_commands(*, base_url: str, pool: ComputePool, token: str) -> dict:
    """The one line that starts a runner of ``pool`` on another machine: with
    the project installed, and as a container of the project's image."""
    args = (f"--url {base_url} --token {token} --sandbox {pool.sandbox} "
            f"--slots {pool.concurrency} --name \"$(hostname)\"")
    return {
        "shell": f"datarun runner {args}",
        "docker": ("docker run -d --restart unless-stopped --init "
                   f"--name datarun-runner-{pool.name} "
                   "-v /var/run/docker.sock:/var/run/docker.sock "
                   "-v /var/lib/datarun-runner:/var/lib/datarun-runner "
                   "-e DATARUN_RUNNER_HOME=/var/lib/datarun-runner "
                   f"datarun-web:0.1.0 datarun runner {args}"),
    }


@transaction.atomic
def problem_register_on_pool(*, pool: ComputePool, name: str, title: str,
                             workflow_elements: list[str], prediction_shape: list[int],
                             n_train: int, n_test: int, n_folds: int, data_hash: str,
                             folds_hash: str, score_types: list[dict],
                             fold_inputs: list[dict], starting_kit: dict[str, bytes]) -> Problem:
    """Register a problem prepared on one of ``pool``'s machines (``datarun
    runner prepare``): its metadata, hashes and score types, and the starting
    kit files its owner publishes; never its data. Registering the same name
    again from the same pool replaces it while it has no evaluations."""
    existing = Problem.objects.select_for_update().filter(name=name).first()
    if existing is not None:
        if existing.pool_id != pool.id:
            raise InvalidPool(f"a problem named {name!r} exists already and is not this "
                              "pool's: pick another name")
        if existing.evaluations.exists():
            raise InvalidPool(f"problem {name!r} already has evaluations: register the new "
                              "data under a new name")
        existing.delete()
    if len(fold_inputs) != n_folds:
        raise InvalidPool(f"{n_folds} folds but {len(fold_inputs)} sets of fold inputs")
    relative = f"problems/{name}/pool-{data_hash[:16]}-{folds_hash[:16]}"
    kit = storage.resolve(relative) / "kit"
    for path in starting_kit:
        # Only the starting kit's own files and the README: never data.
        if not (path == "README.md" or (path.startswith("submissions/starting_kit/")
                                        and path.count("/") == 2
                                        and path.rsplit("/", 1)[1] not in ("", ".", ".."))):
            raise InvalidPool(f"{path!r} is not a starting kit file: publish only "
                              "submissions/starting_kit/<file> and README.md")
    for path, data in starting_kit.items():
        target = kit / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    problem = Problem.objects.create(
        name=name, title=title, storage_dir=relative, workflow_elements=workflow_elements,
        prediction_shape=prediction_shape, n_train=n_train, n_test=n_test, n_folds=n_folds,
        data_hash=data_hash, folds_hash=folds_hash, pool=pool, fold_inputs=fold_inputs)
    ScoreType.objects.bulk_create(
        ScoreType(problem=problem, index=i, **{k: st[k] for k in (
            "name", "is_lower_the_better", "precision", "minimum", "maximum")})
        for i, st in enumerate(score_types))
    return problem
