"""Participant pages: the event list and page, the starting kit, the sandbox.

Through the real URLconf and PostgreSQL; submissions are created for real and
stay queued (their tasks go out on commit, which these tests never reach).
"""
import io
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from databoard import services
from databoard.models import Event, SandboxFile, SandboxImport, Submission
from databoard.views.events import _sandbox_split
from datarun import services as datarun_services
from datarun.models import Evaluation
from datarun.selectors import evaluation_files, problem_summary
from tests.conftest import EXAMPLES, ROOT
from tests.databoard.test_api import (
    EVENT,
    STARTING_KIT,
    make_event,
    make_user,
    signed_up,
    submit_scored,
)

pytestmark = pytest.mark.django_db

SANDBOX = f"/events/{EVENT}/sandbox/"
MY_ESTIMATOR = STARTING_KIT.decode() + "\n# edited in the sandbox\n"


@pytest.fixture
def event():
    return make_event(min_submission_interval_s=900, max_submissions_per_day=5,
                      is_competitive=True, signup_requires_approval=True, max_team_size=3,
                      fold_time_limit_s=90,
                      description="# Iris\n\nPredict the **species**.\n\n"
                                  "<script>alert('pwned')</script>")


def _superuser():
    user = get_user_model().objects.filter(username="root").first()
    return user or get_user_model().objects.create_superuser("root", password="pw-root-1234")


def approved(username: str, event):
    """A participant whose sign-up (the event needs approval) was approved."""
    user = signed_up(username, event)
    services.signup_approve(team_id=services.team_of(event=event, user=user).id,
                            user=_superuser())
    return user


@pytest.fixture
def alice(event, client):
    user = approved("alice", event)
    client.force_login(user)
    return user


def _text(response) -> str:
    return response.content.decode()


# --- home and the event list ---------------------------------------------------

def test_home_redirects_to_the_events(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/events/"


def test_event_list_shows_visible_events_with_their_state_and_counts(client, event, alice):
    Event.objects.create(name="hidden-event", title="hidden-event", problem_name="iris",
                         is_public=False)
    Event.objects.create(name="upcoming-event", title="upcoming-event", problem_name="iris",
                         opens_at=timezone.now() + timedelta(days=3))

    page = _text(client.get("/events/"))

    assert f'href="/events/{EVENT}/"' in page
    assert "upcoming-event" in page and "upcoming" in page
    assert "hidden-event" not in page
    # iris-2025: alice's team, no submission yet.
    row = page[page.index(f'href="/events/{EVENT}/"'):]
    row = row[:row.index("</tr>")]
    assert ">open<" in row
    assert '<td class="num">1</td>' in row and '<td class="num">0</td>' in row


def test_event_dates_are_shown_in_the_viewer_time_zone(client):
    make_event(opens_at=datetime(2030, 1, 15, 12, 0, tzinfo=UTC))
    client.cookies["tz"] = "Asia/Tokyo"

    page = _text(client.get(f"/events/{EVENT}/"))

    assert "2030-01-15 21:00 JST" in page
    assert "Asia/Tokyo" in page


def test_pages_load_nothing_from_another_host(client, event):
    event.description = ("![pixel](https://tracker.example/p.png) ![proto](//tracker.example/p.png)"
                         " ![logo](/static/databoard/logo.png)")
    event.save(update_fields=["description"])
    response = client.get(f"/events/{EVENT}/")
    page = _text(response)
    assert "tracker.example" not in page  # the remote images lost their source
    assert 'src="/static/databoard/logo.png"' in page
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "frame-ancestors 'none'" in policy and "http" not in policy
    assert client.get("/api/v1/events/")["Content-Security-Policy"] == policy


def test_event_page_shows_rules_problem_and_sanitised_description(client, event):
    response = client.get(f"/events/{EVENT}/")

    assert response.status_code == 200
    page = _text(response)
    assert "<h1>Iris</h1>" in page and "<strong>species</strong>" in page
    assert "<script>alert" not in page
    for rule in ("15 min", "5 submissions per team in any 24 hours",
                 "each team selects one submission", "required: an event admin approves",
                 "Maximum team size</dt><dd>3</dd>", "wall time 90.00 s",
                 "bagged (RAMP"):
        assert rule in page, rule
    assert "<code>estimator.py</code>" in page
    assert "<td>acc <strong>(official)</strong></td><td>higher</td>" in page
    assert "<td>nll</td><td>lower</td>" in page
    assert "120 training rows" in page and "5 cross-validation folds" in page
    # Hashes on one line: 12 characters shown, the whole in the title and a copy box.
    for key in ("data_hash", "folds_hash"):
        full = problem_summary("iris")[key]
        assert f'<code title="{full}">{full[:12]}…</code>' in page
        assert f'value="{full}"' in page
    assert f'href="/events/{EVENT}/starting-kit.zip"' in page
    assert f'href="/events/{EVENT}/leaderboard/"' in page
    # Anonymous: a log-in link, no sign-up form.
    assert "/accounts/login/?next=" in page
    assert f'action="/events/{EVENT}/signup/"' not in page


def test_event_page_is_a_competition_page_with_public_data(client, event):
    page = _text(client.get(f"/events/{EVENT}/"))
    for section in ("overview", "data", "evaluation", "rules", "leaderboard"):
        assert f'href="#{section}"' in page and f'id="{section}"' in page, section
    # Rows per split and the training labels' classes, for anyone who sees the event.
    assert "<tr><td>train</td><td class=\"num\">120</td></tr>" in page
    assert "<tr><td>test</td><td class=\"num\">30</td></tr>" in page
    classes = page[page.index('id="target-classes"'):]
    classes = classes[:classes.index("</table>")]
    for species in ("setosa", "versicolor", "virginica"):
        assert f"<tr><td>{species}</td><td class=\"num\">40</td><td class=\"num\">33.3 %</td>" \
            in classes, species
    assert "No submission scored yet" in page


def test_event_page_shows_the_top_of_the_public_leaderboard(client, event):
    event.signup_requires_approval = False
    event.save(update_fields=["signup_requires_approval"])
    submit_scored(event, "bob", valid=0.875, test=0.5, name="first")
    page = _text(client.get(f"/events/{EVENT}/"))
    top = page[page.index('id="leaderboard-top"'):]
    assert "<td>bob</td><td>first</td><td class=\"num\">0.875</td>" in top


def test_event_page_offers_the_signup_then_shows_the_team(client, event):
    user = make_user("bob")
    client.force_login(user)
    page = _text(client.get(f"/events/{EVENT}/"))
    assert f'action="/events/{EVENT}/signup/"' in page
    assert "csrfmiddlewaretoken" in page

    services.event_signup(event=event, user=user)
    page = _text(client.get(f"/events/{EVENT}/"))
    assert f'action="/events/{EVENT}/signup/"' not in page
    assert "awaits an event admin's approval" in page
    assert SANDBOX not in page


def test_unlisted_event_is_404_for_outsiders(client):
    make_event(is_public=False)
    client.force_login(make_user("eve"))
    assert client.get(f"/events/{EVENT}/").status_code == 404
    assert client.get(f"/events/{EVENT}/starting-kit.zip").status_code == 404
    assert client.get("/events/no-such-event/").status_code == 404


def test_the_event_page_says_the_kit_runs_as_downloaded(client, event):
    page = _text(client.get(f"/events/{EVENT}/"))

    hint = page[page.index('id="kit-hint"'):]
    assert "<code>datarun test iris</code>" in hint and "ramp-test" in hint
    assert f"<code>datarun init {EVENT}</code>" in hint


def test_the_site_serves_its_own_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert '<link rel="icon" href="/favicon.ico">' in _text(client.get("/events/"))


def test_the_time_zone_is_named_once_per_page(client, event):
    for url in ("/events/", f"/events/{EVENT}/", f"/events/{EVENT}/leaderboard/"):
        page = _text(client.get(url))
        assert page.lower().count("times in") + page.count("Times are shown in") == 1, url


# --- the starting kit ------------------------------------------------------------

def test_starting_kit_zip_holds_the_kit_and_never_the_test_data(client, event):
    response = client.get(f"/events/{EVENT}/starting-kit.zip")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"{EVENT}-starting-kit.zip" in response["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "iris/problem.py" in names
    assert "iris/submissions/starting_kit/estimator.py" in names
    assert "iris/data/train.csv" in names
    # A public test set carved from the training data, never the private one.
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    public_test = archive.read("iris/data/test.csv")
    assert public_test != (EXAMPLES / "iris" / "data" / "test.csv").read_bytes()
    train_rows = set((EXAMPLES / "iris" / "data" / "train.csv").read_text().splitlines())
    assert set(public_test.decode().splitlines()) <= train_rows
    assert set(archive.read("iris/data/train.csv").decode().splitlines()[1:]).isdisjoint(
        public_test.decode().splitlines()[1:])
    record = json.loads(archive.read("iris/public_split.json"))
    assert record["source"] == "carved" and record["n_test"] == 24
    assert zipfile.ZipFile(io.BytesIO(response.content)).read(
        "iris/submissions/starting_kit/estimator.py") == STARTING_KIT


# --- the sandbox -------------------------------------------------------------------

def test_sandbox_starts_from_the_starting_kit_with_codemirror(client, alice):
    response = client.get(SANDBOX)

    assert response.status_code == 200
    page = _text(response)
    assert 'name="file-estimator.py"' in page and "data-editor" in page
    assert "def get_estimator():" in page  # the starting kit's estimator.py
    assert "databoard/sandbox.js" in page and "codemirror/codemirror.js" in page
    assert "https://" not in page.split("<main>")[1]


def test_sandbox_needs_an_approved_team(client, event):
    assert client.get(SANDBOX).status_code == 302  # log in first
    user = make_user("carol")
    client.force_login(user)
    response = client.get(SANDBOX)
    assert response.status_code == 403
    assert "sign up to" in _text(response)
    services.event_signup(event=event, user=user)
    response = client.get(SANDBOX)
    assert response.status_code == 403
    assert "awaits an event admin" in _text(response)


def test_sandbox_save_then_reload_shows_the_content(client, alice):
    response = client.post(SANDBOX, {"file-estimator.py": "x = 1\r\ny = 2\r\n",
                                     "action": "save"})

    assert response.status_code == 302
    assert SandboxFile.objects.get(file_name="estimator.py").content == "x = 1\ny = 2\n"
    page = _text(client.get(SANDBOX))
    assert "x = 1\ny = 2" in page
    assert "Sandbox saved." in page


def test_sandbox_refuses_a_file_over_the_limit(client, alice, settings):
    settings.DATARUN_MAX_SUBMISSION_FILE_BYTES = 100
    response = client.post(SANDBOX, {"file-estimator.py": "#" * 101, "action": "save"})

    assert response.status_code == 400
    assert "the limit is 100 bytes per file" in _text(response)
    assert not SandboxFile.objects.exists()


def test_upload_replaces_the_file_it_names(client, alice):
    upload = SimpleUploadedFile("estimator.py", b"uploaded = True\n")
    response = client.post(f"{SANDBOX}upload/", {"file": upload})

    assert response.status_code == 302
    assert "uploaded = True" in _text(client.get(SANDBOX))


@pytest.mark.parametrize(("file_name", "message"), [
    (".estimator.py", "is a dot-file"),
    ("model.py", "is not a file of this problem"),
])
def test_upload_with_a_bad_name_is_refused(client, alice, file_name, message):
    upload = SimpleUploadedFile(file_name, b"x = 1\n")
    response = client.post(f"{SANDBOX}upload/", {"file": upload})

    assert response.status_code == 400
    assert message in _text(response)
    assert not SandboxFile.objects.exists()


def test_upload_name_is_checked_as_sent_not_as_django_would_clean_it(client, alice):
    """Django would turn ``../estimator.py`` into ``estimator.py``; the API
    refuses it, and so does the page."""
    boundary = "BoUnDaRy"
    body = (f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="../estimator.py"\r\n'
            "Content-Type: text/x-python\r\n\r\n"
            "x = 1\n\r\n"
            f"--{boundary}--\r\n").encode()
    response = client.generic("POST", f"{SANDBOX}upload/", body,
                              content_type=f"multipart/form-data; boundary={boundary}")

    assert response.status_code == 400
    assert "is a path" in _text(response)
    assert not SandboxFile.objects.exists()


def test_upload_over_the_size_limit_is_refused(client, alice, settings):
    settings.DATARUN_MAX_SUBMISSION_FILE_BYTES = 100
    upload = SimpleUploadedFile("estimator.py", b"#" * 101)
    response = client.post(f"{SANDBOX}upload/", {"file": upload})

    assert response.status_code == 400
    assert "the limit is 100 bytes per file" in _text(response)


def test_upload_needs_the_csrf_token_in_its_body(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    upload = SimpleUploadedFile("estimator.py", b"x = 1\n")
    assert strict.post(f"{SANDBOX}upload/", {"file": upload}).status_code == 403
    assert not SandboxFile.objects.exists()

    strict.get(SANDBOX)  # sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    upload = SimpleUploadedFile("estimator.py", b"x = 1\n")
    response = strict.post(f"{SANDBOX}upload/", {"file": upload, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert SandboxFile.objects.get().content == "x = 1\n"


@pytest.fixture
def external_data_event(tmp_path):
    """An event on the corpus's external-data kit: its submissions carry
    estimator.py and a ~1 MB external_data.csv."""
    kit_dir = tmp_path / "external_data"
    shutil.copytree(ROOT / "tests" / "conformance" / "kits" / "external_data", kit_dir)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit_dir, check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    datarun_services.problem_import_ramp_kit(path=kit_dir)
    event = Event.objects.create(name="external-data", title="external-data",
                                 problem_name="external_data")
    return event, (kit_dir / "submissions" / "starting_kit" / "external_data.csv").read_bytes()


def test_a_data_file_is_a_download_link_not_an_editor_and_the_page_stays_small(
        client, external_data_event):
    event, data = external_data_event
    assert len(data) > 900_000
    user = signed_up("dora", event)
    client.force_login(user)

    response = client.get(f"/events/{event.name}/sandbox/")

    assert response.status_code == 200
    page = _text(response)
    # The code is in an editor, the data file is a link with its size.
    assert 'name="file-estimator.py"' in page
    assert 'name="file-external_data.csv"' not in page
    link = f'href="/events/{event.name}/sandbox/files/external_data.csv"'
    assert link in page
    assert filesizeformat(len(data)) in page  # e.g. 0.9 MB
    assert len(response.content) < 60_000, len(response.content)
    # The link gives the file as it would be submitted.
    download = client.get(f"/events/{event.name}/sandbox/files/external_data.csv")
    assert download.status_code == 200
    assert download.content == data
    assert "attachment" in download["Content-Disposition"]
    assert client.get(f"/events/{event.name}/sandbox/files/other.csv").status_code == 404


def test_the_editors_open_small_text_files_only(settings):
    settings.DATARUN_SANDBOX_EDITOR_MAX_BYTES = 10
    editable, downloads = _sandbox_split({
        "estimator.py": b"x = 1\n", "data.csv": b"a,b\n1,2\n3,4\n",
        "model.npy": b"\x93NUMPY\x01\x00"})
    assert editable == {"estimator.py": "x = 1\n"}
    assert downloads == [{"name": "data.csv", "size": 12, "binary": False},
                         {"name": "model.npy", "size": 8, "binary": True}]


def test_saving_the_editors_keeps_the_data_file_and_a_submission_carries_it(
        client, external_data_event):
    event, data = external_data_event
    user = signed_up("erin", event)
    client.force_login(user)
    sandbox = f"/events/{event.name}/sandbox/"
    code = (ROOT / "tests" / "conformance" / "kits" / "external_data" / "submissions"
            / "starting_kit" / "estimator.py").read_text()

    response = client.post(sandbox, {"file-estimator.py": code + "# tuned\n",
                                     "name": "with-data", "action": "submit"})

    assert response.status_code == 302, _text(response)
    submission = Submission.objects.get(name="with-data")
    files = evaluation_files(submission.evaluation_id)
    assert files["external_data.csv"] == data
    assert files["estimator.py"].decode().endswith("# tuned\n")


def test_submit_from_the_sandbox_creates_a_queued_submission(client, alice):
    response = client.post(SANDBOX, {"file-estimator.py": MY_ESTIMATOR, "name": "mine",
                                     "action": "submit"})

    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/submissions/{submission.id}/"
    assert submission.name == "mine" and submission.submitted_by == alice
    assert Evaluation.objects.get(id=submission.evaluation_id).state == "queued"
    page = _text(client.get(response["Location"]))
    assert "queued" in page and "Submission mine is queued" in page


def test_submit_without_a_name_says_so(client, alice):
    response = client.post(SANDBOX, {"name": "", "action": "submit"})

    assert response.status_code == 400
    assert "a submission name is 1-100 letters" in _text(response)
    assert not Submission.objects.exists()


def test_code_that_does_not_compile_is_refused_before_queueing_and_not_counted(client, alice):
    broken = "def get_estimator(:\n    pass\n"
    response = client.post(SANDBOX, {"file-estimator.py": broken, "name": "broken",
                                     "action": "submit"})

    assert response.status_code == 400
    page = _text(response)
    assert "estimator.py, line 1: " in page and "def get_estimator(:" in page
    assert "nothing was queued and the submission was not counted" in page
    assert not Submission.objects.exists() and not Evaluation.objects.exists()
    # Not counted: the event's 15 minutes between submissions do not start.
    fixed = client.post(SANDBOX, {"file-estimator.py": MY_ESTIMATOR, "name": "fixed",
                                  "action": "submit"})
    assert fixed.status_code == 302
    assert Submission.objects.get().name == "fixed"


def test_second_submission_within_the_interval_is_refused_with_429(client, alice):
    client.post(SANDBOX, {"name": "first", "action": "submit"})
    first = Submission.objects.get()

    response = client.post(SANDBOX, {"file-estimator.py": "kept = 1\n", "name": "second",
                                     "action": "submit"})

    assert response.status_code == 429
    page = _text(response)
    assert "Submission refused" in page
    assert "the minimum time between two submissions of a team is 15 min" in page
    next_at = first.created_at + timedelta(seconds=900)
    assert f"{next_at:%Y-%m-%d %H:%M:%S} UTC" in page  # in the rule's message
    assert "Your team may submit from" in page
    assert 880 <= int(response["Retry-After"]) <= 901
    assert Submission.objects.count() == 1
    # The edits were saved all the same.
    assert "kept = 1" in page


def test_closed_event_refuses_with_403_and_the_closing_time(client, event, alice):
    closes = timezone.now() - timedelta(hours=1)
    event.closes_at = closes
    event.save()

    response = client.post(SANDBOX, {"name": "late", "action": "submit"})

    assert response.status_code == 403
    page = _text(response)
    assert f"the event closed for submissions at {closes:%Y-%m-%d %H:%M:%S} UTC" in page
    assert f"{closes:%Y-%m-%d %H:%M:%S}" in page
    assert not Submission.objects.exists()


def test_pending_imports_are_listed(client, event, alice):
    bob = approved("bob", event)
    source = services.submission_create(event=event, user=bob, name="bobs-forest",
                                        files={"estimator.py": STARTING_KIT})
    SandboxImport.objects.create(team=services.team_of(event=event, user=alice), source=source)

    page = _text(client.get(SANDBOX))

    assert "Code from team bob's submission bobs-forest will be credited" in page
