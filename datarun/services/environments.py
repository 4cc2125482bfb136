"""Problems' runtime environments: declaring, building, preparing, pruning.

A problem that declares packages gets a :class:`RuntimeEnvironment` (one per
distinct lock, see :mod:`datarun.environments`). Declaring resolves the lock
at once (a bad requirement is refused before anything is created); building
runs in the background (``datarun.tasks.build_environment``), and then the
kit's data is prepared again by its own code in that environment. Until
then, the problem's submissions are refused with the build's state.
"""
import logging
import shutil
import time
from pathlib import Path

from celery import current_app as celery_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datarun import environments, storage
from datarun.environments import EnvironmentError_, Lock, PipSource
from datarun.errors import EnvironmentNotReady, InvalidEnvironment, InvalidKit, NotFound
from datarun.models import Evaluation, Problem, RuntimeEnvironment

logger = logging.getLogger(__name__)

BUILD_TASK = "datarun.tasks.build_environment"
State = RuntimeEnvironment.State


def pip_source() -> PipSource:
    return PipSource(index_url=settings.DATARUN_ENV_INDEX_URL,
                     find_links=tuple(settings.DATARUN_ENV_FIND_LINKS))


def environment_dir(lock_hash: str) -> Path:
    return settings.DATARUN_ENVIRONMENTS_DIR / lock_hash


def environment_resolve(*, requirements: str) -> Lock:
    """The lock of ``requirements``, or :class:`InvalidEnvironment` naming
    the package and pip's reason (nothing is created either way)."""
    try:
        return environments.resolve(requirements, pip_source())
    except EnvironmentError_ as exc:
        raise InvalidEnvironment(f"the problem's environment: {exc.message}") from exc


def kit_declared_requirements(kit_dir: Path) -> str:
    try:
        return environments.kit_requirements(kit_dir)
    except EnvironmentError_ as exc:
        raise InvalidKit(exc.message) from exc


def environment_for_lock(lock: Lock) -> RuntimeEnvironment:
    """The environment of ``lock`` (made, queued, if new); call in a transaction."""
    environment, _ = RuntimeEnvironment.objects.get_or_create(
        lock_hash=lock.hash,
        defaults={"requirements": lock.requirements, "packages": lock.as_json(),
                  "python": lock.python})
    return environment


def environment_queue_build(environment: RuntimeEnvironment) -> None:
    """Send the build (or, when built, the preparation of its problems) after commit."""
    environment_id = environment.id
    transaction.on_commit(lambda: celery_app.send_task(BUILD_TASK, args=[environment_id],
                                                      queue="scoring"))


def _lock_of(environment: RuntimeEnvironment) -> Lock:
    return Lock.from_json(environment.requirements, environment.packages, environment.python)


def environment_build(*, environment_id: int) -> RuntimeEnvironment:
    """Build the environment if it is not built, then prepare the kits of
    the problems waiting on it. Idempotent; a build already running elsewhere
    is left to finish."""
    with transaction.atomic():
        environment = RuntimeEnvironment.objects.select_for_update().get(id=environment_id)
        built = environments.venv_python(settings.DATARUN_ENVIRONMENTS_DIR,
                                         environment.lock_hash) is not None
        now = timezone.now()
        if environment.state == State.BUILDING and environment.build_started_at and (
                now - environment.build_started_at).total_seconds() \
                < settings.DATARUN_ENV_BUILD_TIMEOUT_S:
            return environment  # another worker is building it
        if not (environment.state == State.READY and built):
            environment.state = State.BUILDING
            environment.error = ""
            environment.build_started_at = now
            environment.log = f"{now:%Y-%m-%d %H:%M:%S} building\n"
            environment.save(update_fields=["state", "error", "log", "build_started_at"])
            built = False
    if not built:
        environment = _build(environment)
    if environment.state == State.READY:
        for problem in Problem.objects.filter(environment=environment).exclude(
                environment_prepared=environment.lock_hash):
            problem_environment_prepare(problem_id=problem.id)
    return environment


def _build(environment: RuntimeEnvironment) -> RuntimeEnvironment:
    lock = _lock_of(environment)
    target = environment_dir(environment.lock_hash)
    started = time.monotonic()
    log = [environment.log]
    try:
        log.append(environments.download(lock, settings.DATARUN_ENV_WHEELS_DIR, pip_source()))
        log.append(environments.build_venv(lock, target, settings.DATARUN_ENV_WHEELS_DIR))
    except EnvironmentError_ as exc:
        log.append(exc.log)
        environment.state, environment.error = State.FAILED, exc.message
        logger.warning("environment %s failed to build: %s", environment, exc.message)
    except Exception as exc:  # noqa: BLE001 - recorded for the organiser, then raised
        environment.state = State.FAILED
        environment.error = f"the build failed: {type(exc).__name__}: {exc}"
        _save_build(environment, log)
        raise
    else:
        environment.state = State.READY
        environment.size_bytes = environments.folder_bytes(target)
        environment.build_seconds = time.monotonic() - started
        environment.built_at = timezone.now()
        log.append(f"built in {environment.build_seconds:.1f} s, "
                   f"{environment.size_bytes / 2**20:.0f} MiB\n")
    _save_build(environment, log)
    return environment


def _save_build(environment: RuntimeEnvironment, log: list[str]) -> None:
    environment.log = "".join(log)[-200_000:]
    environment.save(update_fields=["state", "error", "log", "size_bytes", "build_seconds",
                                    "built_at"])


def problem_environment_prepare(*, problem_id: int) -> Problem:
    """Make the problem's prepared inputs again with its kit's own code in
    its environment, then queue its starting kit if it waits for that."""
    problem = Problem.objects.select_related("environment").get(id=problem_id)
    environment = problem.environment
    python = environments.venv_python(settings.DATARUN_ENVIRONMENTS_DIR,
                                      environment.lock_hash)
    prepared = storage.resolve(problem.storage_dir)
    staging = prepared / ".environment-staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        summary = environments.prepare_in_environment(python, prepared / "kit", staging,
                                                      public=problem.pool_id is None)
    except EnvironmentError_ as exc:
        shutil.rmtree(staging, ignore_errors=True)
        with transaction.atomic():
            environment = RuntimeEnvironment.objects.select_for_update().get(id=environment.id)
            environment.log += f"\nproblem {problem.name}: {exc.message}\n{exc.log[-20000:]}"
            environment.error = f"problem {problem.name}: {exc.message}"
            environment.save(update_fields=["log", "error"])
        return problem
    with transaction.atomic():
        problem = Problem.objects.select_for_update().get(id=problem_id)
        if problem.environment_id != environment.id or Evaluation.objects.filter(
                problem=problem).exists():
            # Changed meanwhile, or its runs' inputs are these files: left as they are.
            shutil.rmtree(staging, ignore_errors=True)
            return problem
        problem.data_hash, problem.folds_hash = environments.install_prepared(prepared, staging)
        problem.n_train, problem.n_test = summary["n_train"], summary["n_test"]
        problem.n_folds = summary["n_folds"]
        problem.prediction_shape = summary["prediction_shape"]
        problem.environment_prepared = environment.lock_hash
        pending, problem.starting_kit_pending = problem.starting_kit_pending, False
        problem.save()
        environment = RuntimeEnvironment.objects.select_for_update().get(id=environment.id)
        environment.log += (f"\nproblem {problem.name}: data prepared in the environment in "
                            f"{summary['seconds']:.1f} s with "
                            + ", ".join(f"{k} {v}" for k, v in summary["packages"].items())
                            + "\n" + "".join(
                                f"  the starting kit's {name} does not import there: {error}\n"
                                for name, error in summary["starting_kit_import_errors"].items()))
        environment.save(update_fields=["log"])
    if pending:
        from datarun.services.problems import starting_kit_evaluate

        starting_kit_evaluate(problem=problem, started_by="")
    return problem


def problem_check_environment(problem: Problem) -> None:
    """Refuse runs of a problem whose environment is not ready to run them."""
    if problem.environment_id is None:
        return
    environment = problem.environment
    if problem.environment_prepared == environment.lock_hash:
        return
    if environment.state == State.FAILED:
        raise EnvironmentNotReady(f"problem {problem.name!r}'s environment failed to build "
                                  f"({environment.error}); an organiser must fix it")
    if environment.state == State.READY and environment.error:
        raise EnvironmentNotReady(f"problem {problem.name!r}'s data could not be prepared in "
                                  f"its environment ({environment.error})")
    if environment.state == State.READY:
        raise EnvironmentNotReady(f"problem {problem.name!r}'s environment is built and its "
                                  "data is being prepared in it: submissions open in a moment")
    raise EnvironmentNotReady(f"problem {problem.name!r}'s environment is "
                              f"{environment.state}: submissions open once it is built")


def problem_environment_set(*, problem: Problem, requirements: str) -> Problem:
    """An organiser's edit: the problem's packages (empty: the shared
    runtime). Refused once runs of the problem exist, since their inputs were
    made in the environment they record."""
    lock = environment_resolve(requirements=requirements) if requirements.strip() else None
    with transaction.atomic():
        problem = Problem.objects.select_for_update().get(id=problem.id)
        if Evaluation.objects.filter(problem=problem).exists():
            raise InvalidKit(f"problem {problem.name!r} already has runs, whose inputs were "
                             "made in its environment: import the kit under a new name")
        if lock is None:
            if problem.environment_id is not None:
                raise InvalidKit("a problem's data prepared in its own environment cannot go "
                                 "back to the shared runtime: import the kit again")
            return problem
        environment = environment_for_lock(lock)
        problem.environment = environment
        problem.environment_prepared = ""
        problem.save(update_fields=["environment", "environment_prepared"])
        environment_queue_build(environment)
    return problem


def environment_for_runner(*, lock_hash: str) -> RuntimeEnvironment:
    """The environment a runner builds for a fold's ``ticket.environment``
    (a runner with no shared disk: its lock, then its wheels by sha256)."""
    environment = RuntimeEnvironment.objects.filter(lock_hash=lock_hash).first()
    if environment is None or environment.state != State.READY:
        raise NotFound(f"no built environment {lock_hash[:12]}")
    return environment


def environment_wheel_path(*, sha256: str) -> Path:
    """The file of the kept wheel folder with this sha256, when a lock names
    it (nothing else of the folder is served)."""
    for packages in RuntimeEnvironment.objects.filter(state=State.READY).values_list(
            "packages", flat=True):
        for package in packages:
            if package["sha256"] == sha256:
                path = settings.DATARUN_ENV_WHEELS_DIR / Path(package["filename"]).name
                if environments.file_has_hash(path, sha256):
                    return path
    raise NotFound(f"no locked file with sha256 {sha256[:12]} in the wheel folder")


def environments_prune(*, dry_run: bool = False) -> list[RuntimeEnvironment]:
    """Remove the environments no problem uses (their venv, their Docker
    images on this machine, and their record)."""
    unused = list(RuntimeEnvironment.objects.filter(problems__isnull=True)
                  .exclude(state=State.BUILDING))
    if not dry_run:
        for environment in unused:
            shutil.rmtree(environment_dir(environment.lock_hash), ignore_errors=True)
            environments.remove_images(environment.lock_hash)
            environment.delete()
    return unused
