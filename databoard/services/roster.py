"""Accounts for a class, from a CSV: one row per student (username, e-mail,
optional team), each invited by e-mail to set a password.

Rows are checked one by one: a row that cannot be created is skipped with
its reason and the others go on; a file that cannot be read at all (no
header, a team column without an event) creates nothing. The invitations
leave after the accounts are committed; when the mail server is down the
accounts stay, and "Forgot your password?" sends their users the same link.
"""
import csv
import io
import logging
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from databoard.models import Event, Profile, Team, TeamMember
from databoard.services.events import audit
from datarun.errors import ApplicationError, PermissionDenied

logger = logging.getLogger(__name__)

MAX_ROWS = 2000
COLUMNS = ("username", "email", "team")


@dataclass
class RosterRow:
    line: int
    username: str
    email: str
    team: str
    created: bool = False
    reason: str = ""
    invited: bool = False


def accounts_import_csv(*, user, csv_text: str, event: Event | None = None,
                        send_invitations: bool = True) -> list[dict]:
    """Create the accounts of ``csv_text`` (columns ``username``, ``email`` and
    optionally ``team``); with ``event``, sign each one up to it (in its team,
    or alone). Returns one entry per row: created, or skipped and why.

    ``user``: a superuser, or an admin of ``event``; None for the server's
    own shell (the management command).
    """
    if user is not None and not (user.is_superuser or (event and event.is_admin(user))):
        raise PermissionDenied("only a superuser, or an event's admin for their event, "
                               "creates accounts in bulk")
    rows = _parse(csv_text)
    if event is None and any(row.team for row in rows):
        raise ApplicationError("some rows name a team: choose the event the teams are in")
    with transaction.atomic():
        created = [row for row in rows if _create(row, event)]
        if event is not None:
            audit(event=event, user=user, action="accounts_import",
                  created=len(created), skipped=len(rows) - len(created))
    if send_invitations and created:
        try:
            _invite(created, event)
        except OSError:
            # The accounts stay: "Forgot your password?" sends the same link later.
            logger.exception("the invitations of %s new accounts could not be sent",
                             len(created))
        else:
            for row in created:
                row.invited = True
    return [asdict(row) for row in rows]


def _parse(csv_text: str) -> list[RosterRow]:
    text = csv_text.lstrip("\ufeff")  # a spreadsheet's byte-order mark
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = [h.strip().lower() for h in next(reader, [])]
    if not {"username", "email"} <= set(header):
        raise ApplicationError("the CSV's first line must name its columns: username,email "
                               f"and optionally team (it has {', '.join(header) or 'nothing'})")
    index = {name: header.index(name) for name in COLUMNS if name in header}
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        cells = {name: (values[i].strip() if i < len(values) else "")
                 for name, i in index.items()}
        rows.append(RosterRow(line=reader.line_num, username=cells["username"],
                              email=cells["email"], team=cells.get("team", "")))
        if len(rows) > MAX_ROWS:
            raise ApplicationError(f"the CSV has more than {MAX_ROWS} rows: split it")
    if not rows:
        raise ApplicationError("the CSV has a header but no rows")
    return rows


def _create(row: RosterRow, event: Event | None) -> bool:
    row.reason = _refusal(row, event)
    if row.reason:
        return False
    user = get_user_model().objects.create_user(row.username, email=row.email)
    user.set_unusable_password()  # chosen through the invitation's link
    user.save(update_fields=["password"])
    Profile.objects.create(user=user)
    if event is not None:
        team = Team.objects.filter(event=event, name=row.team or row.username).first()
        if team is None:
            team = Team.objects.create(event=event, name=row.team or row.username, approved=True)
        TeamMember.objects.create(team=team, user=user, event=event)
    row.created = True
    return True


def _refusal(row: RosterRow, event: Event | None) -> str:
    """Why the row cannot be created ('' when it can)."""
    users = get_user_model().objects
    try:
        UnicodeUsernameValidator()(row.username)
    except ValidationError:
        return ("the username is empty or has characters other than letters, digits and "
                "@.+-_" if row.username else "no username")
    if len(row.username) > 150:
        return "the username is longer than 150 characters"
    try:
        validate_email(row.email)
    except ValidationError:
        return f"{row.email!r} is not an e-mail address" if row.email else "no e-mail address"
    if users.filter(username__iexact=row.username).exists():
        return f"an account named {row.username} already exists"
    if users.filter(email__iexact=row.email).exists():
        return f"another account uses {row.email}"
    if event is not None:
        name = row.team or row.username
        if len(name) > 100:
            return "the team name is longer than 100 characters"
        team = Team.objects.filter(event=event, name=name).first()
        if team is not None and not row.team:
            return f"{event.name} already has a team named {name}; give this row a team"
        if team is not None and team.memberships.count() >= event.max_team_size:
            return f"team {name} is full ({event.max_team_size} members, the event's limit)"
    return ""


def _invite(rows: list[RosterRow], event: Event | None) -> None:
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=[r.username for r in rows])}
    messages = []
    for row in rows:
        user = users[row.username]
        link = settings.DATARUN_SITE_URL + reverse("password_reset_confirm", kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user)})
        where = f" for {event.title}" if event else ""
        team = f"You are in team {row.team}.\n\n" if row.team else ""
        messages.append(EmailMessage(
            f"Your Datarun account{where}",
            f"Hello {user.username},\n\nan account was created for you on Datarun{where}: "
            f"your username is {user.username}.\n\n{team}Choose your password here (the link "
            f"works once, for {settings.PASSWORD_RESET_TIMEOUT // 86400} days; after that, "
            f"use \"Forgot your password?\" on the login page):\n\n{link}\n",
            to=[user.email]))
    get_connection().send_messages(messages)
