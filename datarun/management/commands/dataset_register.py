import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datarun.errors import ApplicationError
from datarun.services import datasets


class Command(BaseCommand):
    help = ("Register files (server paths, http(s) or s3:// URLs) as a version of a dataset, "
            "or the local files an existing Croissant file lists (--croissant). "
            "Idempotent: the same bytes give the same version. The command line may read "
            "any server path (DATARUN_DATASET_PATHS restricts the API only).")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="dataset name (letters, digits, _ and -)")
        parser.add_argument("sources", nargs="*", help="files or URLs, e.g. data/train.csv")
        parser.add_argument("--croissant", type=Path,
                            help="a Croissant JSON-LD file whose FileObjects are local files")
        parser.add_argument("--transform", default="",
                            help="DuckDB SQL over the files (views named after them, "
                                 "or 'source')")
        parser.add_argument("--transform-file", type=Path, help="read the SQL from this file")
        parser.add_argument("--title", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, name, sources, croissant, transform, transform_file, title,
               description, json, **options):
        if transform_file:
            transform = transform_file.read_text()
        try:
            if croissant:
                if sources:
                    raise CommandError("give either --croissant or source files, not both")
                version, created = datasets.dataset_register_croissant(path=croissant,
                                                                       dataset=name)
            else:
                if not name or not sources:
                    raise CommandError("give a dataset name and at least one file or URL "
                                       "(or --croissant FILE)")
                version, created = datasets.dataset_version_create(
                    dataset=name, sources=sources, transform_sql=transform, title=title,
                    description=description, allowed_paths=None)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        ref = f"{version.dataset.name}@{version.number}"
        if json:
            self.stdout.write(_json({
                "created": created, "ref": ref, "dataset": version.dataset.name,
                "version": version.number, "manifest_hash": version.manifest_hash,
                "n_rows": version.n_rows, "size_bytes": version.size_bytes,
                "schema": version.schema,
                "files": [{"name": f.name, "sha256": f.sha256, "size_bytes": f.size_bytes}
                          for f in version.files.all()],
            }))
            return
        self.stdout.write(f"{'created' if created else 'unchanged'}: {ref}")
        self.stdout.write(f"  {version.n_rows} rows, {len(version.schema)} columns, "
                          f"{version.size_bytes:,} bytes, manifest {version.manifest_hash[:12]}")


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, default=str)
