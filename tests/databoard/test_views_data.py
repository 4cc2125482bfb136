"""The data dashboard: pages and JSON for staff only, with the numbers pandas
computes on the same data, the same numbers on the page and in the API, and
sample values escaped."""
import html
import io
import re

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from datarun import dataset_selectors
from datarun import services as datarun_services
from datarun.datasets import profile as profiles
from datarun.models import Problem
from datarun.services.datasets import dataset_version_create
from datarun.services.splits import split_create, split_table
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

N = 120
SCRIPT = '<script>alert("owned")</script>'
SPEC = {"seed": 5, "test": {"method": "stratified", "fraction": 0.25, "column": "species"},
        "cv": {"method": "stratified_kfold", "n_splits": 3, "column": "species"}}


def _csv() -> bytes:
    rng = np.random.default_rng(11)
    df = pd.DataFrame({
        "id": np.arange(N),
        "width": rng.normal(3, 1, N).round(3),
        "species": rng.choice(["setosa", "versicolor", "virginica"], N),
        "note": rng.choice(["plain", SCRIPT], N),
        "price": rng.normal(100, 20, N).round(2),
    })
    df.loc[::6, "width"] = np.nan
    df.loc[0, "note"] = SCRIPT
    out = io.StringIO()
    df.to_csv(out, index=False)
    return out.getvalue().encode()


@pytest.fixture
def data():
    content = _csv()
    version, _ = dataset_version_create(dataset="flowers", uploads={"flowers.csv": content},
                                        title="Flowers")
    split, _ = split_create(version=version, spec=SPEC)
    return {"frame": pd.read_csv(io.BytesIO(content)), "version": version, "split": split}


@pytest.fixture
def users():
    model = get_user_model()
    return {"staff": model.objects.create_user("keeper", password="pw-keeper-1234",
                                               is_staff=True),
            "user": model.objects.create_user("alice", password="pw-alice-1234")}


def _page(user, url: str):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(url)


def _api(user, url: str):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.get(url)


def _table(content: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells of the table with this id."""
    found = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', content, re.S)
    assert found, f"no table #{table_id}"
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)]


VERSION_PAGE = "/data/datasets/flowers/v1/"
VERSION_API = "/api/v1/datasets/flowers/versions/1/dashboard/"


def test_the_version_page_shows_what_pandas_counts(data, users):
    response = _page(users["staff"], VERSION_PAGE + "?target=species")
    assert response.status_code == 200
    content = response.content.decode()
    frame, split = data["frame"], data["split"]
    per_row = split_table(split)
    # Rows per split and per fold.
    counts = per_row["split"].value_counts()
    assert _table(content, "split-rows") == [
        ["train", str(counts["train"]), f"{100 * counts['train'] / N:.1f} %"],
        ["test", str(counts["test"]), f"{100 * counts['test'] / N:.1f} %"]]
    assert _table(content, "fold-rows") == [
        [str(k), str((per_row[f"train_{k}"] >= 0).sum()), str((per_row[f"valid_{k}"] >= 0).sum())]
        for k in range(3)]
    # Missing values and types per column.
    columns = {row[0]: row for row in _table(content, "columns")}
    assert list(columns) == list(frame.columns)
    for name in frame:
        assert columns[name][2] == str(frame[name].isna().sum()), name
    assert columns["width"][1] == "DOUBLE" and columns["species"][1] == "VARCHAR"
    # The target's classes per split.
    joined = frame.assign(split=per_row["split"])
    target_rows = re.search(r'id="target".*?</section>', content, re.S).group(0)
    for species in ("setosa", "versicolor", "virginica"):
        train = (joined[joined.split == "train"].species == species).sum()
        test = (joined[joined.split == "test"].species == species).sum()
        assert re.search(rf"<td>{species}</td><td class=\"num\">{train}</td>"
                         rf"<td class=\"num\">[\d.]+ %</td><td class=\"num\">{test}</td>",
                         target_rows), species
    # Charts as inline SVG, hashes, files and the Croissant link.
    assert content.count('<svg class="chart"') == 4  # splits, folds, target, missing values
    assert data["version"].manifest_hash in content
    assert data["version"].files.get().sha256 in content
    assert 'href="/api/v1/datasets/flowers/versions/1/croissant.json"' in content


def test_sample_values_are_escaped(data, users):
    content = _page(users["staff"], VERSION_PAGE).content.decode()
    assert SCRIPT not in content
    assert html.escape(SCRIPT, quote=False) in content or html.escape(SCRIPT) in content
    sample = _table(content, "sample")
    assert sample[0][3] == SCRIPT  # the first row's note, as text
    assert len(sample) == profiles.SAMPLE_ROWS


def test_the_json_has_the_numbers_of_the_page(data, users):
    body = _api(users["staff"], VERSION_API + "?target=species").json()
    content = _page(users["staff"], VERSION_PAGE + "?target=species").content.decode()
    profile = body["profile"]
    assert body["split"]["id"] == data["split"].id
    assert [[s["name"], str(s["rows"])] for s in profile["splits"]] == [
        row[:2] for row in _table(content, "split-rows")]
    assert [[str(f["fold"]), str(f["train"]), str(f["valid"])] for f in profile["folds"]] == \
        _table(content, "fold-rows")
    assert [[c["name"], c["type"], str(c["missing"])] for c in profile["columns"]] == [
        row[:3] for row in _table(content, "columns")]
    assert [row[0] for row in _table(content, "sample")] == [
        str(row[0]) for row in profile["sample"]["rows"]]
    target = profile["target"]
    assert target["name"] == "species" and target["splits"] == ["train", "test"]
    assert sum(sum(c) for c in target["counts"].values()) == N
    assert body["dataset"]["files"][0]["name"] == "flowers.csv"


def test_a_numeric_target_and_the_whole_table(data, users):
    body = _api(users["staff"], VERSION_API + "?target=price&split=all").json()
    assert body["split"] is None
    profile = body["profile"]
    assert profile["splits"] == [{"name": "all", "rows": N, "share": 1.0}]
    stats = profile["target"]["stats"]["all"]
    assert stats["mean"] == pytest.approx(data["frame"]["price"].mean())
    assert stats["std"] == pytest.approx(data["frame"]["price"].std())
    content = _page(users["staff"], VERSION_PAGE + "?target=price&split=all").content.decode()
    assert f"{stats['mean']:.4g}" in content and "histogram per split" in content


def test_the_column_figures_cover_the_whole_table_whatever_the_split(data, users):
    # As the README says: rows, folds and the target per split; columns over all rows.
    by_split = _api(users["staff"], VERSION_API).json()["profile"]
    whole = _api(users["staff"], VERSION_API + "?split=all").json()["profile"]
    assert [s["name"] for s in by_split["splits"]] == ["train", "test"]
    assert by_split["columns"] == whole["columns"]
    missing = data["frame"].isna().sum()
    assert {c["name"]: c["missing"] for c in by_split["columns"]} == missing.to_dict()
    assert "Columns <span class=\"muted\">(whole table)</span>" in \
        _page(users["staff"], VERSION_PAGE).content.decode()


def test_an_unknown_target_or_version_says_what_is_wrong(data, users):
    response = _page(users["staff"], VERSION_PAGE + "?target=colour")
    assert response.status_code == 400
    assert "&#x27;colour&#x27; is not a column" in response.content.decode()
    error = _api(users["staff"], VERSION_API + "?target=colour").json()["error"]
    assert "'colour' is not a column" in error["message"] and "species" in error["message"]
    assert _page(users["staff"], "/data/datasets/flowers/v9/").status_code == 404
    assert _api(users["staff"], "/api/v1/datasets/flowers/versions/9/dashboard/"
                ).status_code == 404
    assert _page(users["staff"], VERSION_PAGE + "?split=12345").status_code == 404


def test_only_staff_see_the_data(data, users, declarative):
    pages = ["/data/datasets/", VERSION_PAGE, f"/data/problems/{declarative.name}/"]
    apis = [VERSION_API, f"/api/v1/problems/{declarative.name}/dashboard/"]
    for url in pages:
        assert _page(users["staff"], url).status_code == 200, url
        assert _page(users["user"], url).status_code == 403, url
        anonymous = _page(None, url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    for url in apis:
        assert _api(users["staff"], url).status_code == 200, url
        assert _api(users["user"], url).status_code == 403, url
        assert _api(None, url).status_code == 401, url
    assert "the data may be sensitive" in _page(users["user"], VERSION_PAGE).content.decode()


def test_the_list_of_datasets(data, users):
    dataset_version_create(dataset="flowers", uploads={"flowers.csv": _csv() + b"999,,x,y,1\n"})
    content = _page(users["staff"], "/data/datasets/").content.decode()
    row = next(r for r in _table(content, "datasets")
               if r[0].startswith("flowers"))
    assert row[1:3] == ["2", str(N + 1)]
    assert 'href="/data/datasets/flowers/v2/"' in content


@pytest.fixture
def declarative(data):
    """A declarative problem's record as its service leaves it (only what the
    dashboard reads matters here)."""
    return Problem.objects.create(
        name="flowers-problem", title="Flowers", kind=Problem.Kind.DECLARATIVE,
        storage_dir="problems/flowers", workflow_elements=["estimator.py"],
        prediction_shape=[3], n_train=90, n_test=30, n_folds=3, data_hash="d" * 64,
        folds_hash="f" * 64, dataset_version=data["version"], split=data["split"],
        spec={"target": "species", "task": "multiclass", "ignore": ["id"]})


def test_a_declarative_problem_shows_its_version_split_and_target(data, users, declarative):
    content = _page(users["staff"], "/data/problems/flowers-problem/").content.decode()
    body = _api(users["staff"], "/api/v1/problems/flowers-problem/dashboard/").json()
    assert body["problem"]["target"] == "species"
    assert body["profile"]["target"]["kind"] == "categorical"
    assert body["split"]["split_hash"] == data["split"].split_hash
    assert body["profile"] == _api(users["staff"], VERSION_API + "?target=species"
                                   ).json()["profile"]
    assert [[s["name"], str(s["rows"])] for s in body["profile"]["splits"]] == [
        row[:2] for row in _table(content, "split-rows")]
    assert "target <code>species</code>" in content
    assert 'href="/data/datasets/flowers/v1/"' in content


def test_a_ramp_kit_problem_shows_what_its_import_recorded(users):
    problem = datarun_services.problem_import_ramp_kit(path=EXAMPLES / "iris",
                                                       name="iris-data")
    response = _page(users["staff"], "/data/problems/iris-data/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "came from a RAMP kit" in content
    assert _table(content, "split-rows") == [["train", str(problem.n_train)],
                                             ["test", str(problem.n_test)]]
    assert len(_table(content, "fold-rows")) == problem.n_folds
    body = _api(users["staff"], "/api/v1/problems/iris-data/dashboard/").json()
    assert body["profile"] is None and len(body["kit"]["folds"]) == problem.n_folds
    assert _page(users["staff"], "/data/problems/nope/").status_code == 404


def test_a_profile_is_computed_once_per_version_split_and_target(data, monkeypatch):
    first = dataset_selectors.dataset_version_dashboard(name="flowers", number=1,
                                                        target="species")

    def fail(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(profiles, "profile_table", fail)
    again = dataset_selectors.dataset_version_dashboard(name="flowers", number=1,
                                                        target="species")
    assert again["profile"] == first["profile"]
    with pytest.raises(AssertionError, match="computed again"):
        dataset_selectors.dataset_version_dashboard(name="flowers", number=1, target="price")
