"""Declarative problems (no Django): the spec, its checks, and the RAMP kit it becomes.

An organiser describes a problem instead of writing ``problem.py``::

    name: iris-declarative
    title: Iris (declarative)
    dataset: iris@1                 # a dataset version
    target: species
    ignore: [id]                    # columns that are not features
    task: multiclass                # binary | multiclass | regression
    score_types: [accuracy, error, {type: nll, name: nll, precision: 3}]
    split: {test: ..., cv: ...}     # a split spec, or the id of an existing split
    workflow: estimator             # | feature_extractor_classifier | _regressor
    limits: {wall_time_s: 60, memory_mb: 1024, cpus: 1}
    environment: {packages: [pandas==2.2.3, xgboost]}   # optional: its own venv/image

:func:`parse_problem_spec` checks the spec alone, :func:`check_columns` and
:func:`target_labels` check it against the dataset's table, and
:func:`write_kit` writes the RAMP kit: ``problem.py`` whose ``get_cv`` returns
the folds stored in ``data/train_folds.npz`` (materialised once with the
split, never recomputed), ``data/train.csv`` and ``data/test.csv`` (features
and target only), a starting kit and a README. The kit is then imported like any
RAMP kit, so a declarative problem runs through the same worker path.
``environment.packages`` are locked and built as a kit's ``requirements.txt``
is (:mod:`datarun.environments`; the kit holds them as ``requirements.txt``).
"""
from datarun.declarative.kit import KitProvenance, problem_py, starting_kit_files, write_kit
from datarun.declarative.spec import (
    SCORE_TYPES,
    TASKS,
    WORKFLOWS,
    InvalidProblemSpec,
    ProblemSpec,
    ScoreTypeSpec,
    check_columns,
    feature_columns,
    parse_problem_spec,
    target_labels,
)

__all__ = [
    "SCORE_TYPES", "TASKS", "WORKFLOWS", "InvalidProblemSpec", "KitProvenance", "ProblemSpec",
    "ScoreTypeSpec", "check_columns", "feature_columns", "parse_problem_spec", "problem_py",
    "starting_kit_files", "target_labels", "write_kit",
]
