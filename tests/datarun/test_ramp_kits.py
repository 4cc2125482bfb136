"""Importing RAMP kits: what an organiser sees for good and broken kits."""
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from sklearn.utils import _safe_indexing

from datarun import selectors, services
from datarun.errors import InvalidKit
from datarun.models import Problem
from datarun.ramp_kits import prepare_kit
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

SCORE_TYPES = {  # name, is_lower_the_better; the official score first
    "iris": [("acc", False), ("error", True), ("nll", True)],
    "breast_cancer": [("acc", False), ("auc", False), ("nll", True)],
    "diabetes": [("rmse", True), ("mare", True)],
}

OBJECT_PREDICTIONS = '''
import numpy as np
from rampwf.prediction_types.base import BasePrediction


class Predictions(BasePrediction):
    """Each row a dict of named boxes: neither numbers nor a list of objects."""

    def __init__(self, y_pred=None, y_true=None, n_samples=None, fold_is=None):
        rows = y_pred if y_pred is not None else y_true
        self.y_pred = np.empty(len(rows), dtype=object)
        for i, label in enumerate(rows):
            self.y_pred[i] = {label: (0.5, 0.5, 1.0)}
'''


@pytest.fixture(autouse=True)
def storage_dir(settings, tmp_path) -> Path:
    """A storage of its own per test, so that leftovers are this test's."""
    settings.DATARUN_STORAGE_DIR = tmp_path / "storage"
    return settings.DATARUN_STORAGE_DIR


@pytest.mark.parametrize("kit", sorted(SCORE_TYPES))
def test_example_kit_imports_with_its_workflow_folds_and_scores(kit):
    problem = services.problem_import_ramp_kit(path=EXAMPLES / kit)

    assert problem.name == kit
    assert problem.workflow_elements == ["estimator"]
    assert problem.n_folds == 5
    score_types = selectors.score_types_for(kit)
    assert [(st["name"], st["is_lower_the_better"]) for st in score_types] == SCORE_TYPES[kit]
    assert [st["official"] for st in score_types] == [True] + [False] * (len(score_types) - 1)


def test_iris_records_its_data_sizes_and_prediction_shape():
    problem = services.problem_import_ramp_kit(path=EXAMPLES / "iris")
    assert (problem.n_train, problem.n_test, problem.prediction_shape) == (120, 30, [3])


def test_same_kit_under_two_names_has_the_same_folds_and_data(storage_dir):
    first = services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-a")
    second = services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris-b")

    assert first.folds_hash == second.folds_hash
    assert first.data_hash == second.data_hash
    assert (storage_dir / first.storage_dir / "folds.npz").is_file()
    assert (storage_dir / second.storage_dir / "folds.npz").is_file()
    assert list((storage_dir / "tmp").iterdir()) == []


def test_importing_over_an_existing_name_is_refused_without_replace():
    services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="iris")
    with pytest.raises(InvalidKit, match="a problem named 'iris' already exists"):
        services.problem_import_ramp_kit(path=EXAMPLES / "diabetes", name="iris")
    assert Problem.objects.get(name="iris").title == "Iris species classification"


@pytest.mark.parametrize("name", ["../escape", "iris/2025", "iris 2025", "iris!"])
def test_a_problem_name_that_is_not_a_slug_is_refused(name, storage_dir):
    with pytest.raises(InvalidKit, match="may only have letters, digits, '_' and '-'"):
        services.problem_import_ramp_kit(path=EXAMPLES / "iris", name=name)
    assert not Problem.objects.exists()
    assert not (storage_dir / "problems").exists()
    assert not (storage_dir / "escape").exists()


def test_replace_swaps_a_problem_without_evaluations():
    services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="demo")
    replaced = services.problem_import_ramp_kit(path=EXAMPLES / "diabetes", name="demo",
                                                replace=True)
    assert Problem.objects.get(name="demo").id == replaced.id
    assert [st["name"] for st in selectors.score_types_for("demo")] == ["rmse", "mare"]


@pytest.fixture
def evaluated_problem() -> Problem:
    problem = services.problem_import_ramp_kit(path=EXAMPLES / "iris", name="demo")
    starting_kit = EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py"
    services.evaluation_create(problem=problem,
                               files={"estimator.py": starting_kit.read_bytes()})
    return problem


def test_replace_is_refused_for_a_problem_with_evaluations(evaluated_problem):
    with pytest.raises(InvalidKit, match="'demo' already has evaluations; import under a new"):
        services.problem_import_ramp_kit(path=EXAMPLES / "diabetes", name="demo", replace=True)
    kept = Problem.objects.get(name="demo")
    assert (kept.id, kept.storage_dir) == (evaluated_problem.id, evaluated_problem.storage_dir)
    assert [st["name"] for st in selectors.score_types_for("demo")] == ["acc", "error", "nll"]


def test_refused_replace_leaves_no_new_problem_dir(evaluated_problem, storage_dir):
    with pytest.raises(InvalidKit):
        services.problem_import_ramp_kit(path=EXAMPLES / "diabetes", name="demo", replace=True)
    assert [p.relative_to(storage_dir).as_posix()
            for p in (storage_dir / "problems" / "demo").iterdir()] == [
        evaluated_problem.storage_dir]


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _no_problem_py(kit: Path) -> None:
    (kit / "problem.py").unlink()


def _raises_at_import(kit: Path) -> None:
    _append(kit / "problem.py", "\nraise RuntimeError('the organiser forgot a file')\n")


def _get_train_data_raises(kit: Path) -> None:
    _append(kit / "problem.py",
            "\ndef get_train_data(path='.'):\n    raise OSError('train.csv is locked')\n")


def _get_cv_raises(kit: Path) -> None:
    _append(kit / "problem.py",
            "\ndef get_cv(X, y):\n    raise ValueError('n_splits=50 is too many')\n")


def _object_predictions(kit: Path) -> None:
    _append(kit / "problem.py", OBJECT_PREDICTIONS)


BROKEN_KITS = {
    "no_problem_py": (_no_problem_py, "the kit has no problem.py"),
    "raises_at_import": (
        _raises_at_import,
        "problem.py failed to import: RuntimeError: the organiser forgot a file",
    ),
    "get_train_data_raises": (
        _get_train_data_raises, "loading the data failed: OSError: train.csv is locked",
    ),
    "get_cv_raises": (_get_cv_raises, "get_cv failed: ValueError: n_splits=50 is too many"),
    "object_predictions": (
        _object_predictions, "this problem's predictions are neither numbers nor lists of "
        "objects (a row of the labels is a dict, not a list of objects)",
    ),
}


@pytest.fixture(params=sorted(BROKEN_KITS))
def broken_kit(request, kit_copy):
    breaks, message = BROKEN_KITS[request.param]
    kit = kit_copy("iris")
    breaks(kit)
    return kit, message


def test_broken_kit_is_refused_with_its_cause_and_nothing_recorded(broken_kit, storage_dir):
    kit, message = broken_kit

    with pytest.raises(InvalidKit) as refused:
        services.problem_import_ramp_kit(path=kit, name="broken")

    assert message in refused.value.message
    assert not Problem.objects.filter(name="broken").exists()
    assert not (storage_dir / "problems" / "broken").exists()


def test_broken_kit_leaves_no_staging_dir(broken_kit, storage_dir):
    kit, _ = broken_kit
    with pytest.raises(InvalidKit):
        services.problem_import_ramp_kit(path=kit, name="broken")
    assert list((storage_dir / "tmp").iterdir()) == []


def test_import_command_reports_a_broken_kit_as_a_command_error(kit_copy):
    kit = kit_copy("iris")
    _raises_at_import(kit)

    # manage.py prints a CommandError as one line, "CommandError: <message>",
    # without a traceback.
    with pytest.raises(CommandError) as refused:
        call_command("import_ramp_kit", str(kit), "--name", "broken")

    assert str(refused.value) == ("problem.py failed to import: "
                                  "RuntimeError: the organiser forgot a file")
    assert not Problem.objects.filter(name="broken").exists()


def test_import_command_imports_a_kit_and_opens_an_event(capsys):
    from databoard.models import Event

    call_command("import_ramp_kit", str(EXAMPLES / "iris"), "--event", "iris-2025")

    out = capsys.readouterr().out
    assert "imported problem 'iris': 120 training rows, 30 test rows, 5 folds" in out
    assert Event.objects.get(name="iris-2025").problem_name == "iris"


# --- symbolic links in a kit -----------------------------------------------------------
# The kit is copied into storage with its links followed: a link that leaves
# the kit would copy whatever it points to (say, a private key) into storage.

def test_a_link_to_a_file_outside_the_kit_is_refused(kit_copy, tmp_path, storage_dir):
    kit = kit_copy("iris")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the kit")
    (kit / "submissions" / "starting_kit" / "notes.txt").symlink_to(secret)

    with pytest.raises(InvalidKit) as refused:
        services.problem_import_ramp_kit(path=kit, name="linked")

    assert refused.value.message == (
        f"submissions/starting_kit/notes.txt is a symbolic link to {secret.resolve()}, "
        "outside the kit; copy what it points to into the kit instead")
    assert not Problem.objects.exists()
    assert not (storage_dir / "problems").exists()
    assert list((storage_dir / "tmp").iterdir()) == []


def test_a_data_folder_linked_from_outside_the_kit_is_refused(kit_copy, tmp_path):
    kit = kit_copy("iris")
    shared = tmp_path / "shared-data"
    (kit / "data").rename(shared)
    (kit / "data").symlink_to(shared, target_is_directory=True)

    with pytest.raises(InvalidKit, match="^data is a symbolic link to .*, outside the kit"):
        services.problem_import_ramp_kit(path=kit, name="linked")
    assert not Problem.objects.exists()


def test_a_link_to_nothing_is_refused(kit_copy):
    kit = kit_copy("iris")
    (kit / "data" / "extra.csv").symlink_to("missing.csv")

    with pytest.raises(InvalidKit) as refused:
        services.problem_import_ramp_kit(path=kit, name="linked")

    assert refused.value.message == (
        "data/extra.csv is a symbolic link to missing.csv, which does not exist")


def test_a_link_to_a_folder_holding_it_is_refused(kit_copy):
    kit = kit_copy("iris")
    (kit / "submissions" / "loop").symlink_to("..", target_is_directory=True)

    with pytest.raises(InvalidKit) as refused:
        services.problem_import_ramp_kit(path=kit, name="linked")

    assert refused.value.message == (
        "submissions/loop is a symbolic link to a folder that holds it")


def test_links_that_loop_are_refused(kit_copy):
    kit = kit_copy("iris")
    (kit / "data" / "a.csv").symlink_to("b.csv")
    (kit / "data" / "b.csv").symlink_to("a.csv")

    with pytest.raises(InvalidKit, match=r"^data/a\.csv is a symbolic link that loops$"):
        services.problem_import_ramp_kit(path=kit, name="linked")


def test_a_link_inside_the_kit_is_copied_as_the_file_it_points_to(kit_copy, storage_dir):
    kit = kit_copy("iris")
    (kit / "submissions" / "linked").mkdir()
    (kit / "submissions" / "linked" / "estimator.py").symlink_to(
        "../starting_kit/estimator.py")

    problem = services.problem_import_ramp_kit(path=kit, name="linked")

    copied = storage_dir / problem.storage_dir / "kit" / "submissions" / "linked" / "estimator.py"
    assert not copied.is_symlink()
    assert copied.read_bytes() == (kit / "submissions" / "starting_kit" / "estimator.py"
                                   ).read_bytes()


def test_text_labels_read_as_values_are_prepared_as_a_kit_environment_has_them(tmp_path):
    """The labels the folds unpickle are NumPy-backed strings, as pandas 3 gives
    them where the kit is written (no pyarrow), though the server has pyarrow:
    scikit-learn indexes them as ramp-workflow's workflows do."""
    kit_dir = tmp_path / "text_labels"
    shutil.copytree(Path(__file__).parents[1] / "conformance" / "kits" / "text_labels", kit_dir)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit_dir, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=120)

    prepare_kit(kit_dir, tmp_path / "prepared")

    with open(tmp_path / "prepared" / "sandbox" / "y_train.pkl", "rb") as f:
        y_train = pickle.load(f)
    with open(tmp_path / "prepared" / "sandbox" / "X_train.pkl", "rb") as f:
        X_train = pickle.load(f)
    assert y_train.dtype.storage == "python"
    assert X_train["colour"].dtype.storage == "python"
    assert list(_safe_indexing(y_train, np.array([0, 2]))) == [y_train[0], y_train[2]]


# --- a kit with its own environment, imported on the trusted side ----------------

_ENV_PROBLEM = '''
import rampwf as rw
import datarun_absent_package as absent
import datarun_absent_package.io

problem_title = 'Needs a package of its environment'
Predictions = rw.prediction_types.make_regression()
workflow = rw.workflows.Estimator()
score_types = [rw.score_types.RMSE(name='rmse')]


def get_cv(X, y):
    return [([0], [1])]


def get_train_data(path='.'):
    return absent.io.read(path)


get_test_data = get_train_data
'''


def _env_kit(tmp_path, requirements: bool, body: str = _ENV_PROBLEM) -> Path:
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "problem.py").write_text(body)
    if requirements:
        (kit / "requirements.txt").write_text("datarun-absent-package==1.0\n")
    return kit


def test_a_kit_with_its_own_environment_imports_packages_the_server_lacks(tmp_path):
    """problem.py imports at its top a package only its environment has (as
    El Nino's imports xarray): the trusted side, which needs Predictions and
    the score types, still imports it; the package names itself if the
    server's side uses it, and stays missing for any other code."""
    from datarun.ramp_kits import AbsentModule, import_problem

    problem = import_problem(_env_kit(tmp_path, requirements=True))
    assert problem.problem_title == "Needs a package of its environment"
    assert [st.name for st in problem.score_types] == ["rmse"]
    assert isinstance(problem.absent, AbsentModule)
    with pytest.raises(ImportError, match="datarun_absent_package is installed in the "
                                          "problem's own environment, not on the server"):
        problem.get_train_data(str(tmp_path))
    assert "datarun_absent_package" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        import datarun_absent_package  # noqa: F401


def test_without_an_environment_a_missing_package_fails_the_import(tmp_path):
    from datarun.ramp_kits import import_problem

    with pytest.raises(ModuleNotFoundError, match="datarun_absent_package"):
        import_problem(_env_kit(tmp_path, requirements=False))


def test_a_name_taken_from_an_absent_package_at_import_is_a_clear_error(tmp_path):
    from datarun.ramp_kits import import_problem

    kit = _env_kit(tmp_path, requirements=True, body="from datarun_absent_package import "
                                                    "Dataset\n" + _ENV_PROBLEM)
    with pytest.raises(ImportError, match="Dataset: datarun_absent_package is installed in "
                                          "the problem's own environment"):
        import_problem(kit)
