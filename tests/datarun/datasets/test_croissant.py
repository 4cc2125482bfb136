"""Croissant 1.1 descriptions: built from DuckDB's schema, valid for
mlcroissant (its library and its ``mlcroissant validate`` command, both with
the network switched off), readable back, and refused with a message when not."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from datarun import storage
from datarun.datasets import croissant, duck
from datarun.errors import InvalidDataset

NO_NETWORK = '''\
import socket

def _refuse(*args, **kwargs):
    raise OSError("network disabled in this test")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
'''


def run_offline(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a command of this virtualenv with every socket connection refused."""
    offline = tmp_path / "offline-site"
    offline.mkdir(exist_ok=True)
    (offline / "sitecustomize.py").write_text(NO_NETWORK)
    env = {**os.environ, "PYTHONPATH": str(offline)}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def mlcroissant_validate(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``mlcroissant validate --jsonld PATH``, the command line, offline."""
    command = str(Path(sys.executable).parent / "mlcroissant")
    return run_offline([command, "validate", "--jsonld", str(path)], tmp_path)


def _entry(path: Path, name: str, encoding: str) -> croissant.FileEntry:
    return croissant.FileEntry(name=name, sha256=storage.sha256_file(path),
                               size_bytes=path.stat().st_size, encoding_format=encoding)


@pytest.fixture
def described(tmp_path):
    """A CSV, its table and the version description, all in one folder."""
    (tmp_path / "train.csv").write_text(
        "id,height cm,label,ok,day\n1,170.5,a,true,2024-01-01\n2,,b,false,2024-01-02\n")
    table = tmp_path / croissant.TABLE_FILE
    info = duck.materialise([tmp_path / "train.csv"], out=table)
    version = croissant.VersionDescription(
        dataset="people", number=2, title="People", description="Heights.",
        files=[_entry(tmp_path / "train.csv", "train.csv", "text/csv")],
        table=_entry(table, croissant.TABLE_FILE, croissant.PARQUET), schema=info.schema,
        date_published="2025-01-01",
    )
    return version


def test_duckdb_types_map_to_croissant_types():
    cases = {"BOOLEAN": "sc:Boolean", "BIGINT": "sc:Integer", "INTEGER": "sc:Integer",
             "UTINYINT": "sc:Integer", "HUGEINT": "sc:Integer", "DOUBLE": "sc:Float",
             "FLOAT": "sc:Float", "DECIMAL(10,2)": "sc:Float", "DATE": "sc:Date",
             "TIMESTAMP": "sc:DateTime", "TIMESTAMP WITH TIME ZONE": "sc:DateTime",
             "TIME": "sc:Time", "VARCHAR": "sc:Text", "BIGINT[]": "sc:Text"}
    assert {t: croissant.data_type(t) for t in cases} == cases


def test_a_version_description_lists_its_files_and_fields(described, tmp_path):
    doc = croissant.build(described)

    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    assert isinstance(doc["@context"], dict)
    assert (doc["name"], doc["alternateName"], doc["version"]) == ("people", "People", "2.0.0")
    files = {f["@id"]: f for f in doc["distribution"]}
    assert set(files) == {"train.csv", "table.parquet"}
    assert files["train.csv"]["sha256"] == storage.sha256_file(tmp_path / "train.csv")
    assert files["train.csv"]["contentUrl"] == "train.csv"
    assert files["table.parquet"]["encodingFormat"] == "application/x-parquet"
    (records,) = doc["recordSet"]
    fields = {f["name"]: f for f in records["field"]}
    assert {name: f["dataType"] for name, f in fields.items()} == {
        "id": "sc:Integer", "height cm": "sc:Float", "label": "sc:Text", "ok": "sc:Boolean",
        "day": "sc:Date"}
    assert fields["height cm"]["@id"] == "records/height%20cm"
    assert fields["height cm"]["source"] == {"fileObject": {"@id": "table.parquet"},
                                             "extract": {"column": "height cm"}}
    croissant.validate(doc, files_dir=tmp_path)


def test_mlcroissant_reads_the_described_records(described, tmp_path):
    import mlcroissant as mlc

    path = tmp_path / "croissant.json"
    path.write_text(json.dumps(croissant.build(described)))

    records = list(mlc.Dataset(jsonld=str(path)).records("records"))

    assert [r["records/id"] for r in records] == [1, 2]
    assert [r["records/label"] for r in records] == [b"a", b"b"]


def test_validation_never_goes_online(described, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("validation tried the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    croissant.validate(croissant.with_splits(croissant.build(described), ["train", "test"]),
                       files_dir=tmp_path)


def test_the_command_line_validator_passes_descriptions_with_splits(described, tmp_path):
    # The offline switch is real: a connection from that environment fails.
    probe = run_offline([sys.executable, "-c",
                         "import socket; socket.create_connection(('127.0.0.1', 9))"], tmp_path)
    assert "network disabled in this test" in probe.stderr

    (tmp_path / "split.parquet").write_bytes((tmp_path / croissant.TABLE_FILE).read_bytes())
    doc = croissant.with_splits(croissant.build(described), ["train", "test", "staging"],
                                table=_entry(tmp_path / "split.parquet", "split.parquet",
                                             croissant.PARQUET))
    path = tmp_path / "croissant.json"
    path.write_text(json.dumps(doc, indent=2))

    result = mlcroissant_validate(path, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Done." in result.stderr
    splits = next(rs for rs in doc["recordSet"] if rs["@id"] == "splits")
    assert splits["dataType"] == "cr:Split"
    assert splits["data"] == [
        {"splits/name": "train", "splits/url": "cr:TrainingSplit"},
        {"splits/name": "test", "splits/url": "cr:TestSplit"},
        {"splits/name": "staging", "splits/url": "staging"},
    ]
    assignment = next(rs for rs in doc["recordSet"] if rs["@id"] == "split_assignment")
    split_field = next(f for f in assignment["field"] if f["name"] == "split")
    assert split_field["references"] == {"field": {"@id": "splits/name"}}


def test_an_invalid_description_is_refused_with_mlcroissants_message(described, tmp_path):
    doc = croissant.build(described)
    doc["recordSet"][0]["field"][0]["source"]["fileObject"]["@id"] = "nowhere.csv"
    with pytest.raises(InvalidDataset) as invalid:
        croissant.validate(doc)
    assert invalid.value.message.startswith("the Croissant description is not valid")
    assert 'reference to node with UUID "nowhere.csv"' in invalid.value.message
    assert "warning" not in invalid.value.message  # recommendations are not errors

    by_url = {**croissant.build(described), "@context": "https://mlcommons.org/croissant"}
    with pytest.raises(InvalidDataset, match="written inline"):
        croissant.validate(by_url)

    (tmp_path / "train.csv").unlink()
    with pytest.raises(InvalidDataset, match="train.csv: listed in the Croissant description"):
        croissant.validate(croissant.build(described), files_dir=tmp_path)


def test_an_existing_croissant_file_is_read_with_its_local_files(described, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "train.csv").rename(data / "train.csv")
    doc = croissant.build(described)
    doc["distribution"] = [f for f in doc["distribution"] if f["@id"] == "train.csv"]
    doc["distribution"][0]["contentUrl"] = "data/train.csv"
    doc["recordSet"][0]["field"] = [{**f, "source": {"fileObject": {"@id": "train.csv"},
                                                     "extract": {"column": f["name"]}}}
                                    for f in doc["recordSet"][0]["field"]]
    doc["license"] = "https://creativecommons.org/licenses/by/4.0/"
    path = tmp_path / "croissant.json"
    path.write_text(json.dumps(doc))

    read = croissant.read(path)

    assert (read.name, read.description, read.license) == (
        "people", "Heights.", "https://creativecommons.org/licenses/by/4.0/")
    (file,) = read.files
    assert (file.name, file.path, file.encoding_format) == (
        "train.csv", data / "train.csv", "text/csv")
    assert file.sha256 == storage.sha256_file(data / "train.csv")


@pytest.mark.parametrize("change, message", [
    ({"contentUrl": "https://example.org/train.csv"}, "not a local file"),
    ({"@type": "cr:FileSet", "includes": "*.csv"}, "FileSets are not supported"),
])
def test_remote_files_and_file_sets_are_refused(described, tmp_path, change, message):
    doc = croissant.build(described)
    doc["distribution"][0].update(change)
    if "includes" in change:
        for key in ["contentUrl", "sha256", "contentSize"]:
            doc["distribution"][0].pop(key)
    path = tmp_path / "croissant.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidDataset, match=message):
        croissant.read(path)


def test_a_file_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "croissant.json"
    path.write_text("{not json")
    with pytest.raises(InvalidDataset, match="croissant.json: not a readable JSON file"):
        croissant.read(path)
