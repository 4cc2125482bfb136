"""Problems: importing RAMP kits as evaluable problems."""

import logging
import re
import shutil
import tempfile
from pathlib import Path

from django.db import transaction

from datarun import ramp_kits, storage
from datarun.errors import InvalidKit, NotFound
from datarun.models import (
    Problem,
    ScoreType,
)

logger = logging.getLogger(__name__)


def problem_import_ramp_kit(*, path: str | Path, name: str | None = None,
                            replace: bool = False) -> Problem:
    """Import the RAMP kit at ``path`` as a problem; all or nothing."""
    path = Path(path).resolve()
    name = name or path.name
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", name):
        raise InvalidKit(f"problem name {name!r} may only have letters, digits, '_' and '-'")
    existing = Problem.objects.filter(name=name).first()
    if existing and not replace:
        raise InvalidKit(f"a problem named {name!r} already exists")
    if existing and existing.evaluations.exists():
        raise InvalidKit(f"problem {name!r} already has evaluations; import under a new name")
    staging = Path(tempfile.mkdtemp(prefix="kit-", dir=_ensure(storage.root() / "tmp")))
    created_dir = None
    try:
        prepared = staging / "prepared"
        kit = ramp_kits.prepare_kit(path, prepared)
        relative = f"problems/{name}/{kit.data_hash[:16]}-{kit.folds_hash[:16]}"
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
            )
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


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def problem_get(name: str) -> Problem:
    try:
        return Problem.objects.get(name=name)
    except Problem.DoesNotExist as exc:
        raise NotFound(f"no problem named {name!r}") from exc
