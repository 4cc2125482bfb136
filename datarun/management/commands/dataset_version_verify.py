import json

from django.core.management.base import BaseCommand, CommandError

from datarun.errors import ApplicationError
from datarun.services import datasets


class Command(BaseCommand):
    help = ("Re-hash every file of a dataset version (and its Parquet table) and compare "
            "each sha256 with the manifest; exits 1 naming the files that changed or are "
            "missing.")

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="the dataset's name, or NAME@N")
        parser.add_argument("version", nargs="?", default="",
                            help="the version's number (default: the latest)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, dataset, version, json, **options):
        ref = f"{dataset}@{version}" if version else dataset
        try:
            found = datasets.dataset_version_get(ref)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        report = datasets.dataset_version_check(version=found)
        bad = [f for f in report if f["status"] != "ok"]
        if json:
            self.stdout.write(_json({"version": str(found), "ok": not bad, "files": report}))
        else:
            for f in report:
                line = f"{f['status']:8} {f['name']}  {f['expected']}"
                if f["status"] == "changed":
                    line += f" (now {f['actual']})"
                self.stdout.write(line)
        if bad:
            raise CommandError(
                f"{found}: " + ", ".join(f"{f['name']} {f['status']}" for f in bad)
                + "; register the new content as a new version")
        if not json:
            self.stdout.write(f"{found}: all {len(report)} files match the manifest")


def _json(data: dict) -> str:
    return json.dumps(data, indent=2)
