"""Accounts: a user's API token, and what a password change revokes."""
from django.db import transaction
from rest_framework.authtoken.models import Token


def api_token_get(*, user) -> Token | None:
    return Token.objects.filter(user=user).first()


def api_token_create(*, user) -> Token:
    """The user's token: the existing one, else a new one."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def api_token_revoke(*, user) -> bool:
    """Deletes the user's token; whether there was one. Requests sending it
    are refused from now on (401)."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0


class RevokeApiTokenOnPasswordChange:
    """A password "validator" that validates nothing: Django calls its
    ``password_changed`` after every password change (the password-change and
    reset pages, the admin, ``changepassword``), which is when a stolen token
    must stop working. Sessions need nothing: Django already ends every
    session but the one that changed the password."""

    def validate(self, password, user=None):
        pass

    def password_changed(self, password, user=None):
        if user is not None and user.pk is not None:
            api_token_revoke(user=user)

    def get_help_text(self):
        return "Changing your password revokes your API token."
