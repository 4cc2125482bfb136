"""An event from an uploaded RAMP kit: the problem, its event, its report."""
from typing import BinaryIO

from django.db import transaction

from databoard.models import Event
from databoard.services.events import audit, event_create
from datarun import services as datarun_services
from datarun.errors import ApplicationError, PermissionDenied

KIT_IMPORT_ACTION = "kit_import"


def event_create_from_kit(*, user, archive: BinaryIO, name: str, title: str = "",
                          archive_name: str = "the kit archive") -> Event:
    """Import the kit zip ``archive`` as the problem ``name`` and open the
    event ``name`` on it, described by the kit's README and unlisted until its
    organiser lists it; queue a run of the starting kit. All or nothing.

    Superusers only: importing a kit runs its ``problem.py`` on the server.
    """
    if not (user and user.is_superuser):
        raise PermissionDenied("only a superuser uploads kits: importing one runs its "
                               "problem.py on the server")
    if Event.objects.filter(name=name).exists():
        raise ApplicationError(f"an event named {name!r} already exists; choose another name")
    with transaction.atomic():
        imported = datarun_services.problem_import_kit_archive(
            archive=archive, name=name, archive_name=archive_name,
            started_by=user.get_username())
        problem = imported.problem
        event = event_create(user=user, name=name, problem_name=problem.name,
                             title=title or problem.title,
                             description=_without_title(imported.readme),
                             is_public=False)
        evaluation = imported.starting_kit_evaluation
        audit(event=event, user=user, action=KIT_IMPORT_ACTION, archive=archive_name,
              problem=problem.name,
              starting_kit_evaluation=evaluation.id if evaluation else None,
              starting_kit_note=imported.starting_kit_note)
    return event


def _without_title(readme: str) -> str:
    """The README without its first line when that is a top heading: the
    event page shows the event's title above the description already."""
    first, _, rest = readme.lstrip().partition("\n")
    if first.startswith("# "):
        return rest.lstrip("\n")
    return readme
