"""The signed-in user, loaded with what every page shows of them."""
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Exists, OuterRef

from databoard.models import Event


class ViewerBackend(ModelBackend):
    """Django's ModelBackend, whose user comes with their profile (the time
    zone pages are shown in) and whether they organise an event (the
    navigation's link): one query on every page instead of three."""

    def get_user(self, user_id):
        user = (get_user_model()._default_manager.select_related("profile")
                .annotate(organises_events=Exists(Event.admins.through.objects.filter(
                    user_id=OuterRef("pk"))))
                .filter(pk=user_id).first())
        return user if user is not None and self.user_can_authenticate(user) else None
