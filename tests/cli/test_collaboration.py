"""The collaborative phase from the ``datarun`` command and the Python client,
against a live server: read another team's code, diff it with your own,
import it, submit with ``datarun submit``: the import is credited."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from databoard import services
from datarun.client import Client, NotFoundError
from tests.cli.conftest import PASSWORD, participant
from tests.conftest import EXAMPLES
from tests.integration.helpers import make_event

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()
ALICES = STARTING_KIT.replace(b"StandardScaler()", b"StandardScaler(with_mean=False)")


def test_read_diff_import_and_submit_from_the_command_line(cli):
    event = make_event(EXAMPLES / "iris", "iris-collab",
                       public_opens_at=timezone.now() - timedelta(hours=1))
    alice, bob = participant(event, "alice"), participant(event, "bob")
    theirs = services.submission_create(event=event, user=alice, name="alices",
                                        files={"estimator.py": ALICES}).id
    mine = services.submission_create(event=event, user=bob, name="bobs",
                                      files={"estimator.py": STARTING_KIT}).id
    cli.login("bob")

    code = cli("code", str(theirs))
    assert code.returncode == 0, code.stderr
    assert "==> alice/alices/estimator.py <==" in code.stdout
    assert "StandardScaler(with_mean=False)" in code.stdout

    diff = cli("diff", str(theirs), "--against", str(mine))
    assert diff.returncode == 0, diff.stderr
    assert "+    return make_pipeline(StandardScaler(with_mean=False), " in diff.stdout

    imported = cli("import", str(theirs), "--dest", "mine")
    assert imported.returncode == 0, imported.stderr
    assert (cli.cwd / "mine" / "estimator.py").read_bytes() == ALICES
    assert "next submission credits alice's alices" in imported.stderr
    again = cli("import", str(theirs), "--dest", "mine")  # would overwrite edited files
    assert again.returncode == 2 and "--force" in again.stderr

    submit = cli("submit", "mine", "--event", "iris-collab", "--name", "reused", "--no-wait",
                 "--json")
    assert submit.returncode == 0, submit.stderr
    reused = json.loads(submit.stdout)["id"]
    credits = json.loads(cli("credits", str(reused), "--json").stdout)
    assert [(c["id"], c["team"]) for c in credits["credits"]] == [(theirs, "alice")]
    shown = cli("credits", str(theirs))
    assert shown.returncode == 0, shown.stderr
    assert "reused by" in shown.stdout and str(reused) in shown.stdout

    # The Python client sees the same; a submission it may not read is "not found".
    client = Client(cli.url)
    client.login("alice", PASSWORD)
    assert [s["id"] for s in client.credits(theirs)["reused_by"]] == [reused]
    assert client.diff(reused, against=theirs)["files"][0]["changed"] is False
    with pytest.raises(NotFoundError):
        client.code(10**9)
    assert cli("code", str(10**9)).returncode == 4
