"""The web sandbox's form: one editor per submission file and the submission's name."""
from django import forms


class SandboxForm(forms.Form):
    """The files of the team's sandbox, as posted by the editors (``file-<name>``),
    with the name of the submission to make from them."""

    name = forms.CharField(max_length=100, required=False, label="Submission name")

    def __init__(self, *args, files: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.file_fields = []
        for file_name, content in files.items():
            key = f"file-{file_name}"
            self.fields[key] = forms.CharField(
                required=False, strip=False, initial=content, label=file_name,
                widget=forms.Textarea(attrs={"data-editor": "", "spellcheck": "false",
                                             "rows": 20, "cols": 100}))
            self.file_fields.append((file_name, key))

    def posted_files(self) -> dict[str, str]:
        """The files the request carried (a missing field leaves its file as saved).
        Browsers send text areas with CRLF line ends; files keep LF."""
        return {file_name: self.cleaned_data[key].replace("\r\n", "\n")
                for file_name, key in self.file_fields if key in self.data}

    def editors(self):
        """(file name, bound field) pairs, in the workflow's order."""
        return [(file_name, self[key]) for file_name, key in self.file_fields]
