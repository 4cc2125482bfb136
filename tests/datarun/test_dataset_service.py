"""Dataset versions: content-addressed, idempotent, all or nothing, verifiable,
described by a Croissant file that ``mlcroissant validate`` passes."""
import io
import json
import uuid

import pytest
from django.core.management import CommandError, call_command

from datarun import storage
from datarun.datasets import croissant, duck
from datarun.errors import InvalidDataset, NotFound
from datarun.models import Dataset, DatasetFile, DatasetVersion
from datarun.services import datasets as services
from tests.datarun.datasets.test_croissant import mlcroissant_validate
from tests.datarun.datasets.test_sources import (
    free_port,
    s3_bucket,
    serve_http,
    serve_s3,
    storage_files,
)

pytestmark = pytest.mark.django_db

TRAIN = "id,height,label\n1,170.5,a\n2,160.0,b\n3,180.2,a\n4,175.0,b\n"


@pytest.fixture
def http_server(tmp_path, settings):
    (tmp_path / "www").mkdir()
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["127.0.0.1"]  # refused by default
    with serve_http(tmp_path / "www") as server:
        yield server


@pytest.fixture(scope="module")
def s3_endpoint():
    with serve_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint, settings, monkeypatch):
    return s3_bucket(s3_endpoint, settings, monkeypatch)


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "train.csv").write_text(TRAIN)
    (folder / "extra.jsonl").write_text('{"id": 5, "height": 190.0, "label": "c"}\n')
    return folder


def unique_csv(folder, name="train.csv") -> str:
    """A CSV whose bytes no other test has stored."""
    path = folder / name
    path.write_text(f"id,token\n1,{uuid.uuid4().hex}\n")
    return str(path)


def assert_every_croissant_validates(tmp_path):
    """Export each version's Croissant and run the mlcroissant command on it, offline."""
    versions = list(DatasetVersion.objects.all())
    assert versions
    for version in versions:
        path = tmp_path / f"{version.dataset.name}-{version.number}.json"
        path.write_text(json.dumps(version.croissant))
        result = mlcroissant_validate(path, tmp_path)
        assert result.returncode == 0, f"{version}: {result.stderr}"


def test_the_same_files_twice_make_one_version_and_one_byte_more_makes_another(
        files, tmp_path):
    sources = [str(files / "train.csv"), str(files / "extra.jsonl")]
    first, created = services.dataset_version_create(dataset="people", sources=sources,
                                                     title="People")
    again, created_again = services.dataset_version_create(dataset="people",
                                                           sources=list(reversed(sources)))

    assert created and not created_again
    assert again.pk == first.pk
    assert first.number == 1 and first.n_rows == 5
    assert first.manifest_hash == services.manifest_hash(
        [(f.name, f.sha256) for f in first.files.all()])
    assert first.size_bytes == sum(f.size_bytes for f in first.files.all())
    assert [c["name"] for c in first.schema] == ["id", "height", "label"]
    assert {f.name: f.encoding_format for f in first.files.all()} == {
        "extra.jsonl": "application/jsonlines", "train.csv": "text/csv"}

    (files / "train.csv").write_text(TRAIN.replace("170.5", "170.6"))
    second, created = services.dataset_version_create(dataset="people", sources=sources)

    assert created and second.number == 2
    assert second.manifest_hash != first.manifest_hash
    assert DatasetVersion.objects.filter(dataset__name="people").count() == 2
    # The same bytes with another transform are another version too.
    third, created = services.dataset_version_create(
        dataset="people", sources=sources, transform_sql="SELECT * FROM train")
    assert created and third.number == 3 and third.n_rows == 4
    assert_every_croissant_validates(tmp_path)


def test_a_version_keeps_its_table_and_croissant(files):
    version, _ = services.dataset_version_create(
        dataset="heights", sources=[str(files / "train.csv")],
        transform_sql="SELECT label, avg(height) AS mean_height FROM train GROUP BY label "
                      "ORDER BY label", description="Mean height per label.")

    table = services.dataset_version_table(version)
    assert storage.sha256_file(table) == version.table_sha256
    assert duck.read_table(table)["mean_height"].round(2).tolist() == [175.35, 167.5]
    doc = version.croissant
    assert doc["description"] == "Mean height per label."
    assert {f["@id"]: f["sha256"] for f in doc["distribution"]} == {
        "train.csv": version.files.get().sha256, "table.parquet": version.table_sha256}
    assert [f["name"] for f in doc["recordSet"][0]["field"]] == ["label", "mean_height"]
    assert version.sources == [{"name": "train.csv", "source": str(files / "train.csv")}]


def test_uploads_and_a_path_with_the_same_bytes_are_the_same_version(files):
    from_path, _ = services.dataset_version_create(dataset="same",
                                                   sources=[str(files / "train.csv")])
    from_upload, created = services.dataset_version_create(
        dataset="same", uploads={"train.csv": (files / "train.csv").read_bytes()})
    assert not created and from_upload.pk == from_path.pk


def test_http_and_s3_sources_give_the_version_the_local_file_gives(files, http_server, s3):
    (http_server.root / "train.csv").write_text(TRAIN)
    s3.client.put_object(Bucket=s3.bucket, Key="a/train.csv", Body=TRAIN.encode())

    local, _ = services.dataset_version_create(dataset="local",
                                               sources=[str(files / "train.csv")])
    over_http, _ = services.dataset_version_create(
        dataset="over-http", sources=[f"{http_server.url}/train.csv"], allowed_paths=[])
    from_s3, _ = services.dataset_version_create(
        dataset="from-s3", sources=[f"s3://{s3.bucket}/a/train.csv"], allowed_paths=[])

    assert local.manifest_hash == over_http.manifest_hash == from_s3.manifest_hash
    assert from_s3.files.get().source == f"s3://{s3.bucket}/a/train.csv"
    again, created = services.dataset_version_create(
        dataset="local", sources=[f"s3://{s3.bucket}/a/train.csv"])
    assert not created and again.pk == local.pk


@pytest.mark.parametrize("where", ["missing", "refused"])
def test_an_unreachable_source_names_the_url_and_leaves_nothing(files, http_server, where):
    url = (f"{http_server.url}/missing.csv" if where == "missing"
           else f"http://127.0.0.1:{free_port()}/train.csv")
    good = unique_csv(files, "good.csv")
    before = storage_files()

    with pytest.raises(InvalidDataset) as failed:
        services.dataset_version_create(dataset="remote", sources=[good, url])

    assert url in failed.value.message
    assert not Dataset.objects.filter(name="remote").exists()
    # The good file fetched before the failure is gone again.
    assert storage_files() == before


def test_a_broken_csv_is_named_and_nothing_is_left(files):
    rows = "a,b\n" + "".join(f"{i},{uuid.uuid4().hex}\n" for i in range(100)) + "1,2,3\n"
    (files / "broken.csv").write_text(rows)
    before = storage_files()

    with pytest.raises(InvalidDataset, match=r"^broken\.csv: cannot be read as a table: "
                                             r".*same number of comma-separated"):
        services.dataset_version_create(dataset="broken",
                                        sources=[str(files / "broken.csv")])

    assert not Dataset.objects.filter(name="broken").exists()
    assert not DatasetFile.objects.exists()
    assert storage_files() == before


def test_a_failing_transform_leaves_nothing(files):
    before = storage_files()
    with pytest.raises(InvalidDataset, match="transform SQL failed.*nope"):
        services.dataset_version_create(dataset="bad-sql", sources=[unique_csv(files)],
                                        transform_sql="SELECT nope FROM train")
    assert not DatasetVersion.objects.exists()
    assert storage_files() == before


def test_bad_names_are_refused(files):
    path = str(files / "train.csv")
    with pytest.raises(InvalidDataset, match="dataset name 'a b'"):
        services.dataset_version_create(dataset="a b", sources=[path])
    with pytest.raises(InvalidDataset, match="at least one"):
        services.dataset_version_create(dataset="empty")
    with pytest.raises(InvalidDataset, match="two files are named train.csv"):
        services.dataset_version_create(dataset="twice", sources=[path],
                                        uploads={"train.csv": b"id\n1\n"})
    with pytest.raises(InvalidDataset, match="kept for the built table"):
        services.dataset_version_create(dataset="reserved",
                                        uploads={"table.parquet": b"x"})


def test_verify_names_the_file_whose_blob_changed(files):
    version, _ = services.dataset_version_create(dataset="pinned",
                                                 sources=[unique_csv(files)])
    services.dataset_version_verify(version=version)
    blob = storage.blob_path(version.files.get().sha256)
    original = blob.read_bytes()
    try:
        blob.write_bytes(original + b"9,tampered\n")
        with pytest.raises(InvalidDataset, match=r"pinned@1: train\.csv changed since it "
                                                 r"was registered"):
            services.dataset_version_verify(version=version)
        blob.unlink()
        with pytest.raises(InvalidDataset, match="train.csv is missing from storage"):
            services.dataset_version_verify(version=version)
    finally:
        blob.write_bytes(original)
    table = services.dataset_version_table(version)
    table.write_bytes(table.read_bytes() + b"\0")
    with pytest.raises(InvalidDataset, match="table.parquet changed"):
        services.dataset_version_verify(version=version)


def test_the_verify_command_reports_every_file_and_fails_on_a_mismatch(files):
    version, _ = services.dataset_version_create(
        dataset="clinic", sources=[unique_csv(files), str(files / "extra.jsonl")])
    out = io.StringIO()
    call_command("dataset_version_verify", "clinic", "1", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["ok", "extra.jsonl"], ["ok", "train.csv"], ["ok", "table.parquet"]]
    assert lines[-1] == "clinic@1: all 3 files match the manifest"

    blob = storage.blob_path(version.files.get(name="train.csv").sha256)
    original = blob.read_bytes()
    try:
        blob.write_bytes(original + b"9,tampered\n")
        out = io.StringIO()
        with pytest.raises(CommandError, match=r"clinic@1: train\.csv changed; register"):
            call_command("dataset_version_verify", "clinic@1", stdout=out)
        assert "ok       extra.jsonl" in out.getvalue()
        assert f"changed  train.csv  {version.files.get(name='train.csv').sha256} (now " \
            in out.getvalue()
    finally:
        blob.write_bytes(original)
    with pytest.raises(CommandError, match="no dataset version 'clinic@2'"):
        call_command("dataset_version_verify", "clinic", "2", stdout=io.StringIO())


def test_versions_are_found_by_reference(files):
    services.dataset_version_create(dataset="refs", sources=[str(files / "train.csv")])
    services.dataset_version_create(dataset="refs", sources=[str(files / "extra.jsonl")])

    assert services.dataset_version_get("refs@1").number == 1
    assert services.dataset_version_get("refs@v1").number == 1
    assert services.dataset_version_get("refs@latest").number == 2
    assert services.dataset_version_get("refs").number == 2
    with pytest.raises(NotFound, match="refs@3"):
        services.dataset_version_get("refs@3")
    with pytest.raises(NotFound):
        services.dataset_version_get("nothing")
    with pytest.raises(InvalidDataset, match="NAME@latest"):
        services.dataset_version_get("refs@newest")


def test_a_croissant_file_with_local_files_registers_the_same_version(files, tmp_path):
    version, _ = services.dataset_version_create(
        dataset="original", sources=[str(files / "train.csv"), str(files / "extra.jsonl")],
        description="Heights of people.")
    # What a user downloads: the Croissant file and the files it names.
    export = tmp_path / "export"
    export.mkdir()
    for file in version.files.all():
        (export / file.name).write_bytes(storage.blob_path(file.sha256).read_bytes())
    (export / "table.parquet").write_bytes(services.dataset_version_table(version).read_bytes())
    doc = dict(version.croissant)
    doc["distribution"] = [f for f in doc["distribution"] if f["@id"] != "table.parquet"]
    doc["recordSet"] = []
    doc["license"] = "https://creativecommons.org/publicdomain/zero/1.0/"
    (export / "croissant.json").write_text(json.dumps(doc))

    registered, created = services.dataset_register_croissant(
        path=export / "croissant.json", dataset="copy")

    assert created
    assert registered.manifest_hash == version.manifest_hash
    assert registered.dataset.description == "Heights of people."
    assert registered.croissant["license"] == doc["license"]
    again, created = services.dataset_register_croissant(path=export / "croissant.json",
                                                         dataset="copy")
    assert not created and again.pk == registered.pk
    # Named after the Croissant's own name when no name is given.
    by_name, _ = services.dataset_register_croissant(path=export / "croissant.json")
    assert by_name.dataset.name == "original"
    assert_every_croissant_validates(tmp_path)


def test_a_croissant_file_whose_file_changed_is_refused(files, tmp_path):
    version, _ = services.dataset_version_create(dataset="declared",
                                                 sources=[str(files / "train.csv")])
    export = tmp_path / "export"
    export.mkdir()
    doc = dict(version.croissant)
    doc["distribution"] = [f for f in doc["distribution"] if f["@id"] == "train.csv"]
    doc["recordSet"] = []
    (export / "croissant.json").write_text(json.dumps(doc))
    (export / "train.csv").write_text(TRAIN + "5,1.0,c\n" + uuid.uuid4().hex + ",0,z\n")
    before = storage_files()

    with pytest.raises(InvalidDataset, match=r"train\.csv: sha256 is .* but the Croissant "
                                             r"file says"):
        services.dataset_register_croissant(path=export / "croissant.json", dataset="other")

    assert not Dataset.objects.filter(name="other").exists()
    assert storage_files() == before


def test_the_dataset_register_command(files, tmp_path, capsys):
    call_command("dataset_register", "cli", str(files / "train.csv"), "--title", "From CLI")
    assert capsys.readouterr().out.startswith("created: cli@1\n  4 rows, 3 columns")
    call_command("dataset_register", "cli", str(files / "train.csv"), "--json")
    out = json.loads(capsys.readouterr().out)
    assert (out["created"], out["ref"], out["n_rows"]) == (False, "cli@1", 4)

    export = tmp_path / "export"
    export.mkdir()
    version = DatasetVersion.objects.get(dataset__name="cli")
    doc = {**version.croissant, "recordSet": [],
           "distribution": [f for f in version.croissant["distribution"]
                            if f["@id"] == "train.csv"]}
    (export / "croissant.json").write_text(json.dumps(doc))
    (export / "train.csv").write_text(TRAIN)
    call_command("dataset_register", "from-croissant", "--croissant",
                 str(export / "croissant.json"))
    assert capsys.readouterr().out.startswith("created: from-croissant@1")

    with pytest.raises(CommandError, match="nope.csv: no such file"):
        call_command("dataset_register", "cli", str(files / "nope.csv"))
    with pytest.raises(CommandError, match="at least one file"):
        call_command("dataset_register", "cli")


def test_the_croissant_of_a_version_validates_with_splits_added(files, tmp_path):
    version, _ = services.dataset_version_create(dataset="split",
                                                 sources=[str(files / "train.csv")])
    doc = croissant.with_splits(version.croissant, ["train", "test"])
    croissant.validate(doc)
    path = tmp_path / "croissant.json"
    path.write_text(json.dumps(doc))
    assert mlcroissant_validate(path, tmp_path).returncode == 0
