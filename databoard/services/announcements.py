"""Announcements: an event's admins write to its participants."""
import logging

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from databoard.models import Announcement, Event, TeamMember
from databoard.services.events import audit
from datarun.errors import ApplicationError, PermissionDenied

logger = logging.getLogger(__name__)


def announcement_create(*, event: Event, user, subject: str, body: str) -> Announcement:
    """Publish on the event's page and e-mail every member of its teams (one
    message each); a mail server that is down leaves the announcement
    published, with how many messages left."""
    if not event.is_admin(user):
        raise PermissionDenied(f"only an admin of {event.name} makes announcements")
    subject, body = (subject or "").strip(), (body or "").strip()
    if not 1 <= len(subject) <= 200:
        raise ApplicationError("an announcement has a subject of 1 to 200 characters")
    if not body:
        raise ApplicationError("an announcement has a text")
    with transaction.atomic():
        announcement = Announcement.objects.create(event=event, author=user, subject=subject,
                                                   body=body)
        audit(event=event, user=user, action="announcement", subject=subject)
    users = [m.user for m in TeamMember.objects.filter(event=event).select_related("user")
             if m.user.email and m.user.is_active]
    url = f"{settings.DATARUN_SITE_URL}/events/{event.name}/#announcements"
    messages = [EmailMessage(f"[{event.title}] {subject}",
                             f"{body}\n\n-- \nAn announcement to the participants of "
                             f"{event.title}: {url}\n", to=[u.email]) for u in users]
    try:
        sent = (get_connection().send_messages(messages) or 0) if messages else 0
    except OSError:
        logger.exception("announcement %s: the e-mails could not be sent", announcement.id)
        sent = 0
    Announcement.objects.filter(id=announcement.id).update(n_mailed=sent)
    announcement.n_mailed = sent
    return announcement
