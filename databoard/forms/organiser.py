"""Organiser forms: a new event, a kit upload, an event's rules, the submissions filter.

Dates use datetime-local inputs: Django reads and shows them in the active
time zone, which the viewer-time-zone middleware sets, and stores UTC.
The rules themselves (dates in order, positive limits) are checked by
``databoard.services``, which the API shares.
"""
from django import forms

from databoard.models import Event
from databoard.services.events import EDITABLE_FIELDS
from datarun.states import RunState

DATE_FIELDS = ("opens_at", "public_opens_at", "closes_at")


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class EventRulesForm(forms.ModelForm):
    """Every field an event admin may change (``EDITABLE_FIELDS``).

    Bind it without ``instance`` (pass the event's values as ``initial``):
    validation would otherwise write the posted values into the event.
    """

    class Meta:
        model = Event
        fields = EDITABLE_FIELDS
        widgets = {name: LocalDateTimeInput() for name in DATE_FIELDS}
        widgets["description"] = forms.Textarea(attrs={"rows": 8})
        labels = {
            "is_public": "Listed", "opens_at": "Opens", "public_opens_at": "Collaborative from",
            "closes_at": "Closes", "min_submission_interval_s": "Seconds between submissions",
            "max_submissions_per_day": "Submissions per day", "is_competitive": "Competition",
            "signup_requires_approval": "Sign-ups need approval",
            "fold_time_limit_s": "Fold time limit (s)",
            "fold_memory_limit_mb": "Fold memory limit (MB)", "fold_cpus": "CPUs per fold",
        }


class EventCreateForm(EventRulesForm):
    problem_name = forms.ChoiceField(label="Problem")

    class Meta(EventRulesForm.Meta):
        fields = ("name", "problem_name", *EDITABLE_FIELDS)
        help_texts = {"name": "the event's address: /events/<name>/ (letters, digits, - and _)"}

    def __init__(self, *args, problems: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["problem_name"].choices = [(name, name) for name in problems]
        self.fields["title"].required = False
        self.fields["title"].help_text = "empty: the name"


class KitUploadForm(forms.Form):
    kit = forms.FileField(label="RAMP kit (zip)",
                          help_text="the kit's folder zipped: problem.py, data/, submissions/, "
                                    "README.md")
    name = forms.SlugField(max_length=100, label="Event name",
                           help_text="the event's and the problem's name: /events/<name>/ "
                                     "(letters, digits, - and _)")
    title = forms.CharField(max_length=200, required=False,
                            help_text="empty: the kit's problem_title")


class AccountsImportForm(forms.Form):
    csv_file = forms.FileField(label="CSV file", required=False,
                               help_text="columns username,email and optionally team; "
                                         "UTF-8, comma, semicolon or tab separated")
    csv_text = forms.CharField(label="or paste it", required=False,
                               widget=forms.Textarea(attrs={"rows": 6, "placeholder":
                                   "username,email,team\nada,ada@example.org,red"}))
    event = forms.ChoiceField(required=False, help_text="sign them up to this event, each in "
                                                        "their team (or alone)")
    send_invitations = forms.BooleanField(
        required=False, initial=True, label="E-mail each a link to set a password")

    def __init__(self, *args, events: list[str], superuser: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = ([("", "none")] if superuser else []) + \
            [(name, name) for name in events]
        self.fields["event"].required = not superuser

    def clean(self):
        data = super().clean()
        upload = data.get("csv_file")
        if upload is not None:
            if upload.size > 2 * 1024 * 1024:
                raise forms.ValidationError("the CSV is over 2 MiB: split it")
            try:
                data["csv_text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("the CSV is not UTF-8 text: save it as "
                                            "\"CSV UTF-8\"") from exc
        if not (data.get("csv_text") or "").strip():
            raise forms.ValidationError("choose a CSV file or paste its rows")
        return data


class SubmissionFilterForm(forms.Form):
    state = forms.ChoiceField(required=False,
                              choices=[("", "any state"), *RunState.choices])
