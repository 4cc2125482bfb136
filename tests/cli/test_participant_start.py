"""A participant's first steps from a terminal, against a live server: sign
up, form a team, ``datarun init`` (download the kit and run it once), test
exactly what was downloaded (``datarun test`` and the kit's own
``ramp-test``), and a submission whose code does not compile refused before
anything is queued or counted."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from databoard.models import Submission, Team
from tests.cli.conftest import PASSWORD, Cli, participant
from tests.conftest import EXAMPLES
from tests.databoard.test_api import submit_scored
from tests.integration.helpers import make_event

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BROKEN = "from sklearn.ensemble import RandomForestClassifier\n\ndef get_estimator(:\n"


def account(username: str):
    """A user who has not signed up to anything, whose password the live server checks."""
    hasher = PBKDF2PasswordHasher()
    return get_user_model().objects.create(
        username=username, password=hasher.encode(PASSWORD, hasher.salt()))


def test_init_signs_up_downloads_the_kit_and_scores_it_on_the_public_split(cli):
    make_event(EXAMPLES / "iris", "iris-init")
    account("alice")
    cli.login()

    init = cli("init", "iris-init", "--dest", "kit", timeout=400)

    assert init.returncode == 0, init.stderr
    assert "Signed up to iris-init as team alice" in init.stderr
    assert Team.objects.get(event__name="iris-init").name == "alice"
    assert "Bagged scores" in init.stdout and "test" in init.stdout
    assert "public test set (24 rows" in init.stderr
    assert "datarun submit kit/iris-init/submissions/starting_kit" in init.stderr
    kit = cli.cwd / "kit" / "iris-init"

    # `datarun test` on exactly what was downloaded: the public split's scores.
    tested = cli("test", str(kit), "--json", timeout=400)
    assert tested.returncode == 0, tested.stderr
    report = json.loads(tested.stdout)
    assert report["public_split"]["source"] == "carved"
    assert report["public_split"]["n_test"] == 24
    assert report["state"] == "scored"
    assert 0.8 < report["scores"]["acc"]["test"]["bagged"] <= 1.0

    # ... and the kit's own ramp-test, as its README says.
    ramp_test = subprocess.run(
        [str(Path(sys.executable).parent / "ramp-test"), "--submission", "starting_kit",
         "--quick-test"], cwd=kit, capture_output=True, text=True, timeout=400)
    assert ramp_test.returncode == 0, ramp_test.stdout + ramp_test.stderr
    assert "Bagged scores" in ramp_test.stdout and "test" in ramp_test.stdout

    again = cli("init", "iris-init", "--dest", "kit")  # signed up already, the kit is there
    assert again.returncode == 2
    assert "exist already" in again.stderr and "Signed up" not in again.stderr


def test_signup_and_a_team_from_the_cli(cli, tmp_path):
    make_event(EXAMPLES / "iris", "iris-teams", max_team_size=2)
    account("alice")
    account("bob")
    bob = Cli(cli.url, tmp_path / "bob-config", cli.cwd)
    cli.login()
    bob.login("bob")

    signup = cli("signup", "iris-teams")
    assert signup.returncode == 0, signup.stderr
    assert "Signed up to iris-teams as team alice: you may submit now" in signup.stderr
    again = cli("signup", "iris-teams")  # one team per user and event: the same one
    assert again.returncode == 0 and "as team alice" in again.stderr
    renamed = cli("team", "rename", "iris-teams", "red pandas")
    assert renamed.returncode == 0, renamed.stderr
    assert "Team red pandas in iris-teams (approved): alice" in renamed.stderr

    invited = cli("team", "invite", "iris-teams", "bob", "--json")
    assert invited.returncode == 0, invited.stderr
    invitation = json.loads(invited.stdout)["id"]
    listed = bob("team", "invitations")
    assert "red pandas" in listed.stdout and "alice" in listed.stdout
    accepted = bob("team", "accept", str(invitation))
    assert accepted.returncode == 0, accepted.stderr
    assert "You joined red pandas" in accepted.stderr
    shown = json.loads(cli("team", "show", "iris-teams", "--json").stdout)
    assert sorted(shown["members"]) == ["alice", "bob"]

    left = bob("team", "leave", "iris-teams")
    assert left.returncode == 0, left.stderr
    assert json.loads(cli("team", "show", "iris-teams", "--json").stdout)["members"] == ["alice"]
    assert bob("team", "show", "iris-teams").returncode == 4
    assert bob("team", "accept", str(invitation)).returncode in (2, 4)  # used up


def test_a_syntax_error_is_refused_before_queueing_and_not_counted(cli):
    make_event(EXAMPLES / "iris", "iris-syntax", max_submissions_per_day=1)
    account("alice")
    cli.login()
    assert cli("signup", "iris-syntax").returncode == 0
    broken = cli.cwd / "broken"
    broken.mkdir()
    (broken / "estimator.py").write_text(BROKEN)

    local = cli("submit", str(broken), "--event", "iris-syntax", "--name", "broken")
    assert local.returncode == 2
    assert "estimator.py, line 3: " in local.stderr and "def get_estimator(:" in local.stderr
    assert not Submission.objects.exists()

    # The server refuses it too (a client that does not check), and keeps no trace.
    from datarun.client import Client
    client = Client(cli.url)
    client.login("alice", PASSWORD)
    response = client._session.post(
        f"{cli.url}/api/v1/events/iris-syntax/submissions/",
        headers={"Authorization": f"Token {client.token}"},
        data={"name": "broken"}, files=[("files", ("estimator.py", BROKEN.encode()))])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"] == {"file": "estimator.py", "line": 3,
                                "message": error["details"]["message"]}
    assert "estimator.py, line 3" in error["message"] and "not counted" in error["message"]
    assert not Submission.objects.exists()

    # The day's one submission is still there for working code.
    good = cli("submit", str(EXAMPLES / "iris" / "submissions" / "starting_kit"),
               "--event", "iris-syntax", "--name", "working", "--no-wait")
    assert good.returncode == 0, good.stderr


def test_the_team_rank_over_time_from_the_cli(live_server_process, no_worker, tmp_path):
    """Scores from the scorer's signal on committed rows (no worker runs)."""
    event = make_event(EXAMPLES / "iris", "iris-rank")
    alice = participant(event, "alice")
    submit_scored(event, "", valid=0.80, name="a1", user=alice)
    submit_scored(event, "bob", valid=0.90, name="b1")
    submit_scored(event, "", valid=0.95, name="a2", user=alice)
    (tmp_path / "work").mkdir()
    cli = Cli(live_server_process.url, tmp_path / "config", tmp_path / "work")
    cli.login()

    shown = cli("team", "history", "iris-rank")

    assert shown.returncode == 0, shown.stderr
    rows = [line.split("│") for line in shown.stdout.splitlines() if "│" in line]  # not ┃ heads
    assert [[cell.strip() for cell in row[2:6]] for row in rows] == [
        ["1", "1", "0.800", "a1"], ["2", "2", "0.800", "a1"], ["1", "2", "0.950", "a2"]]
    history = json.loads(cli("team", "history", "iris-rank", "--json").stdout)
    assert [p["rank"] for p in history["points"]] == [1, 2, 1]
    assert [s["submission"] for s in history["submissions"]] == ["a1", "a2"]
