"""Kit upload (organiser page and API), through the real URLconf, PostgreSQL
and storage. The starting kit's run is queued on commit, which never happens
in these rolled-back tests: it stays queued (its scoring is an integration
test's job)."""
import html
import io
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from databoard.models import Event
from datarun import storage
from datarun.models import Evaluation, Problem
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db


def kit_zip(kit: Path = EXAMPLES / "iris", *, folder: str | None = "iris",
            extra: dict[str, bytes] | None = None, skip=()) -> bytes:
    """The kit's files zipped as an organiser would: in one top folder (or none)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(kit.rglob("*")):
            relative = path.relative_to(kit).as_posix()
            if path.is_file() and "__pycache__" not in relative and relative not in skip:
                archive.write(path, f"{folder}/{relative}" if folder else relative)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root", password="pw-root-1234")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, data: bytes, name: str = "iris-course", file_name="iris.zip"):
    return client.post("/organiser/kits/new/", {
        "kit": SimpleUploadedFile(file_name, data, content_type="application/zip"),
        "name": name, "title": ""})


def problem_dirs() -> set[str]:
    base = storage.root() / "problems"
    return {p.as_posix() for p in base.rglob("*") if p.is_dir()} if base.exists() else set()


def test_an_organiser_uploads_a_kit_and_opens_its_event(root):
    client = client_for(root)
    response = upload(client, kit_zip())
    assert response.status_code == 302
    assert response["Location"] == "/events/iris-course/organise/"
    event = Event.objects.get(name="iris-course")
    assert event.problem_name == "iris-course"
    assert event.title == "Iris species classification"
    assert not event.is_public  # listed once the organiser has checked it
    # The README is the description, rendered on the event page.
    # The README's own top heading is left out: the page shows the title above it.
    assert event.description.startswith("Multiclass classification: predict the species")
    page = client.get("/events/iris-course/").content.decode()
    assert "Multiclass classification: predict the species" in page
    # The report, on the organiser page.
    page = client.get("/events/iris-course/organise/").content.decode()
    assert "Kit import" in page
    assert "120 training, 30 test" in page
    assert "5 cross-validation folds" in page
    assert "<dd>acc (official), error, nll</dd>" in page
    assert "<code>estimator</code>" in page
    # The starting kit's run is queued, on no leaderboard.
    evaluation = Evaluation.objects.get(problem__name="iris-course")
    assert evaluation.state == "queued"
    assert sorted(evaluation.files) == ["estimator.py"]
    assert "state-queued" in page


def test_a_kit_zipped_without_its_folder_is_read_too(root):
    response = upload(client_for(root), kit_zip(folder=None), name="flat")
    assert response.status_code == 302
    assert Problem.objects.get(name="flat").n_train == 120


@pytest.mark.parametrize(("data", "message"), [
    (b"not a zip at all", "is not a zip archive that can be read"),
    (kit_zip(skip=("problem.py",)), "has no problem.py at its top level"),
    (kit_zip(extra={"iris/../../evil.py": b"x"}), "points outside the kit"),
    (kit_zip(extra={"/etc/evil.py": b"x"}), "points outside the kit"),
    (kit_zip(extra={"other/problem.py": b"x"}), "has no problem.py at its top level"),
])
def test_a_malformed_kit_is_refused_with_what_to_fix_and_creates_nothing(root, data, message):
    before = problem_dirs()
    response = upload(client_for(root), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Event.objects.exists() and not Problem.objects.exists()
    assert problem_dirs() == before


def test_a_symbolic_link_in_the_zip_is_refused(root):
    buffer = io.BytesIO(kit_zip())
    with zipfile.ZipFile(buffer, "a") as archive:
        link = zipfile.ZipInfo("iris/data/secret.csv")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    response = upload(client_for(root), buffer.getvalue())
    assert response.status_code == 400
    assert "is a symbolic link" in response.content.decode()
    assert not Problem.objects.exists()


def test_a_kit_over_the_limits_is_refused(root, settings):
    data = kit_zip()
    settings.DATARUN_MAX_KIT_BYTES = len(data) - 1
    response = upload(client_for(root), data)
    assert response.status_code == 413
    assert f"the limit is {len(data) - 1} bytes" in response.content.decode()
    settings.DATARUN_MAX_KIT_BYTES = 10 * len(data)
    settings.DATARUN_MAX_KIT_UNPACKED_BYTES = 1000
    response = upload(client_for(root), data)
    assert response.status_code == 413
    assert "unpacks to" in response.content.decode()
    assert not Problem.objects.exists()


def test_a_request_far_over_the_limit_is_refused_before_it_is_read(root, settings):
    settings.DATARUN_MAX_KIT_BYTES = 1000
    response = upload(client_for(root), b"x" * 200_000)
    assert response.status_code == 413
    assert "a kit zip may weigh at most 1000 bytes" in response.content.decode()


def test_a_kit_whose_problem_fails_is_refused_and_leaves_nothing(root):
    bad = b"raise RuntimeError('the organiser made a typo')\n"
    before = problem_dirs()
    response = upload(client_for(root), kit_zip(extra={"iris/problem.py": bad},
                                                skip=("problem.py",)))
    assert response.status_code == 400
    assert "problem.py failed to import: RuntimeError: the organiser made a typo" in \
        response.content.decode()
    assert not Event.objects.exists() and not Problem.objects.exists()
    assert problem_dirs() == before


def test_an_existing_event_name_is_refused(root):
    client = client_for(root)
    assert upload(client, kit_zip()).status_code == 302
    response = upload(client, kit_zip())
    assert response.status_code == 400
    assert "an event named 'iris-course' already exists" in html.unescape(
        response.content.decode())
    assert Problem.objects.count() == 1


def test_only_superusers_upload_kits():
    user = get_user_model().objects.create_user("olga", password="pw-olga-1234")
    response = upload(client_for(user), kit_zip())
    assert response.status_code == 403
    assert not Problem.objects.exists()


# --- the API ------------------------------------------------------------------

def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def api_upload(client: APIClient, data: bytes, name: str = "iris-api", **fields):
    return client.post("/api/v1/kits/", {"kit": SimpleUploadedFile("iris.zip", data),
                                         "name": name, **fields}, format="multipart")


def test_a_kit_uploaded_over_the_api_answers_with_its_event_and_report(root):
    client = token_client(root)
    response = api_upload(client, kit_zip(), title="Iris for the class")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["event"]["name"] == "iris-api"
    assert body["event"]["title"] == "Iris for the class"
    assert body["event"]["description"].startswith("Multiclass classification")
    report = body["report"]
    assert report["archive"] == "iris.zip"
    assert (report["problem"]["n_train"], report["problem"]["n_test"],
            report["problem"]["n_folds"]) == (120, 30, 5)
    assert [st["name"] for st in report["problem"]["score_types"]] == \
        ["acc", "error", "nll"]
    assert report["problem"]["workflow_elements"] == ["estimator"]
    assert report["starting_kit"]["state"] == "queued"
    # The same report later, for the event's admins only.
    later = client.get("/api/v1/events/iris-api/kit-report/")
    assert later.status_code == 200
    assert later.json()["starting_kit"]["evaluation_id"] == \
        report["starting_kit"]["evaluation_id"]
    olga = get_user_model().objects.create_user("olga", password="pw-olga-1234")
    Event.objects.get(name="iris-api").admins.add(olga)
    assert token_client(olga).get("/api/v1/events/iris-api/kit-report/").status_code == 200


def test_a_malformed_kit_over_the_api_is_a_400_naming_the_entry(root):
    response = api_upload(token_client(root), kit_zip(extra={"iris/../x.py": b"x"}))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_kit"
    assert "entry 'iris/../x.py' points outside the kit" in response.json()["error"]["message"]
    assert not Problem.objects.exists()


def test_the_api_says_how_to_send_the_kit(root):
    response = token_client(root).post("/api/v1/kits/", {"name": "x"}, format="multipart")
    assert response.status_code == 400
    assert "-F kit=@my-kit.zip" in response.json()["error"]["message"]


def test_only_superusers_upload_kits_over_the_api():
    user = get_user_model().objects.create_user("olga", password="pw-olga-1234")
    response = api_upload(token_client(user), kit_zip())
    assert response.status_code == 403
    assert "only a superuser uploads kits" in response.json()["error"]["message"]
    assert not Problem.objects.exists()
