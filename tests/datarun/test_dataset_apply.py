"""`manage.py dataset_apply` and the scheduled refresh, on real files, a real
HTTP server (a thread) and PostgreSQL."""
import functools
import http.server
import json
import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from datarun import services, storage
from datarun.datasets.duck import read_table
from datarun.errors import InvalidDataset
from datarun.models import Dataset, DatasetVersion, Problem, Split
from datarun.services.dataset_specs import datasets_due
from datarun.services.datasets import dataset_version_table
from datarun.services.declarative import problem_create_declarative
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

ORDERS = "order_id,store_id,amount\n1,10,5.5\n2,20,7.0\n3,10,1.25\n4,30,9.0\n"
STORES = "store_id,region\n10,north\n20,south\n30,north\n"


@pytest.fixture
def http_files(tmp_path, settings):
    """A real HTTP server on a thread, serving a folder; yields (folder, base URL)."""
    # It stands for the shop's server: allowed by name, as an organiser would.
    settings.DATARUN_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sales(tmp_path, http_files):
    """A spec joining orders served over HTTP with a store table next to the spec."""
    www, base = http_files
    (www / "orders.csv").write_text(ORDERS)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stores.csv").write_text(STORES)
    spec = tmp_path / "sales.yaml"
    spec.write_text(f"""\
name: sales
title: Weekly sales
sources:
  - {{name: orders, url: {base}/orders.csv}}
  - {{name: stores, path: data/stores.csv}}
transform: |
  SELECT o.*, s.region FROM orders o JOIN stores s USING (store_id) ORDER BY order_id
refresh: {{every: 1d}}
""")
    return spec, www


def apply(spec: Path, *args) -> str:
    out = StringIO()
    call_command("dataset_apply", str(spec), *args, stdout=out)
    return out.getvalue()


def test_apply_twice_creates_one_version_with_the_transform_applied(sales):
    spec, _ = sales
    assert apply(spec).startswith("created: sales@1\n")
    assert apply(spec).startswith("unchanged: sales@1\n")
    version = DatasetVersion.objects.get()
    assert version.n_rows == 4
    assert [c["name"] for c in version.schema] == ["order_id", "store_id", "amount", "region"]
    assert list(_table(version)["region"]) == ["north", "south", "north", "north"]
    # Provenance: each file says where it came from.
    assert {f.name: f.source.split("/")[-1] for f in version.files.all()} == {
        "orders.csv": "orders.csv", "stores.csv": "stores.csv"}
    dataset = Dataset.objects.get(name="sales")
    assert dataset.title == "Weekly sales"
    assert dataset.refresh_interval_s == 86400
    assert dataset.last_checked_at is not None
    assert dataset.spec["sources"][1]["path"] == str(spec.parent / "data" / "stores.csv")


def _table(version) -> pd.DataFrame:
    return read_table(dataset_version_table(version))


def test_one_changed_byte_makes_a_new_version_and_the_old_stays(sales):
    spec, www = sales
    apply(spec)
    (www / "orders.csv").write_text(ORDERS.replace("9.0", "9.5"))
    assert apply(spec).startswith("created: sales@2\n")
    v1, v2 = DatasetVersion.objects.order_by("number")
    assert v1.manifest_hash != v2.manifest_hash
    assert list(_table(v1)["amount"]) == [5.5, 7.0, 1.25, 9.0]
    assert list(_table(v2)["amount"]) == [5.5, 7.0, 1.25, 9.5]


def test_json_output_and_a_split(sales):
    spec, _ = sales
    spec.write_text(spec.read_text() + "split:\n  test: {method: shuffle, fraction: 0.25, "
                    "seed: 1}\n  cv: {method: kfold, n_splits: 3}\n")
    first = json.loads(apply(spec, "--json"))
    assert first["created"] is True and first["ref"] == "sales@1" and first["n_rows"] == 4
    assert first["split_summary"]["rows"] == {"train": 3, "test": 1}
    assert len(first["split_summary"]["folds"]) == 3
    again = json.loads(apply(spec, "--json"))
    assert again["created"] is False and again["split_hash"] == first["split_hash"]
    assert Split.objects.count() == 1
    # A new split rule on the same bytes: a new split of the same version.
    spec.write_text(spec.read_text().replace("seed: 1", "seed: 2"))
    assert apply(spec).startswith("created: sales@1\n")
    assert Split.objects.count() == 2 and DatasetVersion.objects.count() == 1


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("refresh: {every: 1d}", "refresh: {every: 1x}"),
     "sales.yaml line 8: refresh.every: '1x' is not an interval"),
    (lambda t: t.replace("transform: |", "transfrom: |"),
     "sales.yaml line 6: transfrom: unknown key 'transfrom' (did you mean 'transform'?)"),
    (lambda t: t.replace("orders.csv}", "missing.csv}").replace("name: orders", "name: missing"),
     "HTTP 404"),
    (lambda t: t.replace("data/stores.csv", "nowhere/stores.csv"),
     "nowhere/stores.csv: no such file"),
    (lambda t: t.replace("s.region", "s.regio"), "the transform SQL failed"),
    (lambda t: t + "split:\n  test: {method: group, column: shop}\n  cv: {method: group_kfold, "
     "column: shop, n_splits: 2}\n", "shop"),
])
def test_bad_input_exits_with_the_message_and_creates_nothing(sales, edit, message):
    spec, _ = sales
    spec.write_text(edit(spec.read_text()))
    with pytest.raises(CommandError) as info:
        apply(spec)
    assert message in str(info.value)
    assert not Dataset.objects.exists() and not DatasetVersion.objects.exists()
    assert not Split.objects.exists()


def test_a_failing_split_leaves_the_version_it_would_have_made_undone(sales):
    """The group column has a null: the split fails, and the version with it."""
    spec, www = sales
    apply(spec)
    (www / "orders.csv").write_text(ORDERS + "5,,3.0\n")
    spec.write_text(spec.read_text().replace("JOIN stores", "LEFT JOIN stores")
                    + "split:\n  test: {method: group, column: region, fraction: 0.5}\n"
                    "  cv: {method: group_kfold, column: region, n_splits: 2}\n")
    def tables():
        return set((storage.root() / "datasets" / "sales").glob("*/*"))

    tables_before = tables()
    with pytest.raises(CommandError, match="region"):
        apply(spec)
    assert list(DatasetVersion.objects.values_list("number", flat=True)) == [1]
    assert "split" not in Dataset.objects.get().spec
    # No table of the undone version left in storage.
    assert tables() == tables_before


def test_refresh_is_due_only_after_its_interval(sales):
    spec, www = sales
    apply(spec)
    checked = Dataset.objects.get().last_checked_at
    assert datasets_due(now=checked + timedelta(hours=23)) == []
    assert services.datasets_refresh_due(now=checked + timedelta(hours=23))["checked"] == []

    day_later = checked + timedelta(days=1)
    report = services.datasets_refresh_due(now=day_later)
    assert report == {"checked": ["sales@1"], "created": [], "failed": []}
    assert Dataset.objects.get().last_checked_at == day_later

    (www / "orders.csv").write_text(ORDERS.replace("1.25", "1.5"))
    assert services.datasets_refresh_due(now=day_later + timedelta(hours=1))["checked"] == []
    report = services.datasets_refresh_due(now=day_later + timedelta(days=1))
    assert report == {"checked": ["sales@2"], "created": ["sales@2"], "failed": []}
    assert DatasetVersion.objects.count() == 2


def test_datasets_without_a_refresh_are_never_due(sales):
    spec, _ = sales
    spec.write_text(spec.read_text().replace("refresh: {every: 1d}\n", ""))
    apply(spec)
    assert Dataset.objects.get().refresh_interval_s is None
    assert services.datasets_refresh_due(now=timezone.now() + timedelta(days=365)) == {
        "checked": [], "created": [], "failed": []}


def test_an_unreachable_source_keeps_the_version_and_is_retried(sales, caplog):
    spec, www = sales
    apply(spec)
    checked = Dataset.objects.get().last_checked_at
    (www / "orders.csv").rename(www / "gone.csv")
    later = checked + timedelta(days=2)
    report = services.datasets_refresh_due(now=later)
    assert report["checked"] == [] and report["created"] == []
    assert len(report["failed"]) == 1 and "orders.csv: the server answered HTTP 404" in \
        report["failed"][0]
    assert "sales: refresh failed, staying at its current version" in caplog.text
    # Still at v1, and still due: the next check tries again.
    assert DatasetVersion.objects.count() == 1
    assert Dataset.objects.get().last_checked_at == checked
    assert [d.name for d in datasets_due(now=later)] == ["sales"]

    (www / "gone.csv").rename(www / "orders.csv")
    report = services.datasets_refresh_due(now=later + timedelta(minutes=5))
    assert report == {"checked": ["sales@1"], "created": [], "failed": []}


def test_the_refresh_task_is_scheduled_by_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-datasets"]
    assert entry == {"task": "datarun.tasks.refresh_datasets",
                     "schedule": settings.DATARUN_DATASET_REFRESH_CHECK_S}
    from datarun.tasks import refresh_datasets

    assert refresh_datasets.name == "datarun.tasks.refresh_datasets"
    assert refresh_datasets() == {"checked": [], "created": [], "failed": []}


def test_a_dict_spec_is_applied_like_a_file(tmp_path):
    (tmp_path / "train.csv").write_text("x,y\n1,a\n2,b\n")
    version, split, created = services.dataset_apply(spec={
        "name": "tiny", "sources": [{"name": "train", "path": str(tmp_path / "train.csv")}]})
    assert (version.number, split, created) == (1, None, True)
    assert services.dataset_apply(spec=Dataset.objects.get().spec)[2] is False
    with pytest.raises(InvalidDataset, match=r"^spec: sources\[0\]\.paht: unknown key 'paht'"):
        services.dataset_apply(spec={"name": "tiny", "sources": [{"name": "t", "paht": "x"}]})


def iris_rows() -> list[str]:
    """The iris example's rows with a ``part`` column naming their file."""
    lines = []
    for part in ("train", "test"):
        header, *rows = (EXAMPLES / "iris" / "data" / f"{part}.csv").read_text().splitlines()
        lines += [] if lines else [f"{header},part"]
        lines += [f"{row},{part}" for row in rows]
    return lines


def iris_problem(name: str, dataset: str) -> Problem:
    return problem_create_declarative(spec={
        "name": name, "dataset": dataset, "target": "species", "ignore": ["part"],
        "task": "multiclass", "score_types": ["accuracy"], "workflow": "estimator",
        "split": {"test": {"method": "given", "column": "part"},
                  "cv": {"method": "stratified_shuffle", "n_splits": 2, "seed": 1}},
    })


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_problem_stays_pinned_to_its_version_when_a_refresh_makes_a_new_one(tmp_path):
    data = tmp_path / "iris.csv"
    data.write_text("\n".join(iris_rows()) + "\n")
    spec = tmp_path / "iris.yaml"
    spec.write_text("name: iris-live\nsources:\n  - {name: iris, path: iris.csv}\n"
                    "refresh: {every: 1h}\n")
    apply(spec)
    # Built on "the dataset" while v1 is the latest: the problem records v1.
    problem = iris_problem("iris-live-problem", "iris-live")
    assert problem.dataset_version.number == 1 and problem.spec["dataset"] == "iris-live@1"
    kit_data = _files(storage.resolve(problem.storage_dir))
    assert any(name.endswith("test.csv") for name in kit_data)

    data.write_text("\n".join(iris_rows()[:-1]) + "\n")  # the last test row withdrawn
    report = services.datasets_refresh_due(now=timezone.now() + timedelta(hours=2))
    assert report["created"] == ["iris-live@2"]

    problem = Problem.objects.get(name="iris-live-problem")
    assert problem.dataset_version.number == 1 and problem.spec["dataset"] == "iris-live@1"
    assert problem.n_test == 30
    assert _files(storage.resolve(problem.storage_dir)) == kit_data  # its data, as it was
    # The newer version makes a new problem when someone asks for it.
    assert iris_problem("iris-live-problem-v2", "iris-live@2").n_test == 29


@pytest.fixture
def s3(settings, monkeypatch):
    """moto's real S3 server on a thread, with a bucket; DATARUN_S3_ENDPOINT_URL
    points at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.DATARUN_S3_ENDPOINT_URL = endpoint
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="exports")
    yield SimpleNamespace(client=client, bucket="exports")
    server.stop()


def test_an_s3_source_refreshes_when_its_object_changes(tmp_path, s3):
    s3.client.put_object(Bucket=s3.bucket, Key="exports/orders.csv", Body=ORDERS.encode())
    spec = tmp_path / "orders.yaml"
    spec.write_text(f"name: orders\nsources:\n  - {{name: orders, url: "
                    f"'s3://{s3.bucket}/exports/orders.csv'}}\nrefresh: {{every: 30m}}\n")
    assert apply(spec).startswith("created: orders@1\n")
    checked = Dataset.objects.get().last_checked_at
    assert services.datasets_refresh_due(now=checked + timedelta(minutes=30))["created"] == []

    s3.client.put_object(Bucket=s3.bucket, Key="exports/orders.csv",
                         Body=(ORDERS + "5,20,2.0\n").encode())
    report = services.datasets_refresh_due(now=checked + timedelta(minutes=60))
    assert report["created"] == ["orders@2"]
    assert DatasetVersion.objects.get(number=2).n_rows == 5
    assert DatasetVersion.objects.get(number=2).files.get().source == \
        f"s3://{s3.bucket}/exports/orders.csv"
