from django.core.management.base import BaseCommand

from datarun.services.environments import environments_prune


class Command(BaseCommand):
    help = ("Remove the problems' runtime environments that no problem uses any more "
            "(their venv and their record); --dry-run lists them.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list, remove nothing")

    def handle(self, *args, dry_run=False, **options):
        removed = environments_prune(dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for environment in removed:
            self.stdout.write(f"{verb} {environment.lock_hash} ({len(environment.packages)} "
                              f"packages, {environment.state})")
        self.stdout.write(f"{len(removed)} unused environment(s) {verb.split()[-1]}")
