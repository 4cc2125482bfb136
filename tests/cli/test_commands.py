"""The ``datarun`` command against a live server with a real worker: log in,
download the starting kit, submit it and see it scored, read the status, the
leaderboard and the logs; and each way a command can fail, with its exit code."""
import csv
import io
import json
import shutil
import stat
import zipfile

import pytest

from databoard.models import Team
from tests.cli.conftest import PASSWORD, participant
from tests.conftest import EXAMPLES, free_port
from tests.integration.helpers import make_event

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PRINTING_KIT_LINE = "building the iris estimator"


def test_participant_journey(cli):
    participant(make_event(EXAMPLES / "iris", "iris-cli"))

    login = cli("login", cli.url, "--username", "alice", "--password-stdin",
                input=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    assert login.stdout == ""
    assert "Logged in" in login.stderr
    config = cli.config_home / "datarun" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["url"] == cli.url

    events = cli("events")
    assert events.returncode == 0, events.stderr
    assert "iris-cli" in events.stdout
    assert [e["name"] for e in json.loads(cli("events", "--json").stdout)] == ["iris-cli"]

    kit = cli("download-kit", "iris-cli", "--dest", "kit")
    assert kit.returncode == 0, kit.stderr
    root = cli.cwd / "kit" / "iris-cli"
    assert (root / "problem.py").is_file()
    assert (root / "data" / "train.csv").is_file()
    # A public test set carved from the training data, never the private test data.
    assert (root / "data" / "test.csv").read_bytes() != (
        EXAMPLES / "iris" / "data" / "test.csv").read_bytes()
    assert json.loads((root / "public_split.json").read_text())["source"] == "carved"
    starting_kit = root / "submissions" / "starting_kit"
    assert (starting_kit / "estimator.py").is_file()
    assert f"datarun submit {starting_kit.relative_to(cli.cwd)}" in kit.stderr
    again = cli("download-kit", "iris-cli", "--dest", "kit")  # would overwrite an edited kit
    assert again.returncode == 2
    assert "exist already" in again.stderr and "--force" in again.stderr
    assert cli("download-kit", "iris-cli", "--dest", "kit", "--force").returncode == 0

    submit = cli("submit", str(starting_kit), "--event", "iris-cli", "--name", "first")
    assert submit.returncode == 0, submit.stderr
    assert "Submitted first to iris-cli" in submit.stderr
    assert "first (submission" in submit.stdout and "scored" in submit.stdout
    for score in ("acc", "error", "nll"):
        assert score in submit.stdout
    assert "valid bagged" in submit.stdout
    assert "queued" in submit.stderr or "running" in submit.stderr  # progress on stderr

    status = cli("status")
    assert status.returncode == 0, status.stderr
    assert "first" in status.stdout and "scored" in status.stdout
    mine = json.loads(cli("status", "--event", "iris-cli", "--json").stdout)
    assert [(s["name"], s["state"]) for s in mine] == [("first", "scored")]
    assert json.loads(cli("status", "--event", "other", "--json").stdout) == []

    # The starting kit prints nothing: logs say so instead of printing nothing at all.
    quiet = cli("logs", str(mine[0]["id"]))
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert "its code printed nothing" in quiet.stderr

    Team.objects.filter(event__name="iris-cli").update(name="the [red]best[/red] team")
    board = cli("leaderboard", "iris-cli")
    assert board.returncode == 0, board.stderr
    assert "first" in board.stdout and "acc valid" in board.stdout
    assert "the [red]best[/red] team" in board.stdout  # shown as written, not as markup
    rows = json.loads(cli("leaderboard", "iris-cli", "--kind", "mean", "--json").stdout)
    assert rows["kind"] == "mean"
    assert [(r["rank"], r["submission"]) for r in rows["rows"]] == [(1, "first")]
    graded = cli("leaderboard", "iris-cli", "--csv")
    assert graded.returncode == 0, graded.stderr
    (row,) = csv.DictReader(io.StringIO(graded.stdout))
    assert (row["rank"], row["members"], row["submission"]) == ("1", "alice", "first")
    assert 0.5 < float(row["acc_valid_bagged"]) <= 1


def test_logs_show_what_the_submission_printed(cli):
    participant(make_event(EXAMPLES / "iris", "iris-logs"))
    cli.login()
    folder = cli.cwd / "printing"
    shutil.copytree(EXAMPLES / "iris" / "submissions" / "starting_kit", folder)
    code = (folder / "estimator.py").read_text()
    (folder / "estimator.py").write_text(code.replace(
        "def get_estimator():\n",
        f"def get_estimator():\n    print({PRINTING_KIT_LINE!r}, flush=True)\n"))

    submit = cli("submit", str(folder), "--event", "iris-logs", "--name", "printing", "--logs")
    assert submit.returncode == 0, submit.stderr
    assert PRINTING_KIT_LINE in submit.stderr  # streamed while it ran
    submission_id = json.loads(cli("status", "--json").stdout)[0]["id"]

    logs = cli("logs", str(submission_id))
    assert logs.returncode == 0, logs.stderr
    assert f"fold 0 | {PRINTING_KIT_LINE}" in logs.stdout
    page = json.loads(cli("logs", str(submission_id), "--json").stdout)
    assert page["finished"] is True
    assert {line["fold"] for line in page["lines"]
            if line["text"].strip() == PRINTING_KIT_LINE} == set(range(5))

    follow = cli("logs", str(submission_id), "--follow", "--json")
    assert follow.returncode == 0, follow.stderr
    lines = [json.loads(line) for line in follow.stdout.splitlines()]
    assert [line["seq"] for line in lines] == [line["seq"] for line in page["lines"]]

    runs = cli("runs", str(submission_id))
    assert runs.returncode == 0, runs.stderr
    (run,) = json.loads(cli("runs", str(submission_id), "--json").stdout)
    assert run["current"] and run["kind"] == "run" and run["state"] == "scored"
    assert f"{run['id']} *" in runs.stdout
    by_run = cli("logs", str(submission_id), "--run", str(run["id"]))
    assert by_run.stdout == logs.stdout
    no_run = json.loads(cli("logs", str(submission_id), "--run", "999999", "--json").stdout)
    assert no_run["error"]["code"] == "not_found"


def test_failing_submission_exits_1_with_its_traceback(cli):
    participant(make_event(EXAMPLES / "iris", "iris-fail"))
    cli.login()
    result = cli("submit", str(EXAMPLES / "iris" / "submissions" / "error_in_fit"),
                 "--event", "iris-fail", "--name", "broken", "--json")
    assert result.returncode == 1, result.stderr
    detail = json.loads(result.stdout)  # --json: only JSON on stdout
    assert detail["state"] == "error"
    assert "this estimator always fails in fit" in result.stderr
    assert "Traceback" in result.stderr and "estimator.py" in result.stderr


def test_submission_too_soon_exits_5_with_the_servers_message(cli):
    participant(make_event(EXAMPLES / "iris", "iris-slow", min_submission_interval_s=3600))
    cli.login()
    starting_kit = str(EXAMPLES / "iris" / "submissions" / "starting_kit")
    first = cli("submit", starting_kit, "--event", "iris-slow", "--name", "a", "--no-wait",
                "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["name"] == "a"

    second = cli("submit", starting_kit, "--event", "iris-slow", "--name", "b")
    assert second.returncode == 5, second.stderr
    assert "the minimum time between two submissions of a team is 1 h" in second.stderr
    assert "next submission is allowed from" in second.stderr

    again = cli("submit", starting_kit, "--event", "iris-slow", "--name", "b", "--json")
    assert again.returncode == 5
    assert json.loads(again.stdout)["error"]["details"]["rule"] == "min_interval"


def test_refusals_and_their_exit_codes(cli, tmp_path):
    participant(make_event(EXAMPLES / "iris", "iris-codes"))

    not_logged_in = cli("status")
    assert not_logged_in.returncode == 3
    assert "datarun login" in not_logged_in.stderr

    wrong = cli("login", cli.url, "--username", "alice", "--password-stdin",
                input="not-the-password\n")
    assert wrong.returncode == 3
    assert "wrong username or password" in wrong.stderr

    no_scheme = cli("login", "127.0.0.1:8000", "--token", "t")
    assert no_scheme.returncode == 2
    assert "must start with http:// or https://" in no_scheme.stderr

    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = cli("login", nowhere, "--username", "alice", "--password-stdin",
                      input=PASSWORD + "\n")
    assert unreachable.returncode == 6
    assert nowhere in unreachable.stderr

    bad_token = cli("login", cli.url, "--token", "0" * 40)
    assert bad_token.returncode == 3

    cli.login()
    unknown = cli("download-kit", "no-such-event")
    assert unknown.returncode == 4
    assert "no-such-event" in unknown.stderr
    assert cli("leaderboard", "no-such-event").returncode == 4
    assert json.loads(cli("leaderboard", "no-such-event", "--json").stdout)["error"]["code"] \
        == "not_found"

    empty = tmp_path / "empty"
    empty.mkdir()
    missing = cli("submit", str(empty), "--event", "iris-codes", "--name", "x")
    assert missing.returncode == 2
    assert "estimator.py" in missing.stderr

    bad_name = cli("submit", str(EXAMPLES / "iris" / "submissions" / "starting_kit"),
                   "--event", "iris-codes", "--name", "../x")
    assert bad_name.returncode == 2
    assert "a submission name is" in bad_name.stderr

    archive = tmp_path / "kit.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py",
                  "estimator.py")
    zipped = cli("submit", str(archive), "--event", "iris-codes", "--name", "zipped",
                 "--no-wait", "--json")
    assert zipped.returncode == 0, zipped.stderr
    assert json.loads(zipped.stdout)["state"] in ("new", "queued", "running")

    usage = cli("submit", str(empty))  # typer's own usage error: --event is missing
    assert usage.returncode == 2

    help_text = cli("--help").stdout
    assert "Exit codes" in help_text and "6 server unreachable" in help_text


def test_an_event_admin_reproduces_a_scored_submission(cli):
    event = make_event(EXAMPLES / "iris", "iris-repro")
    alice = participant(event)
    organiser = participant(event, username="organiser")
    event.admins.add(organiser)
    cli.login()
    kit = EXAMPLES / "iris" / "submissions" / "starting_kit"
    submitted = cli("submit", str(kit), "--event", "iris-repro", "--name", "first", "--json")
    assert submitted.returncode == 0, submitted.stderr
    submission = json.loads(submitted.stdout)["id"]
    refused = cli("reproduce", str(submission))  # alice is no event admin
    assert refused.returncode == 3 and "only an admin" in refused.stderr
    cli.login("organiser")
    reproduced = cli("reproduce", str(submission))
    assert reproduced.returncode == 0, reproduced.stderr
    assert "identical: every fold's predictions are the same" in reproduced.stdout
    assert reproduced.stdout.count("identical") >= 11  # 5 folds x 2 + the verdict
    runs = json.loads(cli("runs", str(submission), "--json").stdout)
    assert [(r["kind"], r["current"], r["started_by"]) for r in runs] == [
        ("reproduction", False, "organiser"), ("run", True, alice.username)]
