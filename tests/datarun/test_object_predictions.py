"""Predictions that are lists of objects (detection) on arrays, no database:
the object table they leave the sandbox as, its checks on the trusted side,
and scores equal to ramp-workflow's on the lists themselves."""
import io
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from rampwf.prediction_types import (
    make_clustering,
    make_combined,
    make_detection,
    make_multiclass,
)
from rampwf.score_types.detection import OSPA, DetectionAveragePrecision
from rampwf.utils.combine import get_score_cv_bags

from datarun import contract, contributivity, ramp_kits, scoring
from datarun.errors import InvalidKit
from workers.fold_io import unpack_kit_files
from workers.harness import kit_files, predictions

WIDTH = 4  # (conf, x, y, r)


def detections(rng, n_rows, most=3):
    rows = np.empty(n_rows, dtype=object)
    for i in range(n_rows):
        rows[i] = [tuple(float(v) for v in (rng.uniform(), *rng.uniform(2, 20, 2),
                                            rng.uniform(1, 4)))
                   for _ in range(rng.integers(0, most + 1))]
    return rows


def truth(rng, n_rows):
    rows = np.empty(n_rows, dtype=object)
    for i in range(n_rows):
        rows[i] = [tuple(rng.uniform(2, 20, 2)) + (rng.uniform(1, 4),)
                   for _ in range(rng.integers(0, 3))]
    return rows


def check(table, n_rows=6, width=WIDTH):
    return scoring.check_predictions(table, n_rows=n_rows, row_shape=[contract.OBJECTS, width],
                                     what="test set")


def test_lists_of_objects_cross_as_a_plain_float_table_and_come_back_equal():
    y_pred = detections(np.random.default_rng(0), 6)
    y_pred[2] = []

    table = predictions.object_table(y_pred, width=WIDTH, what="test set")
    buffer = io.BytesIO()
    np.save(buffer, table, allow_pickle=False)
    back = contract.load_npy(buffer.getvalue(), "y_pred_test")

    assert back.dtype == np.float64 and back.shape == (sum(map(len, y_pred)), WIDTH + 1)
    assert check(back) is None
    assert list(scoring.objects_from_table(back, 6)) == [list(row) for row in y_pred]


def test_no_object_at_all_is_a_valid_empty_table():
    table = predictions.object_table([[], [], []], width=WIDTH, what="test set")
    assert table.shape == (0, WIDTH + 1)
    assert check(table, n_rows=3) is None
    assert list(scoring.objects_from_table(table, 3)) == [[], [], []]


def test_the_width_of_predicted_objects_is_one_more_than_the_true_ones():
    labels = truth(np.random.default_rng(1), 20)
    assert scoring.prediction_shape(labels) == [contract.OBJECTS, 4]
    assert predictions.prediction_shape(labels) == scoring.prediction_shape(labels)
    for numeric in (np.zeros(5), np.zeros((5, 3))):
        assert predictions.prediction_shape(numeric) == scoring.prediction_shape(numeric)


@pytest.mark.parametrize("y_pred, message", [
    ([[(0.5, 1, 2, 3)], None], "row 1 of the predictions on the test set is a NoneType, not "
                               "a list of objects"),
    ([[(0.5, 1, 2)]], "an object of row 0 of the predictions on the test set has 3 values, "
                      "not 4"),
    ([[("a", 1, 2, 3)]], "an object of row 0 of the predictions on the test set is not 4 "
                         "numbers"),
    (3.0, "predictions on the test set must be a list of objects per row, not a float"),
])
def test_the_harness_names_what_is_wrong_with_a_submissions_objects(y_pred, message):
    with pytest.raises(TypeError) as refused:
        predictions.object_table(y_pred, width=WIDTH, what="test set")
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("table, message", [
    (np.zeros((3, 4)), "predictions on the test set must be a table of one row per object "
                       "(its row index and 4 values), not an array of shape (3, 4)"),
    (np.zeros(5), "must be a table of one row per object"),
    (np.array([[0, np.nan, 1, 1, 1]]), "predictions on the test set contain NaN or infinite"),
    (np.array([[0, 0.5, 1, 1, np.inf]]), "contain NaN or infinite values"),
    (np.array([[6, 0.5, 1, 1, 1]]), "the row indexes of the predictions on the test set are "
                                    "not rows 0 to 5"),
    (np.array([[-1, 0.5, 1, 1, 1]]), "are not rows 0 to 5"),
    (np.array([[0.5, 0.5, 1, 1, 1]]), "are not rows 0 to 5"),
    (np.array([[2, 0.5, 1, 1, 1], [1, 0.5, 1, 1, 1]]), "the objects of the predictions on the "
                                                       "test set are not sorted by row"),
    (np.array([["0", "1", "1", "1", "1"]]), "predictions on the test set must be numbers"),
])
def test_the_trusted_side_refuses_a_malformed_table(table, message):
    assert message in check(table)


def test_more_objects_than_allowed_are_refused_by_count_and_by_size():
    n_rows = 2
    too_many = contract.max_objects(n_rows) + 1
    table = np.zeros((too_many, WIDTH + 1))
    assert check(table, n_rows=n_rows) == (
        f"predictions on the test set hold {too_many} objects, more than the "
        f"{contract.max_objects(n_rows)} allowed ({contract.MAX_OBJECTS_PER_ROW} per row)")
    # The wire refuses the bytes before they are read (with room for a header).
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((too_many + 200, WIDTH + 1)), allow_pickle=False)
    limit = contract.max_prediction_bytes(n_rows, [contract.OBJECTS, WIDTH])
    assert len(buffer.getvalue()) > limit
    with pytest.raises(contract.ContractError, match="more than the"):
        contract.outcome_from_wire({}, {"y_pred_train": buffer.getvalue(),
                                        "y_pred_test": buffer.getvalue()},
                                   max_prediction_bytes=limit)


def test_a_pickled_object_array_is_never_loaded():
    y_pred = detections(np.random.default_rng(2), 4)
    buffer = io.BytesIO()
    np.save(buffer, y_pred, allow_pickle=True)
    with pytest.raises(contract.ContractError, match="not a plain numeric .npy array"):
        contract.load_npy(buffer.getvalue(), "y_pred_test")


def test_scores_of_a_table_equal_ramp_workflows_on_the_lists():
    rng = np.random.default_rng(3)
    n_train, n_test = 12, 5
    problem = SimpleNamespace(Predictions=make_detection(),
                              score_types=[OSPA(name="ospa"),
                                           DetectionAveragePrecision(name="ap")])
    y_train, y_test = truth(rng, n_train), truth(rng, n_test)
    folds = [(np.arange(0, 8), np.arange(8, 12)), (np.arange(4, 12), np.arange(0, 4))]
    trains = [detections(rng, n_train) for _ in folds]
    tests = [detections(rng, n_test) for _ in folds]

    def table(y):
        return predictions.object_table(y, width=WIDTH, what="x")

    P = problem.Predictions
    for fold, y_pred_train, y_pred_test in zip(folds, trains, tests, strict=True):
        scores = scoring.fold_scores(problem, y_train, y_test, fold, table(y_pred_train),
                                     table(y_pred_test))
        for st in problem.score_types:
            assert scores["valid"][st.name] == st.score_function(
                P(y_true=y_train, fold_is=fold[1]), P(y_pred=y_pred_train, fold_is=fold[1]))
            assert scores["test"][st.name] == st.score_function(P(y_true=y_test),
                                                                P(y_pred=y_pred_test))
    bagged = scoring.bagged_scores(problem, y_train, y_test, folds, [table(y) for y in trains],
                                   [table(y) for y in tests])
    for st in problem.score_types:
        _, curve = get_score_cv_bags(st, [P(y_pred=y) for y in tests], P(y_true=y_test))
        assert bagged["test"][st.name] == curve[-1]


def test_detection_gets_no_contributivity_and_averaged_types_do():
    assert not contributivity.blends_by_averaging(make_detection())
    mixed = make_combined([make_clustering(), make_multiclass(label_names=[0, 1])])
    assert contributivity.blends_by_averaging(mixed)


def test_kit_files_from_a_runner_may_not_leave_the_data_folder(tmp_path):
    archive = tmp_path / "kit_files.zip"
    for name in ("../escape.npy", "/etc/passwd", "problem.py", "data/../../x"):
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr(name, b"x")
        with pytest.raises(ValueError, match="outside data/"):
            unpack_kit_files(archive, tmp_path / "kit")
        assert not (tmp_path / "kit").exists()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("data/imgs/1.npy", b"x")
    unpack_kit_files(archive, tmp_path / "kit")
    assert (tmp_path / "kit" / "data" / "imgs" / "1.npy").read_bytes() == b"x"


def test_the_harness_and_the_server_name_the_same_kit_folders(tmp_path):
    kit = tmp_path / "kit"
    (kit / "data" / "imgs").mkdir(parents=True)
    (kit / "data" / "train.csv").write_text("id\n1\n")
    (tmp_path / "elsewhere").mkdir()
    X = (str(kit / "data" / "imgs"), np.arange(3))
    for value, expected in ((str(kit / "data" / "imgs"), "data/imgs"),
                            ("data/imgs", "data/imgs"), ("./data/imgs/", "data/imgs"),
                            (str(tmp_path / "elsewhere"), None), ("data/train.csv", None),
                            ("../elsewhere", None), ("imgs", None), (3, None)):
        assert ramp_kits.kit_folder(value, kit) == kit_files.kit_folder(value, kit) == expected
    with pytest.raises(InvalidKit, match="holds the test labels"):
        ramp_kits.kit_folder(str(kit / "data"), kit)
    with pytest.raises(ValueError, match="holds the test labels"):
        kit_files.kit_folder("data", kit)
    assert ramp_kits.with_kit_folders(X, kit)[1] == kit_files.with_kit_folders(X, kit)[1] == [
        "data/imgs"]
    assert ramp_kits.with_kit_folders(X, kit)[0][0] == "data/imgs"
