"""Account forms: sign-up and the profile (name, e-mail, affiliation, time zone)."""
import functools
import zoneinfo

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction

from databoard.models import Profile

User = get_user_model()


@functools.cache
def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone this machine knows, after "the browser's"."""
    # "localtime" is the server's zone and "Factory" a placeholder: no use to a person.
    zones = sorted(zoneinfo.available_timezones() - {"localtime", "Factory", "posixrules"})
    return [("", "the browser's time zone")] + [(z, z.replace("_", " ")) for z in zones]


def _email_taken(email: str, *, exclude_user=None) -> bool:
    users = User.objects.filter(email__iexact=email)
    if exclude_user is not None:
        users = users.exclude(pk=exclude_user.pk)
    return users.exists()


class SignUpForm(UserCreationForm):
    """Username, e-mail and the password twice (Django's password validators)."""

    email = forms.EmailField(help_text="for password resets")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self) -> str:
        # One account per address, so that a password reset reaches one account.
        email = self.cleaned_data["email"]
        if _email_taken(email):
            raise forms.ValidationError("an account with this e-mail address already exists")
        return email

    @transaction.atomic
    def save(self, commit: bool = True):
        """Always commits: the profile needs the user's row."""
        user = super().save(commit=True)
        Profile.objects.create(user=user)
        return user


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField()
    affiliation = forms.CharField(max_length=200, required=False)
    time_zone = forms.ChoiceField(
        required=False, choices=time_zone_choices,
        help_text="times on every page are shown in this zone")
    notify_submissions = forms.BooleanField(
        required=False, label="E-mail me when my team's submissions are scored or fail")

    def __init__(self, *args, user, **kwargs):
        self.user = user
        profile = Profile.objects.filter(user=user).first()
        kwargs.setdefault("initial", {
            "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
            "affiliation": profile.affiliation if profile else "",
            "time_zone": profile.time_zone if profile else "",
            "notify_submissions": profile.notify_submissions if profile else True,
        })
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if _email_taken(email, exclude_user=self.user):
            raise forms.ValidationError("another account uses this e-mail address")
        return email

    @transaction.atomic
    def save(self) -> Profile:
        data = self.cleaned_data
        for field in ("first_name", "last_name", "email"):
            setattr(self.user, field, data[field])
        self.user.save(update_fields=["first_name", "last_name", "email"])
        profile, _ = Profile.objects.update_or_create(
            user=self.user,
            defaults={"affiliation": data["affiliation"], "time_zone": data["time_zone"],
                      "notify_submissions": data["notify_submissions"]})
        return profile
