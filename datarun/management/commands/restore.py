from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from datarun import backup
from datarun.errors import ApplicationError


class Command(BaseCommand):
    help = ("Restore a backup made by `manage.py backup`: the database's content is "
            "replaced, the storage's files are put back. Stop the web and the workers first.")

    def add_arguments(self, parser):
        parser.add_argument("archive", help="the backup file")
        parser.add_argument("--yes", action="store_true",
                            help="confirm that the current database content is replaced")

    def handle(self, *args, archive, yes=False, **options):
        if not yes:
            raise CommandError("restoring replaces the database's content: stop the web and "
                               "the workers, then run again with --yes")
        try:
            manifest = backup.restore(database=settings.DATABASES["default"],
                                      storage=settings.DATARUN_STORAGE_DIR,
                                      archive=Path(archive))
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"restored the backup of {manifest['created_at']}: the database and "
                          f"{manifest['storage_files']} storage files")
