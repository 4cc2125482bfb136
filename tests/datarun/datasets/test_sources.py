"""Fetching dataset sources into the blob store: server paths, a real local
HTTP server (thread) and moto's real S3 server. The servers' context managers
here serve the service and API tests too."""
import hashlib
import http.server
import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from datarun import storage
from datarun.datasets import sources
from datarun.errors import InvalidDataset

CSV = b"id,x,label\n1,0.5,a\n2,1.5,b\n3,2.5,a\n"


def storage_files() -> set[str]:
    """Every file under the storage root (to show that a failure left nothing)."""
    root = storage.root()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files from a folder; ``/slow/...`` waits before answering; ``/nolength/...``
    streams without a Content-Length; ``/truncated/...`` closes before the end;
    ``/redirect/<url>`` redirects to ``<url>`` (or to ``/<path>``)."""

    def do_GET(self):
        if self.path.startswith("/slow/"):
            time.sleep(2)
        if self.path.startswith("/truncated/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"id,x\n1,2\n")
            return
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            target = self.path.removeprefix("/redirect/")
            self.send_header("Location", target if "://" in target else f"/{target}")
            self.end_headers()
            return
        if self.path.startswith("/nolength/"):
            data = (Path(self.directory) / self.path.removeprefix("/nolength/")).read_bytes()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@contextmanager
def serve_http(root: Path) -> Iterator[SimpleNamespace]:
    """A real HTTP server, in a thread on a free port, serving the folder ``root``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve_s3() -> Iterator[str]:
    """moto's real S3 server, in a thread on a free port; yields its URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_bucket(endpoint: str, settings, monkeypatch) -> SimpleNamespace:
    """A fresh bucket, DATARUN_S3_ENDPOINT_URL pointed at ``endpoint``, dummy keys."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.DATARUN_S3_ENDPOINT_URL = endpoint
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"datarun-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return SimpleNamespace(client=client, bucket=bucket)


@pytest.fixture
def http_server(tmp_path, settings):
    root = tmp_path / "www"
    root.mkdir()
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # refused by default
    with serve_http(root) as server:
        yield server


@pytest.fixture(scope="module")
def s3_endpoint():
    with serve_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint, settings, monkeypatch):
    return s3_bucket(s3_endpoint, settings, monkeypatch)


@pytest.fixture
def csv_file(tmp_path) -> Path:
    path = tmp_path / "data" / "train.csv"
    path.parent.mkdir()
    path.write_bytes(CSV)
    return path


# --- server paths ----------------------------------------------------------------

def test_a_server_path_is_copied_into_the_blob_store_under_its_sha256(csv_file):
    fetched = sources.fetch(str(csv_file), allowed_paths=None)

    assert fetched.name == "train.csv"
    assert fetched.sha256 == hashlib.sha256(CSV).hexdigest()
    assert fetched.size_bytes == len(CSV)
    assert fetched.path == storage.blob_path(fetched.sha256)
    assert fetched.path.read_bytes() == CSV
    assert fetched.encoding_format == "text/csv"
    # The blob is a copy: changing the source later does not change it.
    csv_file.write_bytes(b"changed")
    assert fetched.path.read_bytes() == CSV
    assert sources.fetch(f"file://{csv_file}", allowed_paths=None).sha256 != fetched.sha256


def test_a_server_path_outside_the_allowed_folders_is_refused(tmp_path, csv_file):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    before = storage_files()

    with pytest.raises(InvalidDataset, match="DATARUN_DATASET_PATHS") as refused:
        sources.fetch(str(csv_file), allowed_paths=[str(allowed)])
    assert str(csv_file) in refused.value.message
    # Neither a link inside the folder nor '..' gets out of it.
    (allowed / "link.csv").symlink_to(csv_file)
    with pytest.raises(InvalidDataset, match="DATARUN_DATASET_PATHS"):
        sources.fetch(str(allowed / "link.csv"), allowed_paths=[str(allowed)])
    with pytest.raises(InvalidDataset, match="DATARUN_DATASET_PATHS"):
        sources.fetch(f"{allowed}/../data/train.csv", allowed_paths=[str(allowed)])
    with pytest.raises(InvalidDataset, match="none configured"):
        sources.fetch(str(csv_file), allowed_paths=[])
    assert storage_files() == before

    inside = allowed / "inside.csv"
    inside.write_bytes(CSV)
    assert sources.fetch(str(inside), allowed_paths=[str(allowed)]).name == "inside.csv"


def test_a_missing_file_or_an_unknown_type_is_named(tmp_path):
    with pytest.raises(InvalidDataset, match=r"nope\.csv: no such file"):
        sources.fetch(str(tmp_path / "nope.csv"), allowed_paths=None)
    (tmp_path / "notes.txt").write_text("a,b\n")
    with pytest.raises(InvalidDataset, match=r"notes\.txt: unsupported file type.*\.csv"):
        sources.fetch(str(tmp_path / "notes.txt"), allowed_paths=None)
    with pytest.raises(InvalidDataset, match="unsupported source"):
        sources.fetch("ftp://example.org/train.csv", allowed_paths=None)


def test_a_file_over_the_size_limit_is_refused_and_nothing_is_kept(settings, csv_file):
    settings.DATARUN_DATASET_MAX_BYTES = 10
    before = storage_files()
    with pytest.raises(InvalidDataset, match="limit"):
        sources.fetch(str(csv_file), allowed_paths=None)
    with pytest.raises(InvalidDataset, match="limit"):
        sources.store_upload("big.csv", CSV)
    assert storage_files() == before


def test_uploads_are_stored_from_bytes_or_streamed_from_a_file_object():
    from_bytes = sources.store_upload("train.csv", CSV)
    streamed = sources.store_upload("train.csv", io.BytesIO(CSV))
    assert from_bytes.sha256 == streamed.sha256 == hashlib.sha256(CSV).hexdigest()
    assert from_bytes.source == "upload"
    with pytest.raises(InvalidDataset, match="letters, digits"):
        sources.store_upload("../train.csv", CSV)


# --- http(s) ------------------------------------------------------------------------

def test_an_http_source_gives_the_same_blob_as_the_same_local_file(http_server, csv_file):
    (http_server.root / "train.csv").write_bytes(CSV)
    local = sources.fetch(str(csv_file), allowed_paths=None)

    remote = sources.fetch(f"{http_server.url}/train.csv", allowed_paths=[])
    streamed = sources.fetch(f"{http_server.url}/nolength/train.csv", allowed_paths=[])

    assert remote.sha256 == streamed.sha256 == local.sha256
    assert remote.name == "train.csv"
    assert remote.source == f"{http_server.url}/train.csv"
    assert remote.path.read_bytes() == CSV


def test_an_http_404_names_the_url_and_leaves_nothing(http_server):
    url = f"{http_server.url}/missing.csv"
    before = storage_files()
    with pytest.raises(InvalidDataset, match="HTTP 404") as refused:
        sources.fetch(url, allowed_paths=None)
    assert url in refused.value.message
    assert storage_files() == before


def test_a_refused_connection_names_the_url(settings):
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["127.0.0.1"]
    url = f"http://127.0.0.1:{free_port()}/train.csv"
    with pytest.raises(InvalidDataset, match="cannot reach the server") as refused:
        sources.fetch(url, allowed_paths=None)
    assert url in refused.value.message


def test_a_closed_port_and_an_open_one_that_is_not_http_fail_alike(settings):
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["127.0.0.1"]
    with socket.socket() as listener:  # accepts, then hangs up without a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def hang_up():
            connection, _ = listener.accept()
            connection.close()

        threading.Thread(target=hang_up, daemon=True).start()
        messages = []
        for p in (port, free_port()):
            with pytest.raises(InvalidDataset) as failed:
                sources.fetch(f"http://127.0.0.1:{p}/train.csv", allowed_paths=None)
            messages.append(failed.value.message.replace(str(p), "PORT"))
    assert messages[0] == messages[1] == "http://127.0.0.1:PORT/train.csv: cannot reach the server"


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "localhost", "[::1]", "10.1.2.3",
                                  "169.254.169.254", "[fe80::1]", "224.0.0.1", "0.0.0.0",
                                  "[::ffff:127.0.0.1]"])
def test_an_address_that_is_not_public_is_refused_before_connecting(host, http_server,
                                                                   settings):
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["192.0.2.0/24"]  # none of the above
    (http_server.root / "train.csv").write_bytes(CSV)
    port = http_server.url.rsplit(":", 1)[1]
    before = storage_files()
    with pytest.raises(InvalidDataset, match="is not a public address") as refused:
        sources.fetch(f"http://{host}:{port}/train.csv", allowed_paths=None)
    assert "DATARUN_FETCH_ALLOWED_NETWORKS" in refused.value.message
    assert storage_files() == before


def test_a_network_on_the_allow_list_is_fetched(http_server, settings):
    (http_server.root / "train.csv").write_bytes(CSV)
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = []
    with pytest.raises(InvalidDataset, match="not a public address"):
        sources.fetch(f"{http_server.url}/train.csv", allowed_paths=None)
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert sources.fetch(f"{http_server.url}/train.csv", allowed_paths=None).path \
        .read_bytes() == CSV


def test_every_redirect_hop_is_checked(http_server):
    (http_server.root / "train.csv").write_bytes(CSV)
    # To an allowed address: followed.
    fetched = sources.fetch(f"{http_server.url}/redirect/train.csv", allowed_paths=None)
    assert fetched.path.read_bytes() == CSV and fetched.name == "train.csv"
    # To the cloud metadata address, or a private one: refused.
    for target in ("http://169.254.169.254/latest/train.csv", "http://10.0.0.1/train.csv"):
        with pytest.raises(InvalidDataset, match="is not a public address"):
            sources.fetch(f"{http_server.url}/redirect/{target}", allowed_paths=None)


def test_a_slow_server_times_out_with_the_setting_named(http_server, settings):
    settings.DATARUN_FETCH_TIMEOUT_S = 0.3
    (http_server.root / "train.csv").write_bytes(CSV)
    with pytest.raises(InvalidDataset, match="DATARUN_FETCH_TIMEOUT_S"):
        sources.fetch(f"{http_server.url}/slow/train.csv", allowed_paths=None)


def test_a_download_over_the_limit_stops_and_leaves_nothing(http_server, settings):
    settings.DATARUN_DATASET_MAX_BYTES = 10
    (http_server.root / "train.csv").write_bytes(CSV)
    before = storage_files()
    # Refused from the announced length, and while streaming when there is none.
    with pytest.raises(InvalidDataset, match="limit"):
        sources.fetch(f"{http_server.url}/train.csv", allowed_paths=None)
    with pytest.raises(InvalidDataset, match="limit"):
        sources.fetch(f"{http_server.url}/nolength/train.csv", allowed_paths=None)
    assert storage_files() == before


def test_a_download_cut_short_names_the_url_and_leaves_nothing(http_server):
    url = f"{http_server.url}/truncated/train.csv"
    before = storage_files()
    with pytest.raises(InvalidDataset, match="stopped after 9 of 1,000 bytes") as failed:
        sources.fetch(url, allowed_paths=None)
    assert failed.value.message.startswith(url)
    assert storage_files() == before


def test_a_url_must_end_with_a_file_name(http_server):
    with pytest.raises(InvalidDataset, match="names no file"):
        sources.fetch(f"{http_server.url}/", allowed_paths=None)


# --- S3 -------------------------------------------------------------------------------

def test_an_s3_object_gives_the_same_blob_as_the_same_local_file(s3, csv_file):
    s3.client.put_object(Bucket=s3.bucket, Key="raw/train.csv", Body=CSV)
    local = sources.fetch(str(csv_file), allowed_paths=None)

    remote = sources.fetch(f"s3://{s3.bucket}/raw/train.csv", allowed_paths=[])

    assert remote.sha256 == local.sha256
    assert remote.name == "train.csv"
    assert remote.size_bytes == len(CSV)


def test_a_missing_s3_object_names_the_url_and_the_cause(s3):
    url = f"s3://{s3.bucket}/raw/missing.csv"
    before = storage_files()
    with pytest.raises(InvalidDataset, match="NoSuchKey") as refused:
        sources.fetch(url, allowed_paths=None)
    assert url in refused.value.message
    with pytest.raises(InvalidDataset, match="NoSuchBucket"):
        sources.fetch("s3://no-such-bucket-here/train.csv", allowed_paths=None)
    with pytest.raises(InvalidDataset, match="s3://bucket/key"):
        sources.fetch(f"s3://{s3.bucket}", allowed_paths=None)
    assert storage_files() == before
