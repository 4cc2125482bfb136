"""Contributivity (Caruana blending on every fold) on synthetic submissions.

For each scenario (3-class classification blended on negative log-likelihood,
the same on accuracy, and a regression blended on RMSE) prints:
  - our time for --submissions submissions x --folds folds of --rows
    validation rows each, and the time per fold;
  - the mean ensemble size and how many candidate blends were scored;
  - the baseline: ramp-workflow's own blend_on_fold (what ramp-blend and
    ramp-board run) on the first --baseline-submissions submissions of fold 0,
    against ours on the very same input (the ensembles are checked equal);
    the ratio is rampwf's time / ours on that input, and rampwf's cost per
    candidate blend extrapolates its time on the full input.

Usage: python bench/contributivity.py [--submissions 1000] [--folds 5] [--rows 500]
"""
import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def classification(rng, n_submissions: int, n_rows: int, n_classes: int):
    """Probabilities of submissions of varied skill sharing part of their errors."""
    y = rng.integers(0, n_classes, n_rows)
    one_hot = np.eye(n_classes)[y]
    shared = rng.normal(size=(n_rows, n_classes))
    skill = rng.uniform(0.5, 1.5, (n_submissions, 1, 1))
    logits = (skill * one_hot + 0.3 * shared
              + 1.5 * rng.normal(size=(n_submissions, n_rows, n_classes)))
    proba = np.exp(logits)
    return y, proba / proba.sum(axis=2, keepdims=True)


def regression(rng, n_submissions: int, n_rows: int):
    y = rng.normal(size=n_rows)
    shared = rng.normal(size=n_rows)
    noise = rng.uniform(0.5, 1.5, (n_submissions, 1)) * rng.normal(size=(n_submissions, n_rows))
    bias = rng.normal(scale=0.1, size=(n_submissions, 1))
    return y, y + 0.3 * shared + noise + bias


def candidate_blends(ensembles, n_submissions: int, max_size: int) -> int:
    """Single scores, then one round per addition plus the round that found none."""
    rounds = sum(len(e) - (len(e) == max_size) for e in ensembles)
    return n_submissions * (len(ensembles) + rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=500, help="validation rows per fold")
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--baseline-submissions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import rampwf as rw
    from rampwf.utils.combine import blend_on_fold

    from datarun.contributivity import MAX_ENSEMBLE_SIZE, blend, ramp_ensemble_score

    labels = list(range(args.classes))
    multiclass = rw.prediction_types.make_multiclass(label_names=labels)
    scenarios = [
        ("classification, nll", rw.score_types.NegativeLogLikelihood(), multiclass),
        ("classification, accuracy", rw.score_types.Accuracy(), multiclass),
        ("regression, rmse", rw.score_types.RMSE(), rw.prediction_types.make_regression()),
    ]
    n, n_base = args.submissions, min(args.baseline_submissions, args.submissions)
    print(f"{n} submissions x {args.folds} folds x {args.rows} validation rows "
          f"({args.classes} classes for classification); baseline: rampwf blend_on_fold "
          f"on {n_base} submissions, fold 0\n")
    print(f"{'scenario':26} {'ours (s)':>9} {'per fold':>9} {'ens. size':>9} "
          f"{'blends':>9} {'us/blend':>9} | {'rampwf':>8} {'ours':>8} {'ratio':>7} "
          f"{'rampwf us/blend':>15} {'rampwf full (s, extrap.)':>24}")
    for name, score_type, Predictions in scenarios:
        rng = np.random.default_rng(args.seed)
        folds = [
            regression(rng, n, args.rows) if "regression" in name
            else classification(rng, n, args.rows, args.classes)
            for _ in range(args.folds)
        ]
        y_true = [y for y, _ in folds]
        y_pred = [p for _, p in folds]
        score = ramp_ensemble_score(score_type, Predictions)

        start = time.perf_counter()
        result = blend(y_true, y_pred, score)
        ours = time.perf_counter() - start
        blends = candidate_blends(result.ensembles, n, MAX_ENSEMBLE_SIZE)
        size = np.mean([len(e) for e in result.ensembles])

        # Baseline and ours on the same subset: fold 0, first n_base submissions.
        y0, p0 = y_true[0], y_pred[0][:n_base]
        start = time.perf_counter()
        subset = blend([y0], [p0], score)
        ours_subset = time.perf_counter() - start
        truth = Predictions(y_true=y0)
        predictions = [Predictions(y_pred=p) for p in p0]
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            expected = blend_on_fold(predictions, truth, score_type)
        ramp = time.perf_counter() - start
        if subset.ensembles[0].tolist() != list(expected):
            raise SystemExit(f"{name}: the ensembles differ from rampwf's")
        ramp_per_blend = ramp / candidate_blends([expected], n_base, MAX_ENSEMBLE_SIZE)

        print(f"{name:26} {ours:9.2f} {ours / args.folds:9.3f} {size:9.1f} {blends:9d} "
              f"{ours / blends * 1e6:9.2f} | {ramp:8.2f} {ours_subset:8.3f} "
              f"{ramp / ours_subset:6.0f}x {ramp_per_blend * 1e6:15.1f} "
              f"{ramp_per_blend * blends:24.0f}")
    print("\nblends = candidate ensembles scored (n per round). ratio = rampwf's time / ours "
          "on the same subset (identical ensembles). rampwf full = its cost per blend x our "
          "blend count on the full input.")


if __name__ == "__main__":
    main()
