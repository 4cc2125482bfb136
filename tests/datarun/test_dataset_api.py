"""/api/v1/datasets/: staff only; uploads, URLs and allowed server paths;
versions with their files, schema and Croissant (which ``mlcroissant validate``
passes once downloaded)."""
import hashlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from datarun.models import Dataset
from tests.datarun.datasets.test_croissant import mlcroissant_validate
from tests.datarun.datasets.test_sources import free_port, serve_http, storage_files

pytestmark = pytest.mark.django_db

TRAIN = b"id,x,label\n1,0.5,a\n2,1.5,b\n3,2.5,a\n"
BASE = "/api/v1/datasets/"


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def staff():
    return client_for(get_user_model().objects.create_user("org", is_staff=True))


@pytest.fixture
def participant():
    return client_for(get_user_model().objects.create_user("alice"))


def upload(client, name="people", files=None, **fields):
    files = files if files is not None else {"train.csv": TRAIN}
    data = {"name": name, **fields,
            "files": [SimpleUploadedFile(n, content) for n, content in files.items()]}
    return client.post(BASE, data, format="multipart")


def test_anonymous_users_and_participants_see_no_dataset(staff, participant):
    upload(staff)
    urls = [BASE, f"{BASE}people/", f"{BASE}people/versions/1/",
            f"{BASE}people/versions/1/croissant.json",
            f"{BASE}people/versions/1/files/train.csv"]
    for url in urls:
        assert client_for().get(url).status_code == 401, url
        assert participant.get(url).status_code == 403, url
    assert upload(client_for(), name="mine").status_code == 401
    assert upload(participant, name="mine").status_code == 403
    assert participant.post(BASE, {"name": "mine", "sources": ["/etc/passwd"]},
                            format="json").status_code == 403
    assert not Dataset.objects.filter(name="mine").exists()


def test_staff_upload_files_and_get_the_same_version_for_the_same_bytes(staff):
    first = upload(staff, title="People", description="Who is who.")
    again = upload(staff)

    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    body = first.json()
    assert body["created"] is True and again.json()["created"] is False
    assert (body["ref"], body["number"], body["n_rows"]) == ("people@1", 1, 3)
    assert again.json()["manifest_hash"] == body["manifest_hash"]
    assert body["files"] == [{
        "name": "train.csv", "sha256": hashlib.sha256(TRAIN).hexdigest(),
        "size_bytes": len(TRAIN), "encoding_format": "text/csv", "source": "upload",
        "url": f"{BASE}people/versions/1/files/train.csv"}]
    assert body["schema"] == [{"name": "id", "type": "BIGINT", "nullable": False},
                              {"name": "x", "type": "DOUBLE", "nullable": False},
                              {"name": "label", "type": "VARCHAR", "nullable": False}]

    changed = upload(staff, files={"train.csv": TRAIN + b"4,3.5,b\n"})
    assert changed.status_code == 201 and changed.json()["number"] == 2

    listing = staff.get(BASE).json()["results"]
    assert [(d["name"], d["title"], d["n_versions"], d["latest"]["number"])
            for d in listing] == [("people", "People", 2, 2)]
    detail = staff.get(f"{BASE}people/").json()
    assert [v["number"] for v in detail["versions"]] == [1, 2]
    assert detail["description"] == "Who is who."
    version = staff.get(f"{BASE}people/versions/2/").json()
    assert version["n_rows"] == 4 and version["files"][0]["sha256"] != body["files"][0]["sha256"]


def test_the_croissant_downloads_as_a_file_that_mlcroissant_validates(staff, tmp_path):
    upload(staff, files={"train.csv": TRAIN, "more.jsonl": b'{"id": 4, "x": 1.0}\n'})

    response = staff.get(f"{BASE}people/versions/1/croissant.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/ld+json"
    assert response["Content-Disposition"] == 'attachment; filename="people-v1-croissant.json"'
    doc = json.loads(response.content)
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    path = tmp_path / "croissant.json"
    path.write_bytes(response.content)
    result = mlcroissant_validate(path, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_files_and_the_table_download_as_the_croissant_names_them(staff):
    body = upload(staff).json()

    file = staff.get(body["files"][0]["url"])
    table = staff.get(body["table_url"])

    assert b"".join(file.streaming_content) == TRAIN
    assert hashlib.sha256(b"".join(table.streaming_content)).hexdigest() == body["table_sha256"]
    assert table["Content-Disposition"] == 'attachment; filename="table.parquet"'
    missing = staff.get(f"{BASE}people/versions/1/files/other.csv")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "people@1 has no file named 'other.csv'"


def test_server_paths_are_read_only_under_the_allowed_folders(staff, settings, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "train.csv").write_bytes(TRAIN)
    (tmp_path / "secret.csv").write_bytes(b"password\nhunter2\n")
    settings.DATARUN_DATASET_PATHS = [str(allowed)]
    before = storage_files()

    refused = staff.post(BASE, {"name": "sneaky", "sources": [str(tmp_path / "secret.csv")]},
                         format="json")

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_dataset"
    assert str(tmp_path / "secret.csv") in error["message"]
    assert "DATARUN_DATASET_PATHS" in error["message"]
    assert not Dataset.objects.filter(name="sneaky").exists()
    assert storage_files() == before

    accepted = staff.post(BASE, {"name": "served", "sources": [str(allowed / "train.csv")],
                                 "transform_sql": "SELECT id, label FROM train"},
                          format="json")
    assert accepted.status_code == 201, accepted.json()
    assert [c["name"] for c in accepted.json()["schema"]] == ["id", "label"]
    assert accepted.json()["transform_sql"] == "SELECT id, label FROM train"


def test_no_server_path_is_readable_when_none_is_configured(staff, settings, tmp_path):
    settings.DATARUN_DATASET_PATHS = []
    (tmp_path / "train.csv").write_bytes(TRAIN)
    refused = staff.post(BASE, {"name": "x", "sources": [str(tmp_path / "train.csv")]},
                         format="json")
    assert refused.status_code == 400
    assert "none configured" in refused.json()["error"]["message"]


def test_an_http_source_and_an_unreachable_one(staff, tmp_path, settings):
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["127.0.0.1"]
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "train.csv").write_bytes(TRAIN)
    with serve_http(tmp_path / "www") as server:
        fetched = staff.post(BASE, {"name": "web", "sources": [f"{server.url}/train.csv"]},
                             format="json")
        missing = staff.post(BASE, {"name": "web-missing",
                                    "sources": [f"{server.url}/gone.csv"]}, format="json")
    refused_url = f"http://127.0.0.1:{free_port()}/train.csv"
    refused = staff.post(BASE, {"name": "web-refused", "sources": [refused_url]},
                         format="json")

    assert fetched.status_code == 201
    assert fetched.json()["files"][0]["sha256"] == hashlib.sha256(TRAIN).hexdigest()
    assert missing.status_code == 400
    assert f"{server.url}/gone.csv: the server answered HTTP 404" in (
        missing.json()["error"]["message"])
    assert refused.status_code == 400
    assert refused_url in refused.json()["error"]["message"]
    assert not Dataset.objects.filter(name__startswith="web-").exists()


def test_sources_on_the_platforms_own_network_are_refused(staff, tmp_path):
    # The web process's own address, under several spellings, and a redirect
    # to it from an allowed server: nothing is fetched, nothing is stored.
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "train.csv").write_bytes(TRAIN)
    with serve_http(tmp_path / "www") as server:
        port = server.url.rsplit(":", 1)[1]
        for url in (f"{server.url}/train.csv", f"http://2130706433:{port}/train.csv",
                    f"http://localhost:{port}/train.csv", f"http://[::1]:{port}/train.csv"):
            refused = staff.post(BASE, {"name": "internal", "sources": [url]}, format="json")
            assert refused.status_code == 400, url
            assert "is not a public address" in refused.json()["error"]["message"]
    assert not Dataset.objects.filter(name="internal").exists()


def test_bad_requests_say_what_to_fix(staff):
    no_files = staff.post(BASE, {"name": "empty"}, format="json")
    assert no_files.status_code == 400
    assert "at least one" in no_files.json()["error"]["message"]
    no_name = upload(staff, name="")
    assert no_name.status_code == 400
    assert no_name.json()["error"]["message"].startswith("name:")
    bad_type = upload(staff, files={"notes.txt": b"a,b\n"})
    assert bad_type.status_code == 400
    assert "notes.txt: unsupported file type" in bad_type.json()["error"]["message"]
    broken = upload(staff, name="broken", files={"train.csv": TRAIN + b"1,2,3,4\n"})
    assert broken.status_code == 400
    assert broken.json()["error"]["message"].startswith("train.csv: cannot be read")
    assert staff.get(f"{BASE}nothing/").status_code == 404
    assert staff.get(f"{BASE}people/versions/9/").json()["error"]["code"] == "not_found"


def test_a_split_appears_in_the_croissant_and_its_table_downloads(staff, tmp_path):
    from datarun.services import dataset_version_get, split_create

    rows = b"id,x,label\n" + b"".join(b"%d,%d.5,%s\n" % (i, i, b"ab"[i % 2:i % 2 + 1])
                                       for i in range(20))
    upload(staff, files={"train.csv": rows})
    split, _ = split_create(version=dataset_version_get("people@1"),
                            spec={"test": {"method": "shuffle", "fraction": 0.25, "seed": 1},
                                  "cv": {"method": "kfold", "n_splits": 2}})

    response = staff.get(f"{BASE}people/versions/1/croissant.json")

    doc = json.loads(response.content)
    splits = next(rs for rs in doc["recordSet"] if rs["@id"] == "splits")
    assert [d["splits/name"] for d in splits["data"]] == ["train", "test"]
    name = f"split-{split.pk}.parquet"
    listed = {f["@id"]: f for f in doc["distribution"]}[name]
    table = staff.get(f"{BASE}people/versions/1/files/{name}")
    assert hashlib.sha256(b"".join(table.streaming_content)).hexdigest() == listed["sha256"]
    path = tmp_path / "croissant.json"
    path.write_bytes(response.content)
    result = mlcroissant_validate(path, tmp_path)
    assert result.returncode == 0, result.stderr
    version = staff.get(f"{BASE}people/versions/1/").json()
    assert version["splits"] == [{"id": split.pk, "split_hash": split.split_hash,
                                  "rows": {"train": 15, "test": 5},
                                  "url": f"{BASE}people/versions/1/files/{name}"}]
    assert staff.get(f"{BASE}people/versions/1/croissant.json?split=999").status_code == 404
