from django.core.management.base import BaseCommand, CommandError

from databoard.models import Event
from datarun import services
from datarun.errors import ApplicationError


class Command(BaseCommand):
    help = "Import a RAMP kit (problem.py + data/ + submissions/) as a problem."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", help="problem name (default: the kit folder's name)")
        parser.add_argument("--event", help="also create an event of this name for it")
        parser.add_argument("--replace", action="store_true",
                            help="replace a problem of the same name that has no evaluations")

    def handle(self, *args, path, name=None, event=None, replace=False, **options):
        try:
            problem = services.problem_import_ramp_kit(path=path, name=name, replace=replace)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"imported problem {problem.name!r}: {problem.n_train} training rows, "
            f"{problem.n_test} test rows, {problem.n_folds} folds (hash {problem.folds_hash[:12]})"
        )
        if event:
            Event.objects.update_or_create(
                name=event, defaults={"title": problem.title, "problem_name": problem.name}
            )
            self.stdout.write(f"event {event!r} is open for submissions")
