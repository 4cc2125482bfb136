from django.core.management.base import BaseCommand, CommandError

from databoard.models import Event
from databoard.services.leaderboards import leaderboard_update


class Command(BaseCommand):
    help = ("Rebuild the leaderboard read model of the named events (every event when "
            "none is named) from their evaluations.")

    def add_arguments(self, parser):
        parser.add_argument("events", nargs="*", help="event names (default: every event)")

    def handle(self, *args, **options):
        events = Event.objects.order_by("name")
        if options["events"]:
            events = events.filter(name__in=options["events"])
            missing = set(options["events"]) - {e.name for e in events}
            if missing:
                raise CommandError(f"no event named {', '.join(sorted(missing))}")
        for event in events:
            rows = leaderboard_update(event_id=event.id)
            self.stdout.write(f"{event.name}: {rows} leaderboard rows")
