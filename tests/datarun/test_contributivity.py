"""Contributivity on arrays, and equality with ramp-workflow's blending.

The last tests build real RAMP kits, run ``ramp-test --save-output`` on several
submissions and blend them with ramp-workflow's ``blend_submissions`` (what
``ramp-blend`` runs); our contributivities must equal the ``contributivities.csv``
it writes.
"""
import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rampwf as rw
from rampwf.utils.combine import blend_on_fold, get_score_cv_bags
from rampwf.utils.testing import assert_read_problem, blend_submissions

from datarun.contributivity import (
    EnsembleScore,
    blend,
    contributivity,
    per_candidate,
    ramp_ensemble_score,
)
from tests.conftest import EXAMPLES

RAMP_TEST = str(Path(sys.executable).parent / "ramp-test")
# Some synthetic submissions round their probabilities, which sklearn's log
# loss (called by rampwf) warns about.
pytestmark = pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean(np.square(y_true - y_pred))))


RMSE = EnsembleScore(per_candidate(rmse), is_lower_the_better=True)
NEGATIVE_RMSE = EnsembleScore(per_candidate(lambda t, p: -rmse(t, p)), is_lower_the_better=False)

# Worked by hand (RMSE, y = [1, -1]): C alone scores 0.5; C+B 0.25 beats C+A
# (0.75) and C+C (0.5); then C+B+C is exact (0), and nothing beats 0.
Y = np.array([1.0, -1.0])
A, B, C = [2.0, 0.0], [0.0, -2.0], [1.5, -0.5]


def test_worked_example_shares_each_fold_among_the_selected_list():
    result = blend([Y, Y], [[A, B, C], [A, B, C]], RMSE)
    assert [list(e) for e in result.ensembles] == [[2, 1, 2], [2, 1, 2]]
    np.testing.assert_allclose(result.scores, [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(result.contributivity, [0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(result.fold_contributivity, [[0, 0], [1 / 6] * 2, [1 / 3] * 2])


def test_higher_is_better_scores_select_the_same_blend():
    preds = [[A, B, C], [C, A, B]]
    np.testing.assert_array_equal(contributivity([Y, Y], preds, NEGATIVE_RMSE),
                                  contributivity([Y, Y], preds, RMSE))


def test_a_perfect_submission_gets_all_the_credit():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    preds = [y + rng.normal(size=50) for _ in range(5)] + [y.copy()]
    np.testing.assert_array_equal(contributivity([y, y], [preds, preds], RMSE),
                                  [0, 0, 0, 0, 0, 1])


def test_of_two_identical_submissions_only_the_first_is_ever_selected():
    """As in ramp-workflow, a candidate must beat the best so far strictly."""
    result = blend([Y], [[A, C, B, C]], RMSE)
    assert list(result.ensembles[0]) == [1, 2, 1]
    np.testing.assert_allclose(result.contributivity, [0, 2 / 3, 1 / 3, 0])


def test_min_improvement_stops_the_blend_early():
    # Adding B improves 0.5 to 0.25: not by more than 0.3.
    assert list(blend([Y], [[A, B, C]], RMSE, min_improvement=0.3).ensembles[0]) == [2]
    assert list(blend([Y], [[A, B, C]], RMSE, min_improvement=0.2).ensembles[0]) == [2, 1, 2]


def test_max_ensemble_size_caps_the_list():
    result = blend([Y], [[A, B, C]], RMSE, max_ensemble_size=2)
    assert list(result.ensembles[0]) == [2, 1]
    np.testing.assert_allclose(result.contributivity, [0, 0.5, 0.5])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_submission_with_non_finite_predictions_on_a_fold_is_never_selected_there(bad):
    broken = np.array(Y)  # perfect, except for one value
    broken[1] = bad
    result = blend([Y, Y], [[A, B, C, broken], [A, B, C, Y]], RMSE)
    assert 3 not in result.ensembles[0]
    assert list(result.ensembles[1]) == [3]
    np.testing.assert_allclose(result.contributivity, [0, 1 / 6, 1 / 3, 1 / 2])


def test_a_fold_where_nothing_can_be_selected_is_left_out_and_credit_still_sums_to_one():
    nan = [np.nan, np.nan]
    result = blend([Y, Y], [[nan, nan], [A, C]], RMSE)
    assert len(result.ensembles[0]) == 0 and np.isnan(result.scores[0])
    np.testing.assert_allclose(result.contributivity, [0, 1])


def test_no_submission_at_all_gives_no_credit():
    nan = [np.nan, np.nan]
    assert contributivity([Y], [[nan]], RMSE).tolist() == [0.0]


def test_folds_must_have_the_same_submissions():
    with pytest.raises(ValueError, match="same submissions"):
        blend([Y, Y], [[A, B], [A]], RMSE)
    with pytest.raises(ValueError, match="2 folds of labels but 1"):
        blend([Y, Y], [[A, B]], RMSE)


def test_predictions_that_are_not_averaged_are_refused():
    class Voted(rw.prediction_types.make_regression()):
        @classmethod
        def combine(cls, predictions_list, index_list=None):
            raise NotImplementedError

    with pytest.raises(ValueError, match="does not average"):
        ramp_ensemble_score(rw.score_types.RMSE(), Voted)


# --- equality with ramp-workflow on arrays ------------------------------------------

LABELS = ["a", "b", "c"]
MULTICLASS = rw.prediction_types.make_multiclass(label_names=LABELS)
BINARY = rw.prediction_types.make_multiclass(label_names=[0, 1])
REGRESSION = rw.prediction_types.make_regression()


def _synthetic(kind: str, n_submissions: int = 25, n_rows: int = 80, seed: int = 0):
    """Submissions of varied quality sharing some errors, a few of them rounded
    (so that scores tie) and one duplicated."""
    rng = np.random.default_rng(seed)
    if kind == "regression":
        y = rng.normal(size=n_rows)
        shared = rng.normal(size=n_rows)
        preds = [y + rng.uniform(0.2, 1.5) * rng.normal(size=n_rows)
                 + rng.uniform(0, 1) * shared + rng.normal(scale=0.2) for _ in range(n_submissions)]
        preds[3] = np.round(preds[3], 1)
    else:
        labels = LABELS if kind == "multiclass" else [0, 1]
        y = rng.choice(labels, n_rows)
        one_hot = (np.asarray(labels)[None, :] == y[:, None]).astype(float)
        shared = rng.normal(size=one_hot.shape)
        preds = []
        for i in range(n_submissions):
            logits = (rng.uniform(0.2, 2) * one_hot + rng.uniform(0, 1) * shared
                      + 1.5 * rng.normal(size=one_hot.shape))
            proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            preds.append(np.round(proba, 1) if i % 6 == 4 else proba)
    preds[7] = preds[2].copy()
    return y, np.array(preds)


SCORE_CASES = [
    (rw.score_types.Accuracy(), MULTICLASS, "multiclass"),
    (rw.score_types.ClassificationError(), MULTICLASS, "multiclass"),
    (rw.score_types.NegativeLogLikelihood(), MULTICLASS, "multiclass"),
    (rw.score_types.BalancedAccuracy(), MULTICLASS, "multiclass"),  # per-candidate fallback
    (rw.score_types.ROCAUC(), BINARY, "binary"),  # per-candidate fallback
    (rw.score_types.RMSE(), REGRESSION, "regression"),
    (rw.score_types.MARE(), REGRESSION, "regression"),
]


@pytest.mark.parametrize("min_improvement", [0.0, 0.002, 0.02])
@pytest.mark.parametrize(("score_type", "Predictions", "kind"), SCORE_CASES,
                         ids=[type(c[0]).__name__ for c in SCORE_CASES])
def test_each_fold_blend_equals_ramp_workflows(score_type, Predictions, kind,
                                               min_improvement):
    """Same list (same order, same repetitions) and same score as blend_on_fold."""
    for seed in range(3):
        y, preds = _synthetic(kind, seed=seed)
        truth = Predictions(y_true=y)
        predictions = [Predictions(y_pred=p) for p in preds]
        with contextlib.redirect_stdout(io.StringIO()):
            expected = blend_on_fold(predictions, truth, score_type,
                                     min_improvement=min_improvement)
        expected_score = score_type.score_function(
            truth, Predictions.combine(predictions, expected))

        result = blend([y], [preds], ramp_ensemble_score(score_type, Predictions),
                       min_improvement=min_improvement)
        assert result.ensembles[0].tolist() == list(expected)
        assert result.scores[0] == expected_score


@pytest.mark.parametrize(("score_type", "Predictions", "kind"), SCORE_CASES,
                         ids=[type(c[0]).__name__ for c in SCORE_CASES])
def test_batch_scores_equal_the_score_types_own(score_type, Predictions, kind):
    y, preds = _synthetic(kind, seed=5)
    score = ramp_ensemble_score(score_type, Predictions)
    truth = score.truth(y)
    expected = [score_type.score_function(Predictions(y_true=y), Predictions(y_pred=p))
                for p in preds]
    assert score.score(truth, score.project(truth, preds)).tolist() == expected


# --- equality with ramp-blend on real kits ------------------------------------------

CLASSIFIERS = {
    "weak_logreg": "from sklearn.linear_model import LogisticRegression\n"
                   "def get_estimator():\n    return LogisticRegression(C=0.002)\n",
    "knn": "from sklearn.neighbors import KNeighborsClassifier\n"
           "def get_estimator():\n    return KNeighborsClassifier(n_neighbors=25)\n",
    "stump": "from sklearn.tree import DecisionTreeClassifier\n"
             "def get_estimator():\n    return DecisionTreeClassifier(max_depth=1)\n",
    "naive_bayes": "from sklearn.naive_bayes import GaussianNB\n"
                   "def get_estimator():\n    return GaussianNB()\n",
    "first_feature": "from sklearn.compose import ColumnTransformer\n"
                     "from sklearn.linear_model import LogisticRegression\n"
                     "from sklearn.pipeline import make_pipeline\n"
                     "def get_estimator():\n"
                     "    keep = ColumnTransformer([('x0', 'passthrough', [0])])\n"
                     "    return make_pipeline(keep, LogisticRegression())\n",
}
REGRESSORS = {
    "ridge": "from sklearn.linear_model import Ridge\n"
             "def get_estimator():\n    return Ridge(alpha=30.0)\n",
    "knn": "from sklearn.neighbors import KNeighborsRegressor\n"
           "def get_estimator():\n    return KNeighborsRegressor(n_neighbors=15)\n",
    "tree": "from sklearn.tree import DecisionTreeRegressor\n"
            "def get_estimator():\n    return DecisionTreeRegressor(max_depth=3, random_state=0)\n",
    "mean": "from sklearn.dummy import DummyRegressor\n"
            "def get_estimator():\n    return DummyRegressor()\n",
    "first_feature": "from sklearn.compose import ColumnTransformer\n"
                     "from sklearn.linear_model import LinearRegression\n"
                     "from sklearn.pipeline import make_pipeline\n"
                     "def get_estimator():\n"
                     "    keep = ColumnTransformer([('x2', 'passthrough', [2])])\n"
                     "    return make_pipeline(keep, LinearRegression())\n",
}


@pytest.fixture(scope="module")
def tested_kits(tmp_path_factory):
    """Each kit with seven submissions (one a copy of the starting kit) tested
    by ``ramp-test --save-output``; built on first use."""
    built = {}

    def get(name: str) -> tuple[Path, list[str]]:
        if name not in built:
            kit = tmp_path_factory.mktemp("kits") / name
            shutil.copytree(EXAMPLES / name, kit)
            shutil.rmtree(kit / "submissions" / "error_in_fit")
            shutil.copytree(kit / "submissions" / "starting_kit",
                            kit / "submissions" / "starting_kit_copy")
            for sub, code in (REGRESSORS if name == "diabetes" else CLASSIFIERS).items():
                (kit / "submissions" / sub).mkdir()
                (kit / "submissions" / sub / "estimator.py").write_text(code)
            subprocess.run([RAMP_TEST, "--submission", "ALL", "--save-output"], cwd=kit,
                           check=True, capture_output=True)
            built[name] = kit, sorted(p.name for p in (kit / "submissions").iterdir())
        return built[name]
    return get


BLEND_CASES = [
    ("iris", 0, 0.0),  # accuracy: many ties
    ("iris", 1, 0.0),  # classification error: lower is better
    ("iris", 2, 0.0),  # negative log-likelihood
    ("iris", 2, 0.01),
    ("breast_cancer", 0, 0.0),
    ("breast_cancer", 1, 0.0),  # ROC AUC: the per-candidate fallback
    ("breast_cancer", 2, 0.0),
    ("diabetes", 0, 0.0),  # RMSE
    ("diabetes", 0, 0.5),
    ("diabetes", 1, 0.0),  # MARE
]


@pytest.mark.parametrize(("kit_name", "score_type_index", "min_improvement"), BLEND_CASES)
def test_contributivities_equal_ramp_blend(tested_kits, kit_name, score_type_index,
                                           min_improvement):
    kit, submissions = tested_kits(kit_name)
    submissions_dir = kit / "submissions"
    with contextlib.redirect_stdout(io.StringIO()):
        blend_submissions(submissions, ramp_kit_dir=str(kit), ramp_data_dir=str(kit),
                          ramp_submission_dir=str(submissions_dir), save_output=True,
                          min_improvement=min_improvement, score_type_index=score_type_index)
    out = submissions_dir / "training_output"
    expected = pd.read_csv(out / "contributivities.csv").set_index("submission")

    problem = assert_read_problem(str(kit))
    X_train, y_train = problem.get_train_data(str(kit))
    folds = list(problem.get_cv(X_train, y_train))
    y_true = [y_train[valid_is] for _, valid_is in folds]
    y_pred = [
        np.stack([
            np.load(submissions_dir / sub / "training_output" / f"fold_{k}" / "y_pred_train.npz",
                    allow_pickle=False)["y_pred"][valid_is]
            for sub in submissions
        ])
        for k, (_, valid_is) in enumerate(folds)
    ]
    score_type = problem.score_types[score_type_index]
    result = blend(y_true, y_pred, ramp_ensemble_score(score_type, problem.Predictions),
                   min_improvement=min_improvement)

    for i, sub in enumerate(submissions):
        for k in range(len(folds)):
            assert result.fold_contributivity[i, k] == pytest.approx(
                expected.loc[sub, f"fold_{k}"], abs=1e-12)
        # ramp-board's contributivity: the sum of the fold columns.
        assert result.contributivity[i] == pytest.approx(
            sum(expected.loc[sub, f"fold_{k}"] for k in range(len(folds))), abs=1e-12)
    # ramp-blend's own column: the percentage, rounded.
    percent = np.round(100 * result.contributivity / result.contributivity.sum()).astype(int)
    assert dict(zip(submissions, percent.tolist(), strict=True)) == \
        expected["contributivity"].to_dict()
    assert result.contributivity.sum() == pytest.approx(1.0, abs=1e-12)

    # The blended (combined, then bagged over folds) valid score ramp-blend writes.
    combined = [
        problem.Predictions.combine(
            [problem.Predictions(y_pred=y) for y in fold_preds], ensemble)
        for fold_preds, ensemble in zip(y_pred, result.ensembles, strict=True)
    ]
    _, bagged = get_score_cv_bags(score_type, combined, problem.Predictions(y_true=y_train),
                                  test_is_list=[valid_is for _, valid_is in folds])
    scores = pd.read_csv(out / "bagged_scores_combined.csv")
    valid = scores[scores["step"] == "valid"]
    assert bagged[-1] == pytest.approx(valid[score_type.name].iloc[-1], abs=1e-9)
