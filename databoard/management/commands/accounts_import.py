from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from databoard.models import Event
from databoard.services.roster import accounts_import_csv
from datarun.errors import ApplicationError


class Command(BaseCommand):
    help = ("Create accounts from a CSV (username,email[,team]) and e-mail each a link to "
            "set a password; with --event, sign them up to it in their teams.")

    def add_arguments(self, parser):
        parser.add_argument("csv", help="the CSV file ('-' for standard input)")
        parser.add_argument("--event", help="sign the accounts up to this event")
        parser.add_argument("--no-invitations", action="store_true",
                            help="create the accounts without e-mailing them")

    def handle(self, *args, csv, event=None, no_invitations=False, **options):
        text = self.stdin.read() if csv == "-" else Path(csv).read_text(encoding="utf-8-sig")
        target = None
        if event:
            target = Event.objects.filter(name=event).first()
            if target is None:
                raise CommandError(f"no event named {event!r}")
        try:
            report = accounts_import_csv(user=None, csv_text=text, event=target,
                                         send_invitations=not no_invitations)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for row in report:
            if row["created"]:
                team = f" in team {row['team']}" if row["team"] else ""
                invited = ", invited" if row["invited"] else ""
                self.stdout.write(f"line {row['line']}: created {row['username']}{team}{invited}")
            else:
                self.stdout.write(f"line {row['line']}: skipped {row['username'] or '-'}: "
                                  f"{row['reason']}")
        created = sum(row["created"] for row in report)
        self.stdout.write(f"{created} created, {len(report) - created} skipped")
