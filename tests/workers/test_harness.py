"""What a participant reads when a fold fails: the harness's traceback and the
worker's reading of what the sandbox left behind."""
import importlib.util
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from datarun import ramp_kits
from datarun.contract import FoldTicket
from tests.conftest import EXAMPLES
from tests.workers.folds import fold_ticket, lay_out
from workers.fold_io import read_outcome
from workers.harness import layout
from workers.harness.run import (
    EXIT_SUBMISSION_ERROR,
    PARTICIPANT,
    PROBLEM,
    SubmissionError,
    charged_to,
    main,
    participant_traceback,
    show_warnings_without_host_paths,
)
from workers.sandbox import Limits, SandboxResult, Termination

# --- participant_traceback --------------------------------------------------------

HELPER = """
def check(columns):
    if "spam" not in columns:
        raise KeyError("the data has no column spam")
"""

ESTIMATOR = """
import helper


def fit(columns):
    return _prepare(columns)


def _prepare(columns):
    helper.check(columns)
"""


def _frames(tb: str) -> list[str]:
    return [line.strip() for line in tb.splitlines() if line.startswith('  File "')]


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def submission_dir(tmp_path, monkeypatch) -> Path:
    """A submission whose error is raised in a library outside its folder."""
    library = tmp_path / "site-packages"
    library.mkdir()
    (library / "helper.py").write_text(HELPER)
    monkeypatch.syspath_prepend(str(library))
    monkeypatch.delitem(sys.modules, "helper", raising=False)
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "estimator.py").write_text(ESTIMATOR)
    return submission


def test_traceback_keeps_only_the_participants_frames_relative_to_their_folder(
    submission_dir,
):
    estimator = _import(submission_dir / "estimator.py")
    with pytest.raises(KeyError) as raised:
        estimator.fit(["sepal_length"])

    tb = participant_traceback(raised.value, submission_dir)

    assert tb.startswith("Traceback (most recent call last):\n")
    assert _frames(tb) == ['File "estimator.py", line 6, in fit',
                           'File "estimator.py", line 10, in _prepare']
    assert tb.endswith("\nKeyError: 'the data has no column spam'\n")
    assert str(submission_dir.parent) not in tb


def test_traceback_hides_the_submission_folder_in_the_exception_line(submission_dir):
    (submission_dir / "estimator.py").write_text(
        "from pathlib import Path\n\n\n"
        "def fit():\n"
        "    return (Path(__file__).parent / 'weights.csv').read_text()\n"
    )
    estimator = _import(submission_dir / "estimator.py")
    with pytest.raises(FileNotFoundError) as raised:
        estimator.fit()

    tb = participant_traceback(raised.value, submission_dir)

    assert str(submission_dir) not in tb
    assert tb.endswith("FileNotFoundError: [Errno 2] No such file or directory: 'weights.csv'\n")


def test_errors_and_warnings_name_libraries_not_where_they_are_installed(submission_dir,
                                                                        monkeypatch):
    (submission_dir / "estimator.py").write_text(
        "import os, warnings\n"
        "import numpy as np\n\n\n"
        "def fit():\n"
        "    warnings.warn_explicit('slow', UserWarning, np.__file__, 7)\n"
        "    open(os.path.join(os.path.dirname(np.__file__), 'weights.csv'))\n"
    )
    estimator = _import(submission_dir / "estimator.py")
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after
    show_warnings_without_host_paths(submission_dir)
    with pytest.warns(UserWarning) as warned, pytest.raises(FileNotFoundError) as raised:
        estimator.fit()

    error = SubmissionError("train", raised.value, submission_dir)

    assert error.message == "[Errno 2] No such file or directory: 'numpy/weights.csv'"
    assert error.traceback.endswith(f"FileNotFoundError: {error.message}\n")
    shown = warnings.formatwarning(warned[0].message, UserWarning, warned[0].filename, 7)
    assert shown.startswith("numpy/__init__.py:7: UserWarning: slow")
    site_packages = str(Path(np.__file__).parent.parent)
    assert site_packages not in error.message + error.traceback + shown


def test_syntax_error_names_the_file_and_line(submission_dir):
    (submission_dir / "estimator.py").write_text("def get_estimator(:\n    return None\n")
    with pytest.raises(SyntaxError) as raised:
        _import(submission_dir / "estimator.py")

    error = SubmissionError("train", raised.value, submission_dir)

    assert error.error_type == "SyntaxError"
    assert error.message.endswith("(estimator.py, line 1)")
    assert 'File "estimator.py", line 1' in error.traceback
    assert str(submission_dir) not in error.traceback


# --- whose code failed ------------------------------------------------------------

WORKFLOW = """
import numpy as np
from sklearn.utils import _safe_indexing


def train_submission(get_estimator, X, y, train_is):
    estimator = get_estimator()
    return estimator.fit(_safe_indexing(X, train_is), _safe_indexing(y, train_is))
"""


@pytest.fixture
def workflow(tmp_path):
    """The problem's workflow: a file outside the submission folder, like
    ramp-workflow's own or a kit's problem.py."""
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "workflow.py").write_text(WORKFLOW)
    return _import(tmp_path / "kit" / "workflow.py")


def test_an_error_in_the_problems_code_alone_is_the_problems_with_every_frame(
    submission_dir, workflow,
):
    import pandas as pd

    # The bug of issue 13: text labels read by pandas 3 with pyarrow installed
    # are an Arrow array, which scikit-learn cannot index with integers.
    y = pd.Series(["a", "b", "a", "b"], dtype=pd.StringDtype("pyarrow")).array
    (submission_dir / "estimator.py").write_text(
        "from sklearn.dummy import DummyClassifier\n\n\n"
        "def get_estimator():\n    return DummyClassifier()\n")
    estimator = _import(submission_dir / "estimator.py")
    with pytest.raises(TypeError) as raised:
        workflow.train_submission(estimator.get_estimator, np.zeros((4, 1)), y,
                                  np.array([0, 2]))

    error = SubmissionError("train", raised.value, submission_dir)

    assert charged_to(raised.value, submission_dir) == PROBLEM
    assert error.kind == PROBLEM
    # The event admins read where it failed: the workflow's frame and the library's.
    assert any(f.endswith("in train_submission") and "workflow.py" in f
               for f in _frames(error.traceback))
    assert any("sklearn/utils/_indexing.py" in f for f in _frames(error.traceback))
    assert error.traceback.rstrip().endswith(
        "TypeError: only integer scalar arrays can be converted to a scalar index")
    site_packages = str(Path(np.__file__).parent.parent)
    assert site_packages not in error.traceback


def test_an_error_through_the_participants_own_frame_is_theirs(submission_dir, workflow):
    (submission_dir / "estimator.py").write_text(
        "from sklearn.base import BaseEstimator\n\n\n"
        "def get_estimator():\n    raise ValueError('no estimator yet')\n")
    estimator = _import(submission_dir / "estimator.py")
    with pytest.raises(ValueError) as raised:
        workflow.train_submission(estimator.get_estimator, np.zeros((4, 1)),
                                  np.array([0, 1, 0, 1]), np.array([0, 2]))

    error = SubmissionError("train", raised.value, submission_dir)

    assert error.kind == PARTICIPANT
    assert _frames(error.traceback) == ['File "estimator.py", line 5, in get_estimator']


def test_a_stock_model_the_participant_returned_failing_in_the_library_is_theirs(
    submission_dir, workflow,
):
    # No frame of the submission runs when a scikit-learn scaler meets text:
    # the model is still the participant's choice, so is the error.
    (submission_dir / "estimator.py").write_text(
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "def get_estimator():\n"
        "    return make_pipeline(StandardScaler(), LogisticRegression())\n")
    estimator = _import(submission_dir / "estimator.py")
    X = np.array([["x"], ["y"], ["x"], ["y"]], dtype=object)
    with pytest.raises(ValueError) as raised:
        workflow.train_submission(estimator.get_estimator, X, np.array([0, 1, 0, 1]),
                                  np.array([0, 1, 2, 3]))

    assert charged_to(raised.value, submission_dir) == PARTICIPANT
    assert "could not convert string to float" in str(raised.value)


def test_a_syntax_error_in_the_participants_file_is_theirs(submission_dir):
    (submission_dir / "estimator.py").write_text("def get_estimator(:\n    return None\n")
    with pytest.raises(SyntaxError) as raised:
        _import(submission_dir / "estimator.py")

    assert charged_to(raised.value, submission_dir) == PARTICIPANT


# --- the harness on a real work dir ------------------------------------------------

@pytest.fixture(scope="module")
def prepared_iris(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("iris") / "prepared"
    ramp_kits.prepare_kit(EXAMPLES / "iris", out)
    return out


def _spec(**overrides) -> FoldTicket:
    fields = dict(fold_run_id=1, evaluation_id=1, fold_index=2, attempt=1,
                  inputs={}, files={}, limits={},
                  n_train=10, n_test=4, prediction_shape=[3])
    return FoldTicket(**{**fields, **overrides})


def test_harness_reports_an_error_in_fit_with_only_the_participants_frames(
    prepared_iris, tmp_path,
):
    source = (EXAMPLES / "iris" / "submissions" / "error_in_fit" / "estimator.py").read_bytes()
    files = {"estimator.py": source}
    workdir = tmp_path / "work"
    workdir.mkdir()
    lay_out(fold_ticket(prepared_iris, files, fold_index=2), workdir, prepared_iris, files)
    tmp_path = workdir

    assert main(tmp_path) == EXIT_SUBMISSION_ERROR

    result = json.loads((tmp_path / layout.RESULT).read_text())
    assert (result["status"], result["step"], result["error_type"]) == (
        "error", "train", "ValueError")
    assert result["message"] == "this estimator always fails in fit"
    assert _frames(result["traceback"]) == ['File "estimator.py", line 8, in fit']
    assert result["traceback"].endswith("\nValueError: this estimator always fails in fit\n")


CORPUS = Path(__file__).resolve().parents[1] / "conformance" / "kits"


def _prepared_corpus_kit(name: str, tmp_path_factory) -> Path:
    kit = tmp_path_factory.mktemp(name) / name
    shutil.copytree(CORPUS / name, kit)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit, check=True,
                   capture_output=True, timeout=120)
    ramp_kits.prepare_kit(kit, kit.parent / "prepared", public=False)
    return kit


@pytest.fixture(scope="module")
def detection_kit(tmp_path_factory) -> Path:
    return _prepared_corpus_kit("detection", tmp_path_factory)


@pytest.fixture(scope="module")
def images_kit(tmp_path_factory) -> Path:
    return _prepared_corpus_kit("images", tmp_path_factory)


@pytest.mark.parametrize("line", ["import subprocess", "data = open('/etc/passwd').read()"])
def test_a_word_ramp_workflow_refuses_in_the_submission_is_the_participants_error(
        prepared_iris, tmp_path, line):
    # ramp-workflow refuses the file before any of it runs, so no frame of the
    # participant's shows: still their error, with rampwf's own message.
    code = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_text()
    files = {"estimator.py": f"{line}\n{code}".encode()}
    workdir = tmp_path / "work"
    workdir.mkdir()
    lay_out(fold_ticket(prepared_iris, files), workdir, prepared_iris, files)

    assert main(workdir) == EXIT_SUBMISSION_ERROR

    result = json.loads((workdir / layout.RESULT).read_text())
    assert (result["kind"], result["error_type"]) == (PARTICIPANT, "RuntimeError")
    word = "subprocess" if "subprocess" in line else "open"
    assert result["message"] == f"forbidden key word {word} detected in submission."


NONE_FOR_A_ROW = """
import numpy as np


class ObjectDetector:
    def fit(self, X, y):
        return self

    def predict(self, X):
        y_pred = np.empty(len(X), dtype=object)
        for i in range(len(X)):
            y_pred[i] = [(0.9, 5.0, 5.0, 2.0)] if i != 1 else None
        return y_pred
"""


def test_a_detection_row_that_is_not_a_list_is_the_participants_error_naming_it(
        detection_kit, tmp_path):
    prepared = detection_kit.parent / "prepared"
    files = {"object_detector.py": NONE_FOR_A_ROW.encode()}
    workdir = tmp_path / "work"
    workdir.mkdir()
    lay_out(fold_ticket(prepared, files, prediction_shape=[-1, 4]), workdir, prepared, files)

    assert main(workdir) == EXIT_SUBMISSION_ERROR

    result = json.loads((workdir / layout.RESULT).read_text())
    assert (result["step"], result["kind"], result["error_type"]) == (
        "predict", PARTICIPANT, "TypeError")
    assert result["message"] == (
        "row 1 of the predictions on the training set is a NoneType, not a list of objects "
        "(an empty list when it has none)")
    assert not (workdir / layout.Y_PRED_TRAIN).exists()


def test_a_detection_fold_writes_one_float_row_per_object(detection_kit, tmp_path):
    prepared = detection_kit.parent / "prepared"
    files = {"object_detector.py": (detection_kit / "submissions" / "starting_kit"
                                    / "object_detector.py").read_bytes()}
    workdir = tmp_path / "work"
    workdir.mkdir()
    lay_out(fold_ticket(prepared, files, prediction_shape=[-1, 4]), workdir, prepared, files)

    assert main(workdir) == 0

    table = np.load(workdir / layout.Y_PRED_TRAIN, allow_pickle=False)
    assert table.dtype == np.float64 and table.ndim == 2 and table.shape[1] == 5
    assert len(table) > 0 and set(table[:, 0]) <= set(range(60))


def test_an_image_fold_reads_the_kits_images_from_its_own_copy_of_the_folder(
        images_kit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the harness runs the fold from the kit's folder
    prepared = images_kit.parent / "prepared"
    files = {"image_classifier.py": (images_kit / "submissions" / "starting_kit"
                                     / "image_classifier.py").read_bytes()}
    workdir = tmp_path / "work"
    workdir.mkdir()
    lay_out(fold_ticket(prepared, files), workdir, prepared, files)
    # Not the kit's images on this machine: the fold's copy, named from the kit.
    shutil.rmtree(images_kit / "data" / "imgs")

    try:
        assert main(workdir) == 0, (workdir / layout.RESULT).read_text()
    finally:
        subprocess.run([sys.executable, "prepare_data.py"], cwd=images_kit, check=True,
                       capture_output=True, timeout=120)

    assert len(list((workdir / layout.KIT_DIR / "data" / "imgs").glob("*.npy"))) == 135
    assert not (workdir / layout.KIT_DIR / "data" / "train.csv").exists()
    assert np.load(workdir / layout.Y_PRED_TRAIN, allow_pickle=False).shape == (90, 3)


# --- read_outcome -------------------------------------------------------------------

LIMITS = Limits(wall_time_s=3, memory_mb=512)


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / layout.OUTPUT_DIR).mkdir()
    return tmp_path


def _result(exit_code: int | None = 0, **kwargs) -> SandboxResult:
    return SandboxResult(exit_code=exit_code, wall_time=1.5, cpu_time=1.2,
                         peak_memory=50 * 2**20, isolation="local", **kwargs)


def _write_result(workdir: Path, **result) -> None:
    (workdir / layout.RESULT).write_text(json.dumps(result))


def _write_ok(workdir: Path, y_pred_train=None, y_pred_test=None) -> None:
    _write_result(workdir, status="ok", train_time=0.5, valid_time=0.1, test_time=0.05)
    np.save(workdir / layout.Y_PRED_TRAIN,
            np.full((10, 3), 1 / 3) if y_pred_train is None else y_pred_train)
    np.save(workdir / layout.Y_PRED_TEST,
            np.full((4, 3), 1 / 3) if y_pred_test is None else y_pred_test)


def test_read_outcome_reads_the_predictions_and_timings_of_a_good_run(workdir):
    _write_ok(workdir)

    outcome = read_outcome(_spec(), workdir, _result(), LIMITS)

    assert outcome.error == ""
    assert outcome.y_pred_train.shape == (10, 3) and outcome.y_pred_test.shape == (4, 3)
    assert (outcome.train_time, outcome.valid_time, outcome.test_time) == (0.5, 0.1, 0.05)
    assert (outcome.wall_time, outcome.peak_memory) == (1.5, 50 * 2**20)


@pytest.mark.parametrize(("terminated", "message"), [
    (Termination.TIME, "exceeded the time limit of 3 s in fold 2"),
    (Termination.MEMORY, "exceeded the memory limit of 512 MiB in fold 2"),
])
def test_read_outcome_names_the_limit_a_terminated_run_exceeded(workdir, terminated, message):
    _write_ok(workdir)  # whatever the run left is not read

    outcome = read_outcome(_spec(), workdir, _result(-9, terminated=terminated), LIMITS)

    assert outcome.error == message
    assert outcome.y_pred_train is None


def test_read_outcome_reports_the_participants_exception(workdir):
    _write_result(workdir, status="error", step="validate", error_type="KeyError",
                  message="'petal_length'", traceback='  File "estimator.py", line 3\n')

    outcome = read_outcome(_spec(), workdir, _result(EXIT_SUBMISSION_ERROR), LIMITS)

    assert outcome.error == ("KeyError while predicting on the training set in fold 2: "
                             "'petal_length'")
    assert outcome.error_traceback == '  File "estimator.py", line 3\n'


def test_read_outcome_tells_the_participant_an_error_of_the_problem_is_not_theirs(workdir):
    tb = ('Traceback (most recent call last):\n  File "rampwf/workflows/sklearn_pipeline.py", '
          'line 65, in train_submission\nTypeError: only integer scalar arrays\n')
    _write_result(workdir, status="error", step="train", error_type="TypeError",
                  message="only integer scalar arrays", traceback=tb, kind=PROBLEM)

    outcome = read_outcome(_spec(), workdir, _result(EXIT_SUBMISSION_ERROR), LIMITS)

    assert outcome.error_kind == "problem"
    assert outcome.error == (
        "the problem's own code raised TypeError while training in fold 2, with no part of "
        "your submission's code involved: not an error of yours, and not counted against "
        "your team's quota; the event admins can see the traceback")
    assert outcome.error_traceback == tb  # recorded, shown to the event admins only


def test_read_outcome_reports_a_memory_error_as_the_memory_limit(workdir):
    _write_result(workdir, status="error", step="train", error_type="MemoryError",
                  message="out of memory", traceback="")

    outcome = read_outcome(_spec(), workdir, _result(EXIT_SUBMISSION_ERROR), LIMITS)

    assert outcome.error == "exceeded the memory limit of 512 MiB in fold 2"


SYS_EXIT = ("the submission's process ended before writing its predictions in fold 2 "
            "(did the code call sys.exit()?)")


def test_read_outcome_of_a_clean_exit_without_result_asks_about_sys_exit(workdir):
    outcome = read_outcome(_spec(), workdir, _result(0), LIMITS)
    assert outcome.error == SYS_EXIT


def test_read_outcome_does_not_trust_a_result_json_that_is_not_json(workdir):
    _write_ok(workdir)
    (workdir / layout.RESULT).write_text('{"status": "ok", "train_time": ')

    outcome = read_outcome(_spec(), workdir, _result(0), LIMITS)

    assert outcome.error == SYS_EXIT
    assert outcome.y_pred_train is None


def test_read_outcome_reports_a_crash_with_its_exit_code_and_stderr(workdir):
    outcome = read_outcome(_spec(), workdir, _result(-11, stderr="Segmentation fault"), LIMITS)
    assert outcome.error == "the submission's process was killed by SIGSEGV in fold 2"
    assert outcome.error_traceback == "Segmentation fault"


def test_read_outcome_refuses_pickled_predictions(workdir):
    rows = np.empty(10, dtype=object)
    rows[:] = [[0.2, 0.3, 0.5]] * 10
    _write_ok(workdir)
    np.save(workdir / layout.Y_PRED_TRAIN, rows, allow_pickle=True)

    outcome = read_outcome(_spec(), workdir, _result(), LIMITS)

    assert outcome.error.startswith("y_pred_train.npy is not a plain numeric .npy array (")
    assert outcome.error.endswith(") in fold 2")
    assert outcome.y_pred_train is None


def test_read_outcome_reports_a_missing_predictions_file(workdir):
    _write_ok(workdir)
    (workdir / layout.Y_PRED_TEST).unlink()

    outcome = read_outcome(_spec(), workdir, _result(), LIMITS)

    assert outcome.error == "the submission wrote no y_pred_test.npy in fold 2"


def test_read_outcome_does_not_follow_a_symlinked_predictions_file(workdir, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "y.npy"
    np.save(elsewhere, np.zeros((4, 3)))
    _write_ok(workdir)
    (workdir / layout.Y_PRED_TEST).unlink()
    (workdir / layout.Y_PRED_TEST).symlink_to(elsewhere)

    outcome = read_outcome(_spec(), workdir, _result(), LIMITS)

    assert outcome.error == "the submission wrote no y_pred_test.npy in fold 2"


def test_read_outcome_refuses_a_predictions_file_larger_than_its_shape_needs(workdir):
    _write_ok(workdir, y_pred_train=np.zeros((10_000, 3)))
    size = (workdir / layout.Y_PRED_TRAIN).stat().st_size

    outcome = read_outcome(_spec(), workdir, _result(), LIMITS)

    # 10 rows of 3 float64 values, plus room for the .npy header.
    assert outcome.error == (f"y_pred_train.npy is {size} bytes, more than the "
                             f"{10 * 3 * 8 + 4096} expected in fold 2")
    assert outcome.y_pred_train is None


def test_read_outcome_refuses_an_npz_archive_named_like_predictions(workdir):
    _write_ok(workdir)
    with open(workdir / layout.Y_PRED_TRAIN, "wb") as f:
        np.savez(f, y_pred=np.zeros((10, 3)))

    outcome = read_outcome(_spec(), workdir, _result(), LIMITS)

    assert outcome.error.startswith("y_pred_train.npy is not a plain numeric .npy array")
    assert outcome.y_pred_train is None


def test_read_outcome_refuses_an_empty_predictions_file(workdir):
    _write_ok(workdir)
    (workdir / layout.Y_PRED_TEST).write_bytes(b"")

    outcome = read_outcome(_spec(), workdir, _result(), LIMITS)

    assert outcome.error.startswith("y_pred_test.npy is not a plain numeric .npy array")


# --- the fork server's warm-up -------------------------------------------------------

WARM_UP_PROBE = r"""
import json, pickle, sys
import numpy as np, pandas as pd, sklearn
from workers.harness.forkserver import exercise, preload

preload()
options = {key: pd.get_option(key) for key in pd._config.config._registered_options}
config = sklearn.get_config()
rng = np.random.get_state()[1].tolist()
exercise()
changed = {
    "pandas options": [k for k, v in options.items() if pd.get_option(k) != v],
    "sklearn config": sklearn.get_config() != config,
    "global random state": np.random.get_state()[1].tolist() != rng,
}
before = set(sys.modules)
# What a fold of a DataFrame kit with text labels runs.
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X = pickle.loads(pickle.dumps(pd.DataFrame(
    {"sepal": np.arange(30.0), "petal": np.arange(30.0) % 7, "ratio": np.arange(30.0) / 3})))
y = np.array(["setosa", "virginica", "versicolor"] * 10, dtype=object)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
model.predict_proba(X)
np.save(open("/dev/null", "wb"), model.predict_proba(X), allow_pickle=False)
print(json.dumps({"changed": changed, "imported": sorted(set(sys.modules) - before)}))
"""


def test_the_warm_up_leaves_nothing_a_fold_sees_and_leaves_it_nothing_to_import():
    """The fork server runs a made-up fold before it forks: a DataFrame fold
    then imports no module of its own (the ~20 ms of lazy imports scikit-learn
    and pandas make on first use were paid once), and the warm-up changed no
    option, configuration or random state the participant's code starts from."""
    from workers.sandbox.local import sandbox_environment

    out = subprocess.run([sys.executable, "-c", WARM_UP_PROBE], capture_output=True,
                         text=True, env=sandbox_environment(), check=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    assert probe["changed"] == {"pandas options": [], "sklearn config": False,
                                "global random state": False}
    assert probe["imported"] == []
