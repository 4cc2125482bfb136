from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from datarun import backup
from datarun.errors import ApplicationError


class Command(BaseCommand):
    help = "Back up the database and the storage directory into one tar file."

    def add_arguments(self, parser):
        parser.add_argument("out", help="the backup file to write, e.g. datarun-2026-12-02.tar")

    def handle(self, *args, out, **options):
        try:
            manifest = backup.backup(database=settings.DATABASES["default"],
                                     storage=settings.DATARUN_STORAGE_DIR, out=Path(out))
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"backed up the {manifest['engine']} database and "
                          f"{manifest['storage_files']} storage files "
                          f"({manifest['storage_bytes']} bytes) to {out}")
