"""Declarative problems through the services, the API, the command and the
admin page, on a real dataset version (no worker needed)."""
import io
import zipfile

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from datarun import storage
from datarun.declarative import InvalidProblemSpec
from datarun.errors import ApplicationError, NotFound
from datarun.models import Problem, Split
from datarun.services.datasets import dataset_version_create
from datarun.services.declarative import (
    problem_apply,
    problem_create_declarative,
    problem_export_kit,
    problem_preview_declarative,
)
from datarun.services.problems import problem_import_ramp_kit
from datarun.services.splits import split_create
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db


@pytest.fixture
def iris_ref() -> str:
    return iris_dataset()


def iris_dataset() -> str:
    """The iris example's rows as one file, with the file each came from in ``part``."""
    lines = []
    for part in ("train", "test"):
        header, *rows = (EXAMPLES / "iris" / "data" / f"{part}.csv").read_text().splitlines()
        lines += [] if lines else [f"id,{header},part"]
        lines += [f"{len(lines)},{row},{part}" for row in rows]
    version, _ = dataset_version_create(dataset="iris",
                                        uploads={"iris.csv": "\n".join(lines).encode()})
    return f"iris@{version.number}"


def iris_spec(ref: str, **changes) -> dict:
    return {
        "name": "iris-declarative", "title": "Iris (declarative)", "dataset": ref,
        "target": "species", "ignore": ["id", "part"], "task": "multiclass",
        "score_types": ["accuracy", "error", "nll"],
        "split": {"seed": 3, "test": {"method": "stratified", "fraction": 0.2},
                  "cv": {"method": "stratified_kfold", "n_splits": 3}},
        "workflow": "estimator", "limits": {"wall_time_s": 60, "memory_mb": 1024, "cpus": 1},
        **changes,
    }


def nothing_made():
    return (Problem.objects.count(), Split.objects.count(),
            sorted(p.name for p in (storage.root() / "problems").glob("*"))
            if (storage.root() / "problems").exists() else [])


def test_a_problem_is_built_from_a_spec(iris_ref):
    problem = problem_create_declarative(spec=iris_spec(iris_ref))
    assert problem.kind == Problem.Kind.DECLARATIVE
    assert (problem.n_train, problem.n_test, problem.n_folds) == (120, 30, 3)
    assert problem.workflow_elements == ["estimator"]
    assert [s.name for s in problem.score_types.all()] == ["accuracy", "error", "nll"]
    assert problem.dataset_version.dataset.name == "iris"
    assert problem.split.summary["rows"] == {"train": 120, "test": 30}
    # Stratified on the target when the spec names no column.
    assert problem.split.spec["cv"]["column"] == "species"
    assert problem.spec["dataset"] == iris_ref and problem.spec["limits"]["memory_mb"] == 1024


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"dataset": "irises@1"}, NotFound, "no dataset version 'irises@1'"),
    ({"target": "specie"}, InvalidProblemSpec,
     "has no column 'specie' (the target column); its columns are: id, sepal_length, "),
    ({"ignore": ["ID"]}, InvalidProblemSpec, "has no column 'ID' (the ignored column)"),
    ({"task": "binary"}, InvalidProblemSpec,
     "task binary needs a target with 2 classes; 'species' has 3: setosa, versicolor, "
     "virginica"),
    ({"task": "regression", "score_types": ["rmse"]}, InvalidProblemSpec,
     "task regression needs a numeric target; 'species' holds"),
    ({"score_types": ["accuracy", "r2"]}, InvalidProblemSpec,
     "r2 (coefficient of determination) does not fit a multiclass task"),
    ({"split": {"cv": {"method": "kfold"}}}, InvalidProblemSpec,
     "a problem needs test rows; add split.test"),
    ({"split": {"test": {"method": "shuffle"}}}, InvalidProblemSpec,
     "a problem needs cross-validation folds; add split.cv"),
    ({"split": {"test": {"method": "group", "column": "nope"}}}, InvalidProblemSpec,
     "split: the split spec names 'nope', not a column of the table"),
    ({"split": 99999}, InvalidProblemSpec, "split: 99999 is not a split of iris@1"),
])
def test_a_bad_spec_creates_nothing(iris_ref, changes, error, message):
    before = nothing_made()
    with pytest.raises(error) as caught:
        problem_create_declarative(spec=iris_spec(iris_ref, **changes))
    assert message in caught.value.message
    assert nothing_made() == before


def test_a_failure_after_the_kit_is_imported_leaves_no_row_and_no_file(iris_ref, monkeypatch):
    save = Problem.save

    def fail(self, *args, **kwargs):
        if "kind" not in (kwargs.get("update_fields") or ()):
            return save(self, *args, **kwargs)
        made.append(self.storage_dir)
        raise RuntimeError("the database went away")

    made = []
    monkeypatch.setattr(Problem, "save", fail)  # the last step: marking it declarative
    before = nothing_made()
    splits_dir = storage.root() / "splits"
    splits_before = sorted(splits_dir.glob("*")) if splits_dir.exists() else []
    with pytest.raises(RuntimeError):
        problem_create_declarative(spec=iris_spec(iris_ref, split={
            "seed": 11, "test": {"method": "shuffle"}, "cv": {"method": "kfold"}}))
    assert made and not storage.resolve(made[0]).exists()
    assert nothing_made() == before
    assert sorted(splits_dir.glob("*")) == splits_before


def test_an_existing_split_can_be_named_by_id(iris_ref):
    from datarun.services.datasets import dataset_version_get

    split, _ = split_create(version=dataset_version_get(iris_ref), spec={
        "test": {"method": "given", "column": "part"}, "cv": {"method": "kfold", "n_splits": 4}})
    problem = problem_create_declarative(spec=iris_spec(iris_ref, split=split.id))
    assert problem.split == split and problem.n_folds == 4 and problem.n_test == 30


def test_apply_is_idempotent_and_rebuilds_a_changed_spec(iris_ref):
    first, created = problem_apply(spec=iris_spec(iris_ref))
    assert created
    again, created = problem_apply(spec=yaml.safe_dump(iris_spec(iris_ref)))
    assert (again.id, created) == (first.id, False)
    retitled, created = problem_apply(spec=iris_spec(iris_ref, title="Iris, again"))
    assert created and retitled.title == "Iris, again"
    assert Problem.objects.filter(name="iris-declarative").count() == 1
    with pytest.raises(InvalidProblemSpec, match="already exists; choose another name"):
        problem_create_declarative(spec=iris_spec(iris_ref))
    problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris")
    with pytest.raises(InvalidProblemSpec, match="'iris' is a problem imported from a RAMP kit"):
        problem_apply(spec=iris_spec(iris_ref, name="iris"))


def test_a_version_whose_table_changed_is_refused(iris_ref):
    from datarun.services.datasets import dataset_version_get

    table = storage.resolve(dataset_version_get(iris_ref).table_path)
    original = table.read_bytes()
    try:
        table.write_bytes(original + b" ")
        with pytest.raises(ApplicationError, match="changed since it was registered"):
            problem_create_declarative(spec=iris_spec(iris_ref))
    finally:
        table.write_bytes(original)
    assert Problem.objects.count() == 0


def test_the_preview_checks_and_creates_nothing(iris_ref):
    before = nothing_made()
    preview = problem_preview_declarative(spec=iris_spec(iris_ref))
    assert nothing_made() == before
    assert preview["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert preview["labels"] == ["setosa", "versicolor", "virginica"]
    assert preview["n_train"] == 120 and preview["n_test"] == 30
    assert sum(preview["labels_per_split"]["test"].values()) == 30
    assert [f["valid"] for f in preview["folds"]] == [40, 40, 40]
    assert preview["submission_files"] == ["estimator.py"]


def test_the_exported_kit_is_the_full_kit_and_always_the_same_bytes(iris_ref):
    problem = problem_create_declarative(spec=iris_spec(iris_ref))
    data = problem_export_kit(problem=problem)
    assert data == problem_export_kit(problem=problem)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(names) == [f"iris-declarative/{n}" for n in (
        "README.md", "data/test.csv", "data/train.csv", "data/train_folds.npz", "problem.py",
        "submissions/starting_kit/estimator.py")]
    test_csv = zipfile.ZipFile(io.BytesIO(data)).read("iris-declarative/data/test.csv").decode()
    assert test_csv.splitlines()[0] == (
        "sepal_length,sepal_width,petal_length,petal_width,species")


# --- the API, the command, the admin page -------------------------------------------

@pytest.fixture
def staff():
    return get_user_model().objects.create_user("olga", password="pw-olga-12345",
                                                is_staff=True, is_superuser=True)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_is_for_staff(iris_ref, staff):
    alice = get_user_model().objects.create_user("alice", password="pw-alice-1234")
    assert api(alice).post("/api/v1/problems/", iris_spec(iris_ref), format="json"
                           ).status_code == 403
    assert Problem.objects.count() == 0
    created = api(staff).post("/api/v1/problems/", iris_spec(iris_ref), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["kind"] == "declarative" and body["dataset_version"] == iris_ref
    assert body["n_folds"] == 3 and body["limits"]["wall_time_s"] == 60
    assert [s["name"] for s in body["score_types"]] == ["accuracy", "error", "nll"]
    for url in ("/api/v1/problems/iris-declarative/", "/api/v1/problems/iris-declarative/kit.zip"):
        assert api(alice).get(url).status_code == 403
        assert APIClient().get(url).status_code in (401, 403)
    assert api(staff).get("/api/v1/problems/iris-declarative/").json()["split"]["summary"][
        "rows"] == {"train": 120, "test": 30}
    kit = api(staff).get(body["kit_url"])
    assert kit.status_code == 200 and kit["Content-Type"] == "application/zip"
    assert 'filename="iris-declarative-kit.zip"' in kit["Content-Disposition"]
    assert b"data/train_folds.npz" in kit.content
    assert api(staff).get("/api/v1/problems/nope/").json()["error"]["code"] == "not_found"


def test_the_api_takes_yaml_and_answers_errors_in_its_shape(iris_ref, staff):
    text = yaml.safe_dump(iris_spec(iris_ref, name="iris-yaml"))
    assert api(staff).post("/api/v1/problems/", {"spec": text}, format="json"
                           ).status_code == 201
    refused = api(staff).post("/api/v1/problems/", iris_spec(iris_ref, target="specie"),
                              format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_problem"
    assert "has no column 'specie'" in refused.json()["error"]["message"]


def test_problem_apply_command(iris_ref, tmp_path):
    path = tmp_path / "iris.yaml"
    path.write_text(yaml.safe_dump(iris_spec(iris_ref)))
    out = io.StringIO()
    call_command("problem_apply", str(path), stdout=out)
    assert out.getvalue().startswith(f"created: problem iris-declarative on {iris_ref}\n")
    assert "120 training rows, 30 test rows, 3 folds" in out.getvalue()
    out = io.StringIO()
    call_command("problem_apply", str(path), stdout=out)
    assert out.getvalue().startswith("unchanged: ")
    path.write_text(yaml.safe_dump(iris_spec(iris_ref, task="regression",
                                             score_types=["rmse"])))
    with pytest.raises(CommandError, match="task regression needs a numeric target"):
        call_command("problem_apply", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("problem_apply", str(tmp_path / "missing.yaml"))


def test_the_admin_page_previews_then_creates(iris_ref, staff):
    client = Client()
    client.force_login(staff)
    page = client.get("/admin/datarun/problem/add/")
    assert page.status_code == 200
    assert b"Spec (YAML)" in page.content and iris_ref.encode() in page.content
    text = yaml.safe_dump(iris_spec(iris_ref))
    preview = client.post("/admin/datarun/problem/add/", {"spec": text, "preview": "Preview"})
    assert b"Preview: iris-declarative on " + iris_ref.encode() in preview.content
    assert b"setosa: 10, versicolor: 10, virginica: 10" in preview.content
    assert Problem.objects.count() == 0
    bad = client.post("/admin/datarun/problem/add/",
                      {"spec": yaml.safe_dump(iris_spec(iris_ref, target="specie")),
                       "create": "Create problem"})
    assert b"has no column &#x27;specie&#x27;" in bad.content
    assert Problem.objects.count() == 0
    created = client.post("/admin/datarun/problem/add/", {"spec": text, "create": "Create"})
    problem = Problem.objects.get(name="iris-declarative")
    assert created.status_code == 302
    assert created["Location"] == f"/admin/datarun/problem/{problem.pk}/change/"
    change = client.get(created["Location"])
    assert b"/api/v1/problems/iris-declarative/kit.zip" in change.content


def test_the_admin_page_is_for_those_who_may_add_problems(iris_ref):
    viewer = get_user_model().objects.create_user("vic", password="pw-vic-12345",
                                                  is_staff=True)
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/datarun/problem/add/").status_code == 403


# --- the spec's own environment -------------------------------------------------------

PINNED = ["numpy==1.26.4", "pandas==2.2.3", "scikit-learn==1.5.2", "ramp-workflow==0.7.0"]


@pytest.mark.parametrize(("packages", "message"), [
    (["pandas==2.2.3", "--index-url http://example.org/simple"],
     "environment.packages[1] ('--index-url http://example.org/simple') is a pip option"),
    (["pandas==2.2.3", "git+https://example.org/x.git"],
     "environment.packages[1] ('git+https://example.org/x.git') is not a package requirement"),
    (["pandas==2.2.3", "scikit-learn==0.0.1"],
     "environment.packages[1] ('scikit-learn==0.0.1'): the problem's environment: the "
     "requirements cannot be installed"),
    ("pandas\nnumpy", "environment.packages[0]: expected one requirement"),
])
def test_a_bad_package_in_the_spec_is_a_400_naming_it(iris_ref, staff, packages, message):
    before = nothing_made()
    refused = api(staff).post("/api/v1/problems/", iris_spec(
        iris_ref, environment={"packages": packages}), format="json")
    assert refused.status_code == 400, refused.json()
    assert refused.json()["error"]["code"] == "invalid_problem"
    assert message in refused.json()["error"]["message"], refused.json()
    assert nothing_made() == before


def test_the_spec_s_packages_are_locked_as_a_kit_s_requirements(iris_ref, staff):
    spec = iris_spec(iris_ref, environment={"packages": PINNED})
    preview = problem_preview_declarative(spec=spec)
    assert preview["environment"]["packages"]["pandas"] == "2.2.3"
    created = api(staff).post("/api/v1/problems/", spec, format="json")
    assert created.status_code == 201, created.json()
    problem = Problem.objects.get(name="iris-declarative")
    assert problem.environment.lock_hash == preview["environment"]["lock_hash"]
    assert {p["name"]: p["version"] for p in problem.environment.packages}[
        "scikit-learn"] == "1.5.2"
    assert problem.spec["environment"] == {"packages": PINNED}
    kit = zipfile.ZipFile(io.BytesIO(problem_export_kit(problem=problem)))
    assert kit.read("iris-declarative/requirements.txt").decode().split() == PINNED
    # Applied again unchanged: nothing rebuilt.
    assert problem_apply(spec=spec) == (problem, False)
