"""Reads of the dataset registry for the data dashboard, as plain data for
databoard's pages and the API (the same numbers for both).

Profiles are computed by DuckDB (``datarun.datasets.profile``) and cached as
JSON files in storage, keyed by what they depend on: the table's sha256, the
split's hash, the target and the profile format. Versions and splits are
immutable, so a cached profile is never stale.
"""
import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path

from django.db.models import Count, Max, Q

from datarun import storage
from datarun.datasets import profile as profiles
from datarun.errors import ApplicationError, NotFound
from datarun.models import Dataset, DatasetVersion, Problem, Split
from datarun.services.datasets import dataset_version_table


def croissant_url(name: str, number: int) -> str:
    return f"/api/v1/datasets/{name}/versions/{number}/croissant.json"


def dataset_list() -> list[dict]:
    """Every dataset with its number of versions and its latest version's figures."""
    datasets = Dataset.objects.annotate(n_versions=Count("versions"),
                                        latest_number=Max("versions__number")).order_by("name")
    wanted = Q(pk__in=[])
    for d in datasets:
        if d.latest_number:
            wanted |= Q(dataset_id=d.id, number=d.latest_number)
    latest = {(v.dataset_id, v.number): v for v in DatasetVersion.objects.filter(wanted)}
    rows = []
    for d in datasets:
        version = latest.get((d.id, d.latest_number))
        rows.append({
            "name": d.name, "title": d.title, "n_versions": d.n_versions,
            "created_at": d.created_at,
            "latest": None if version is None else {
                "number": version.number, "n_rows": version.n_rows,
                "size_bytes": version.size_bytes, "created_at": version.created_at},
        })
    return rows


def dataset_version_dashboard(*, name: str, number: int, target: str | None = None,
                              split: str | None = None) -> dict:
    """The dashboard of one version: its record, files, splits and profile.

    Rows, folds and the target are counted per split of ``split`` (the id of
    one of the version's splits), by default of the version's latest split;
    ``split="all"`` (or a version without splits) takes the whole table as
    one split. Column figures always cover the whole table.
    """
    version = (DatasetVersion.objects.select_related("dataset")
               .filter(dataset__name=name, number=number).first())
    if version is None:
        raise NotFound(f"no dataset version {name}@{number}")
    splits = list(version.splits.order_by("-created_at", "-id"))
    chosen = splits[0] if splits else None
    if split == "all":
        chosen = None
    elif split:
        chosen = next((s for s in splits if str(s.id) == split), None)
        if chosen is None:
            raise NotFound(f"{name}@{number} has no split {split!r}; its splits are "
                           f"{', '.join(str(s.id) for s in splits) or 'none'} (or 'all')")
    return {
        "dataset": _version_data(version, splits),
        "split": None if chosen is None else _split_data(chosen),
        "profile": version_profile(version, split=chosen, target=target or None),
    }


def problem_dashboard(*, name: str) -> dict:
    """A problem's data: for a declarative problem, the profile of its dataset
    version per split of its split, with its target; for a RAMP kit, the rows
    and folds the kit's import recorded (the data came from the kit's files)."""
    problem = (Problem.objects.select_related("dataset_version__dataset", "split")
               .filter(name=name).first())
    if problem is None:
        raise NotFound(f"no problem named {name}")
    about = {"name": problem.name, "title": problem.title, "kind": problem.kind,
             "n_train": problem.n_train, "n_test": problem.n_test,
             "n_folds": problem.n_folds, "data_hash": problem.data_hash,
             "folds_hash": problem.folds_hash}
    if problem.kind != Problem.Kind.DECLARATIVE or problem.dataset_version is None:
        return {"problem": about, "dataset": None, "split": None, "profile": None,
                "kit": _kit_data(problem)}
    version, split, spec = problem.dataset_version, problem.split, problem.spec or {}
    about.update(target=spec.get("target"), task=spec.get("task"),
                 ignore=spec.get("ignore") or [])
    kind = None
    if spec.get("task"):
        kind = "numeric" if spec["task"] == "regression" else "categorical"
    splits = list(version.splits.order_by("-created_at", "-id"))
    return {
        "problem": about,
        "dataset": _version_data(version, splits),
        "split": None if split is None else _split_data(split),
        "profile": version_profile(version, split=split, target=spec.get("target"),
                                   target_kind=kind),
        "kit": None,
    }


def problem_public_data(*, name: str) -> dict | None:
    """What any participant may see of a problem's data: rows per split, the
    folds' sizes and the distribution of the training labels (which the
    starting kit holds anyway; never the test labels). Cached in storage by
    the problem's data and folds hashes. None when the problem is gone; no
    target when its data is not on the platform (a sensitive-data pool's)."""
    problem = Problem.objects.filter(name=name).first()
    if problem is None:
        return None
    key = hashlib.sha256(json.dumps(
        ["public", profiles.FORMAT, problem.data_hash, problem.folds_hash,
         problem.storage_dir]).encode()).hexdigest()
    cached = storage.root() / "profiles" / key[:2] / f"{key}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    kit = _kit_data(problem)
    target = None
    spec = problem.spec or {}
    labels = storage.resolve(problem.storage_dir) / "sandbox" / "y_train.pkl"
    if labels.is_file():
        with open(labels, "rb") as f:
            y_train = pickle.load(f)  # written by our own import, as the scorer reads it
        target = profiles.array_target_distribution(y_train,
                                                    name=spec.get("target") or "target")
    result = {"splits": kit["splits"], "folds": kit["folds"], "target": target}
    _write_atomic(cached, json.dumps(result))
    return result


def version_profile(version: DatasetVersion, *, split: Split | None = None,
                    target: str | None = None, target_kind: str | None = None) -> dict:
    """The DuckDB profile of ``version`` (per split of ``split``), cached in storage."""
    key = hashlib.sha256(json.dumps(
        [profiles.FORMAT, version.table_sha256, split.split_hash if split else None,
         target, target_kind]).encode()).hexdigest()
    cached = storage.root() / "profiles" / key[:2] / f"{key}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    try:
        result = profiles.profile_table(
            dataset_version_table(version),
            split_table=storage.resolve(split.table_path) if split else None,
            target=target, target_kind=target_kind)
    except profiles.ProfileError as exc:
        raise ApplicationError(f"{version}: {exc}") from exc
    _write_atomic(cached, json.dumps(result))
    return result


# --- parts --------------------------------------------------------------------

def _version_data(version: DatasetVersion, splits: list[Split]) -> dict:
    return {
        "name": version.dataset.name, "title": version.dataset.title,
        "description": version.dataset.description, "number": version.number,
        "manifest_hash": version.manifest_hash, "table_sha256": version.table_sha256,
        "n_rows": version.n_rows, "size_bytes": version.size_bytes,
        "schema": version.schema, "transform_sql": version.transform_sql,
        "created_at": version.created_at.isoformat(),
        "croissant_url": croissant_url(version.dataset.name, version.number),
        "files": [{"name": f.name, "sha256": f.sha256, "size_bytes": f.size_bytes,
                   "source": f.source, "encoding_format": f.encoding_format}
                  for f in version.files.order_by("name")],
        "splits": [_split_data(s) for s in splits],
    }


def _split_data(split: Split) -> dict:
    return {"id": split.id, "spec": split.spec, "spec_hash": split.spec_hash,
            "split_hash": split.split_hash, "summary": split.summary,
            "created_at": split.created_at.isoformat()}


def _kit_data(problem: Problem) -> dict:
    """What a RAMP kit's import recorded: rows, and each fold's sizes."""
    from datarun.ramp_kits import load_folds

    try:
        folds = profiles.fold_sizes(load_folds(storage.resolve(problem.storage_dir)))
    except OSError:
        folds = []
    return {"storage_dir": problem.storage_dir, "folds": folds,
            "splits": [{"name": "train", "rows": problem.n_train},
                       {"name": "test", "rows": problem.n_test}]}


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
