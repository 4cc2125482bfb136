import json

from django.core.management.base import BaseCommand, CommandError

from datarun import services
from datarun.errors import ApplicationError


class Command(BaseCommand):
    help = ("Materialise a dataset spec (YAML: sources, DuckDB SQL transform, split, refresh) "
            "as a version; idempotent: the same spec on the same bytes creates nothing.")

    def add_arguments(self, parser):
        parser.add_argument("spec", help="the spec file (YAML)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, spec, json=False, **options):
        try:
            version, split, created = services.dataset_apply(spec=spec)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        label = f"{version.dataset.name}@{version.number}"
        if json:
            self.stdout.write(_json({
                "created": created, "dataset": version.dataset.name,
                "version": version.number, "ref": label,
                "manifest_hash": version.manifest_hash, "n_rows": version.n_rows,
                "columns": [c["name"] for c in version.schema],
                "split_hash": split.split_hash if split else None,
                "split_summary": split.summary if split else None,
                "refresh_interval_s": version.dataset.refresh_interval_s,
            }))
            return
        self.stdout.write(f"{'created' if created else 'unchanged'}: {label}")
        self.stdout.write(f"  {version.n_rows} rows, {len(version.schema)} columns, "
                          f"manifest {version.manifest_hash[:12]}")
        if split is not None:
            self.stdout.write(f"  split {split.split_hash[:12]}: {_rows_per_split(split)}")


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, default=str)


def _rows_per_split(split) -> str:
    rows = split.summary.get("rows", {})
    text = ", ".join(f"{name} {n}" for name, n in rows.items()) or "materialised"
    if folds := split.summary.get("folds"):
        text += f"; {len(folds)} CV folds"
    return text
