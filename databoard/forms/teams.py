"""Team forms: rename, invite by username."""
from django import forms


class TeamRenameForm(forms.Form):
    name = forms.CharField(max_length=100, label="Team name")


class TeamInviteForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")
