"""Software-defined datasets: apply a YAML spec, and refresh specs on a schedule.

Applying a spec fetches its sources, materialises the (transformed) table as
a version and its split, and stores the spec on the dataset. Versions are
content-addressed, so applying the same spec to the same bytes creates
nothing, and a refresh creates a version only when a source's bytes changed.
Problems and events reference a version, never "latest": a new version never
changes what they evaluate on.
"""
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from datarun import storage
from datarun.datasets import specs
from datarun.errors import ApplicationError
from datarun.models import Dataset, DatasetVersion, Split
from datarun.services.datasets import dataset_version_create
from datarun.services.splits import split_create

logger = logging.getLogger(__name__)


def dataset_apply(*, spec: dict | str | Path, now: datetime | None = None
                  ) -> tuple[DatasetVersion, Split | None, bool]:
    """Materialise the spec (a parsed dict, or the path of a YAML file).

    Returns the version, its split (None when the spec has none) and whether
    anything was created (a version or a split). All or nothing: on any error
    no version, split or spec change is left behind. Relative source paths
    resolve against the spec file's folder (a dict's against the working
    directory); the command line is trusted, so any server path may be read.
    """
    if isinstance(spec, str | Path):
        parsed = specs.parse_spec_file(Path(spec))
    else:
        parsed = specs.parse_spec(spec)
    return _apply(parsed, now=now or timezone.now())


def _apply(parsed: specs.DatasetSpec, *, now: datetime
           ) -> tuple[DatasetVersion, Split | None, bool]:
    new_version = None
    try:
        with transaction.atomic():
            version, created = dataset_version_create(
                dataset=parsed.name,
                sources=[source.location for source in parsed.sources],
                transform_sql=parsed.transform,
                title=parsed.title,
                description=parsed.description,
                allowed_paths=None,
            )
            new_version = version if created else None
            split = None
            if parsed.split is not None:
                split, split_created = split_create(version=version, spec=parsed.split)
                created = created or split_created
            dataset = Dataset.objects.select_for_update().get(id=version.dataset_id)
            dataset.spec = parsed.normalised
            dataset.title = parsed.title or dataset.title
            dataset.description = parsed.description or dataset.description
            dataset.refresh_interval_s = parsed.refresh_every_s
            dataset.last_checked_at = now
            dataset.save(update_fields=["spec", "title", "description", "refresh_interval_s",
                                        "last_checked_at"])
    except BaseException:
        if new_version is not None:
            # Its rows are rolled back (e.g. the split failed): so goes its
            # table. The fetched blobs stay in the content-addressed cache.
            shutil.rmtree(storage.resolve(new_version.table_path).parent, ignore_errors=True)
        raise
    return version, split, created


# --- refresh --------------------------------------------------------------------


@dataclass
class RefreshReport:
    checked: list[str]   # "sales@2": the version each checked dataset is at now
    created: list[str]   # the versions (or splits) created by this refresh
    failed: list[str]    # "sales: <why>": left at their version, retried at the next check

    def as_dict(self) -> dict:
        return {"checked": self.checked, "created": self.created, "failed": self.failed}


def datasets_due(*, now: datetime | None = None) -> list[Dataset]:
    """Datasets with a refresh interval whose interval has elapsed."""
    now = now or timezone.now()
    candidates = Dataset.objects.filter(refresh_interval_s__isnull=False).exclude(spec={})
    return [d for d in candidates.order_by("name") if _is_due(d, now)]


def _is_due(dataset: Dataset, now: datetime) -> bool:
    return (dataset.last_checked_at is None
            or dataset.last_checked_at + timedelta(seconds=dataset.refresh_interval_s) <= now)


def datasets_refresh_due(*, now: datetime | None = None) -> dict:
    """Re-apply the stored spec of every dataset whose refresh is due.

    A new version appears only when a source's content changed. A dataset
    whose source cannot be fetched (or whose spec no longer applies) is
    logged and stays at its current version; its ``last_checked_at`` is not
    moved, so the next beat check (every DATARUN_DATASET_REFRESH_CHECK_S)
    tries again rather than waiting a whole interval.
    """
    now = now or timezone.now()
    report = RefreshReport(checked=[], created=[], failed=[])
    for dataset in datasets_due(now=now):
        try:
            outcome = _refresh_one(dataset.id, now=now)
        except ApplicationError as exc:
            logger.warning("dataset %s: refresh failed, staying at its current version: %s",
                           dataset.name, exc.message)
            report.failed.append(f"{dataset.name}: {exc.message}")
            continue
        except Exception as exc:  # a platform fault must not stop the other datasets
            logger.exception("dataset %s: refresh failed", dataset.name)
            report.failed.append(f"{dataset.name}: {type(exc).__name__}: {exc}")
            continue
        if outcome is None:
            continue  # another refresh holds it, or it is no longer due
        label, created = outcome
        report.checked.append(label)
        if created:
            logger.info("dataset refresh: created %s", label)
            report.created.append(label)
    return report.as_dict()


def _refresh_one(dataset_id: int, *, now: datetime) -> tuple[str, bool] | None:
    with transaction.atomic():
        # Two beats (or a slow refresh overlapping the next check) must not
        # fetch the same sources twice: the second skips a dataset in progress.
        dataset = Dataset.objects.select_for_update(skip_locked=True).filter(
            id=dataset_id).first()
        if dataset is None or dataset.refresh_interval_s is None or not _is_due(dataset, now):
            return None
        parsed = specs.parse_spec(dataset.spec, where=f"dataset {dataset.name}'s stored spec")
        version, _split, created = _apply(parsed, now=now)
    return f"{dataset.name}@{version.number}", created
