"""Declarative problems: a spec over a dataset version becomes a RAMP kit,
imported like any other so that it runs through the same worker path.

Everything a user can get wrong is checked in memory first (:func:`_plan`:
the spec, the columns, the split, the target), so that an error creates
nothing; only then are the split and the problem created, in one transaction.
"""
import io
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from django.db import transaction

from datarun import declarative, storage
from datarun.datasets import splits
from datarun.datasets.duck import read_table
from datarun.declarative import InvalidProblemSpec, ProblemSpec
from datarun.environments import Lock
from datarun.errors import InvalidEnvironment
from datarun.models import DatasetVersion, Problem, Split
from datarun.services.datasets import (
    dataset_version_get,
    dataset_version_table,
    dataset_version_verify,
)
from datarun.services.environments import environment_resolve
from datarun.services.problems import problem_import_ramp_kit
from datarun.services.splits import split_create, split_table

logger = logging.getLogger(__name__)

# Split methods whose ``column`` is the class column: it defaults to the target.
_STRATIFIED = {("test", "stratified"), ("cv", "stratified_kfold"),
               ("cv", "stratified_shuffle")}


@dataclass
class _Plan:
    spec: ProblemSpec
    version: DatasetVersion
    version_ref: str
    table: pd.DataFrame
    split: Split | None       # an existing split the spec names by id
    split_spec: dict | None   # else the split spec to create
    split_rows: pd.DataFrame  # the per-row table (see datarun.datasets.splits)
    labels: list | None
    lock: Lock | None = None  # of the spec's environment.packages

    def stored_spec(self) -> dict:
        """The spec as the problem keeps it: the dataset version pinned."""
        out = self.spec.as_dict()
        out["dataset"] = self.version_ref
        out["split"] = self.split_spec if self.split is None else self.split.id
        return out


def _split_spec_for(spec: ProblemSpec) -> dict:
    """The problem's split spec, with a stratified method's column defaulting
    to the target."""
    split = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.split.items()}
    for section, method in _STRATIFIED:
        part = split.get(section)
        if isinstance(part, dict) and part.get("method") == method:
            part.setdefault("column", spec.target)
    return split


def _plan(raw: dict | str) -> _Plan:
    spec = declarative.parse_problem_spec(raw)
    version = dataset_version_get(spec.dataset)
    ref = f"{version.dataset.name}@{version.number}"
    declarative.check_columns(spec, [c["name"] for c in version.schema], dataset=ref)
    # The kit is built from these bytes: they must still be the version's.
    dataset_version_verify(version=version)
    table = read_table(dataset_version_table(version))
    split, split_spec = None, None
    if isinstance(spec.split, int):
        split = Split.objects.filter(id=spec.split, version=version).first()
        if split is None:
            known = ", ".join(str(s) for s in version.splits.values_list("id", flat=True))
            raise InvalidProblemSpec(f"split: {spec.split} is not a split of {ref} "
                                     f"(its splits: {known or 'none'})")
        rows = split_table(split)
    else:
        split_spec = _split_spec_for(spec)
        try:
            rows = splits.assign(table, splits.parse_split_spec(split_spec))
        except splits.SplitSpecError as exc:
            raise InvalidProblemSpec(f"split: {exc}") from exc
    train, test = splits.train_test_rows(rows)
    if splits.n_folds(rows) == 0:
        raise InvalidProblemSpec("split: a problem needs cross-validation folds; add split.cv")
    if len(test) == 0:
        raise InvalidProblemSpec("split: a problem needs test rows; add split.test")
    kit_rows = pd.concat([table[spec.target].iloc[train], table[spec.target].iloc[test]])
    labels = declarative.target_labels(spec, kit_rows.reset_index(drop=True))
    return _Plan(spec=spec, version=version, version_ref=ref, table=table, split=split,
                 split_spec=split_spec, split_rows=rows, labels=labels,
                 lock=_lock(spec) if spec.packages else None)


def _lock(spec: ProblemSpec) -> Lock:
    """The lock of the spec's packages; refused naming the entry pip could not install."""
    try:
        return environment_resolve(requirements=spec.requirements)
    except InvalidEnvironment as exc:
        named = [f"environment.packages[{i}] ({entry!r})"
                 for i, entry in enumerate(spec.packages) if entry in exc.message]
        raise InvalidProblemSpec(f"{', '.join(named) or 'environment.packages'}: "
                                 f"{exc.message}") from exc


def problem_preview_declarative(*, spec: dict | str) -> dict:
    """What the spec would create, checked as :func:`problem_create_declarative`
    checks it, without creating anything."""
    plan = _plan(spec)
    rows = plan.split_rows
    train, test = splits.train_test_rows(rows)
    target = plan.table[plan.spec.target]
    per_split = {}
    if plan.labels is not None:
        for part, idx in (("train", train), ("test", test)):
            counts = target.iloc[idx].value_counts()
            per_split[part] = {str(label): int(counts.get(label, 0)) for label in plan.labels}
    return {
        "name": plan.spec.name,
        "title": plan.spec.title,
        "dataset": plan.version_ref,
        "features": declarative.feature_columns(plan.spec, list(plan.table.columns)),
        "target": plan.spec.target,
        "task": plan.spec.task,
        "labels": plan.labels,
        "labels_per_split": per_split,
        "n_train": len(train),
        "n_test": len(test),
        "folds": [{"train": len(tr), "valid": len(va)}
                  for tr, va in splits.folds_from_table(rows)],
        "score_types": [s.name for s in plan.spec.score_types],
        "workflow": plan.spec.workflow,
        "submission_files": [f"{e}.py" for e in declarative.WORKFLOWS[plan.spec.workflow].elements],
        "limits": plan.spec.limits,
        "environment": None if plan.lock is None else {
            "lock_hash": plan.lock.hash,
            "packages": {p.name: p.version for p in plan.lock.packages}},
        "spec": plan.stored_spec(),
        "exists": Problem.objects.filter(name=plan.spec.name).exists(),
    }


def problem_create_declarative(*, spec: dict | str, replace: bool = False) -> Problem:
    """Create the problem ``spec`` describes (see :mod:`datarun.declarative`);
    all or nothing. ``replace`` rebuilds a problem of that name that has no
    evaluations yet."""
    return _create(_plan(spec), replace=replace)


def problem_apply(*, spec: dict | str) -> tuple[Problem, bool]:
    """Create or rebuild the problem ``spec`` describes; unchanged (and
    ``False``) when a problem of that name was already built from the same
    spec on the same dataset version."""
    plan = _plan(spec)
    existing = Problem.objects.filter(name=plan.spec.name).first()
    if existing is not None and existing.kind != Problem.Kind.DECLARATIVE:
        raise InvalidProblemSpec(f"{plan.spec.name!r} is a problem imported from a RAMP kit; "
                                 "give the declarative problem another name")
    if (existing is not None and existing.dataset_version_id == plan.version.id
            and existing.spec == plan.stored_spec()):
        return existing, False
    return _create(plan, replace=True), True


def _create(plan: _Plan, *, replace: bool) -> Problem:
    spec = plan.spec
    existing = Problem.objects.filter(name=spec.name).first()
    if existing is not None and not replace:
        raise InvalidProblemSpec(f"a problem named {spec.name!r} already exists; "
                                 "choose another name")
    staging = Path(tempfile.mkdtemp(prefix="declarative-", dir=_ensure(storage.root() / "tmp")))
    made: list[tuple[type, str, str]] = []  # files made here, undone if the rows roll back
    try:
        with transaction.atomic():
            split = plan.split
            if split is None:
                split, created = split_create(version=plan.version, spec=plan.split_spec)
                if created:
                    made.append((Split, "table_path", split.table_path))
            rows = split_table(split)
            train, test = splits.train_test_rows(rows)
            kit_dir = staging / spec.name
            declarative.write_kit(
                kit_dir, spec=spec, table=plan.table, train_rows=train, test_rows=test,
                folds=splits.folds_from_table(rows), labels=plan.labels,
                provenance=declarative.KitProvenance(
                    dataset=plan.version_ref, manifest_hash=plan.version.manifest_hash,
                    split_hash=split.split_hash))
            problem = problem_import_ramp_kit(path=kit_dir, name=spec.name, replace=replace,
                                              requirements=spec.requirements, lock=plan.lock)
            made.append((Problem, "storage_dir", problem.storage_dir))
            problem.kind = Problem.Kind.DECLARATIVE
            problem.dataset_version = plan.version
            problem.split = split
            problem.spec = plan.stored_spec()
            problem.save(update_fields=["kind", "dataset_version", "split", "spec"])
    except BaseException:
        # Content-addressed: remove only what no remaining row points to.
        for model, field, relative in made:
            if model.objects.filter(**{field: relative}).exists():
                continue
            path = storage.resolve(relative)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("declarative problem %s built on %s, split %s", spec.name, plan.version_ref,
                split.split_hash[:12])
    return problem


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# Fixed, so that the same kit always zips to the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def problem_export_kit(*, problem: Problem) -> bytes:
    """The problem's RAMP kit as a zip (``<name>/problem.py``, ``data/``,
    ``submissions/starting_kit/``, ``README.md``).

    This is the trusted side's full kit, **test labels included**
    (``data/test.csv``): it is for organisers (to run ``ramp-test``, to
    publish a participants' kit without the test labels), never for
    participants.
    """
    kit = storage.resolve(problem.storage_dir) / "kit"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in kit.rglob("*") if p.is_file()):
            relative = path.relative_to(kit)
            if "__pycache__" in relative.parts or relative.parts[-1].endswith(".pyc"):
                continue
            info = zipfile.ZipInfo(f"{problem.name}/{relative.as_posix()}", _ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
