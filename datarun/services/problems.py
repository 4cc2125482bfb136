"""Problems: importing RAMP kits as evaluable problems."""

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from datarun import kit_archives, ramp_kits, storage, submission_files
from datarun.environments import Lock
from datarun.errors import InvalidKit, InvalidSubmission, NotFound
from datarun.models import (
    Evaluation,
    Problem,
    ScoreType,
)
from datarun.services.environments import (
    environment_for_lock,
    environment_queue_build,
    environment_resolve,
    kit_declared_requirements,
)
from datarun.services.evaluations import evaluation_create

logger = logging.getLogger(__name__)


def problem_import_ramp_kit(*, path: str | Path, name: str | None = None,
                            replace: bool = False, requirements: str | None = None,
                            lock: Lock | None = None,
                            starting_kit_pending: bool = False) -> Problem:
    """Import the RAMP kit at ``path`` as a problem; all or nothing.

    ``requirements``: the packages of the problem's own environment (None:
    those the kit declares in ``requirements.txt`` / ``environment.yml``; a
    kit declaring none runs on the shared runtime; ``lock``: them resolved
    already). They are resolved first:
    requirements that cannot be installed refuse the import. The environment
    is built in the background, then the kit's data is loaded and checked by
    its own code in it (until then the problem takes no submission, and a
    failure there is the environment's error); ``starting_kit_pending``
    queues the starting kit once it is ready."""
    path = Path(path).resolve()
    name = name or path.name
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", name):
        raise InvalidKit(f"problem name {name!r} may only have letters, digits, '_' and '-'")
    existing = Problem.objects.filter(name=name).first()
    if existing and not replace:
        raise InvalidKit(f"a problem named {name!r} already exists")
    if existing and existing.evaluations.exists():
        raise InvalidKit(f"problem {name!r} already has evaluations; import under a new name")
    if lock is None:
        if requirements is None:
            requirements = kit_declared_requirements(path) if path.is_dir() else ""
        lock = environment_resolve(requirements=requirements) if requirements.strip() else None
    staging = Path(tempfile.mkdtemp(prefix="kit-", dir=_ensure(storage.root() / "tmp")))
    created_dir = None
    try:
        prepared = staging / "prepared"
        # A kit with its own environment is checked and its data loaded by
        # its own code there, once built: the server's libraries may not load it.
        kit = ramp_kits.prepare_kit(path, prepared, load_data=lock is None)
        relative = (f"problems/{name}/{kit.data_hash[:16]}-{kit.folds_hash[:16]}"
                    if lock is None else f"problems/{name}/kit-{kit.data_hash[:16]}")
        final = storage.resolve(relative)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            prepared.rename(final)
            created_dir = final
        with transaction.atomic():
            if existing:
                existing = Problem.objects.select_for_update().get(id=existing.id)
                if existing.evaluations.exists():
                    raise InvalidKit(
                        f"problem {name!r} already has evaluations; import under a new name"
                    )
                existing.delete()
            problem = Problem.objects.create(
                name=name,
                title=kit.title,
                storage_dir=relative,
                workflow_elements=kit.workflow_elements,
                prediction_shape=kit.prediction_shape,
                n_train=kit.n_train,
                n_test=kit.n_test,
                n_folds=kit.n_folds,
                data_hash=kit.data_hash,
                folds_hash=kit.folds_hash,
                environment=environment_for_lock(lock) if lock is not None else None,
                starting_kit_pending=starting_kit_pending and lock is not None,
            )
            if problem.environment is not None:
                environment_queue_build(problem.environment)
            ScoreType.objects.bulk_create(
                ScoreType(problem=problem, **vars(st)) for st in kit.score_types
            )
    except BaseException:
        if created_dir is not None:
            shutil.rmtree(created_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return problem


@dataclass
class KitImport:
    """What importing an uploaded kit made: the problem, the kit's README
    text, and the evaluation of its starting kit (None when it has none)."""

    problem: Problem
    readme: str
    starting_kit_evaluation: Evaluation | None
    starting_kit_note: str = ""


def problem_import_kit_archive(*, archive: BinaryIO, name: str,
                               archive_name: str = "the kit archive",
                               started_by: str = "") -> KitImport:
    """Import a RAMP kit uploaded as a zip (see :mod:`datarun.kit_archives`)
    as the problem ``name``, and queue a run of its starting kit.

    Like ``manage.py import_ramp_kit``, this runs the kit's ``problem.py`` on
    the trusted side: callers let only superusers upload kits. All or
    nothing: a refused kit leaves no problem and no file behind.
    """
    staging = Path(tempfile.mkdtemp(prefix="upload-", dir=_ensure(storage.root() / "tmp")))
    try:
        kit_dir = kit_archives.unpack_kit(
            archive, staging / name, archive_name=archive_name,
            max_archive_bytes=settings.DATARUN_MAX_KIT_BYTES,
            max_unpacked_bytes=settings.DATARUN_MAX_KIT_UNPACKED_BYTES)
        readme = kit_archives.kit_readme(kit_dir)
        problem = problem_import_ramp_kit(path=kit_dir, name=name, starting_kit_pending=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if problem.environment_id is not None:
        note = ("the starting kit runs once the problem's environment is built "
                f"(environment {problem.environment.lock_hash[:12]}, "
                f"{len(problem.environment.packages)} packages)")
        return KitImport(problem=problem, readme=readme, starting_kit_evaluation=None,
                         starting_kit_note=note)
    try:
        evaluation, note = starting_kit_evaluate(problem=problem, started_by=started_by), ""
    except InvalidSubmission as exc:  # e.g. a data file over the submission limits
        evaluation, note = None, f"the starting kit was not run: {exc.message}"
    if evaluation is None and not note:
        note = ("the kit has no submissions/starting_kit with "
                f"{', '.join(submission_files.expected_file_names(problem.workflow_elements))}")
    return KitImport(problem=problem, readme=readme, starting_kit_evaluation=evaluation,
                     starting_kit_note=note)


def starting_kit_files(problem: Problem) -> dict[str, bytes]:
    """The files of the kit's ``submissions/starting_kit`` that a submission
    holds (one per workflow element); empty when one is missing."""
    folder = storage.resolve(problem.storage_dir) / "kit" / "submissions" / "starting_kit"
    names = submission_files.expected_file_names(problem.workflow_elements)
    if not all((folder / n).is_file() for n in names):
        return {}
    return {n: (folder / n).read_bytes() for n in names}


def starting_kit_evaluate(*, problem: Problem, started_by: str = "") -> Evaluation | None:
    """Queue an evaluation of the problem's starting kit, on no leaderboard:
    its scores tell the organiser the kit works and what a baseline scores."""
    files = starting_kit_files(problem)
    if not files:
        return None
    return evaluation_create(problem=problem, files=files, started_by=started_by,
                             owner="starting-kit")


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def problem_get(name: str) -> Problem:
    try:
        return Problem.objects.get(name=name)
    except Problem.DoesNotExist as exc:
        raise NotFound(f"no problem named {name!r}") from exc
