"""The evaluation service: every write to datarun's records goes through here.

databoard calls :func:`evaluation_create` and the selectors; the runner API
calls the ``fold_run_*`` functions for the runners; Celery tasks call
``evaluation_score`` and the reaper with IDs.
"""
from datarun.services.contributivity import evaluations_contributivity
from datarun.services.dataset_specs import dataset_apply, datasets_refresh_due
from datarun.services.datasets import (
    dataset_register_croissant,
    dataset_version_check,
    dataset_version_create,
    dataset_version_croissant,
    dataset_version_get,
    dataset_version_table,
    dataset_version_verify,
)
from datarun.services.declarative import (
    problem_apply,
    problem_create_declarative,
    problem_export_kit,
    problem_preview_declarative,
)
from datarun.services.environments import (
    environment_build,
    environment_resolve,
    environments_prune,
    problem_environment_set,
)
from datarun.services.evaluations import (
    default_limits,
    effective_limits,
    evaluation_cancel,
    evaluation_create,
    evaluation_rerun,
    precheck_submission_files,
    validate_submission_files,
)
from datarun.services.fold_runs import (
    FoldOutcome,
    FoldTicket,
    evaluation_score,
    fold_run_claim,
    fold_run_claim_next,
    fold_run_finish,
    fold_run_heartbeat,
    fold_run_input_path,
    fold_run_outcome,
    fold_runs_reap,
    fold_token_check,
)
from datarun.services.pools import (
    pool_create,
    pool_for_token,
    pool_get,
    pool_token_reset,
    pools_overview,
    problem_register_on_pool,
    runner_commands,
)
from datarun.services.problems import (
    KitImport,
    problem_get,
    problem_import_kit_archive,
    problem_import_ramp_kit,
    starting_kit_evaluate,
)
from datarun.services.rescore import evaluation_rescore, score_drift
from datarun.services.runs import (
    artifact_read,
    evaluation_reproduce,
    run_log_append,
)
from datarun.services.splits import split_create, split_table

__all__ = [
    "FoldOutcome",
    "FoldTicket",
    "artifact_read",
    "evaluation_reproduce",
    "environment_build",
    "environment_resolve",
    "environments_prune",
    "problem_environment_set",
    "run_log_append",
    "dataset_apply",
    "dataset_register_croissant",
    "dataset_version_create",
    "dataset_version_croissant",
    "dataset_version_get",
    "dataset_version_table",
    "dataset_version_check",
    "dataset_version_verify",
    "datasets_refresh_due",
    "default_limits",
    "effective_limits",
    "evaluation_cancel",
    "evaluation_create",
    "evaluation_rerun",
    "evaluation_rescore",
    "evaluation_score",
    "evaluations_contributivity",
    "fold_run_claim",
    "fold_run_claim_next",
    "fold_run_finish",
    "fold_run_heartbeat",
    "fold_run_input_path",
    "fold_run_outcome",
    "fold_token_check",
    "fold_runs_reap",
    "pool_create",
    "pool_for_token",
    "pool_get",
    "pool_token_reset",
    "pools_overview",
    "problem_register_on_pool",
    "runner_commands",
    "problem_apply",
    "problem_create_declarative",
    "problem_export_kit",
    "problem_get",
    "problem_import_ramp_kit",
    "problem_import_kit_archive",
    "starting_kit_evaluate",
    "KitImport",
    "problem_preview_declarative",
    "score_drift",
    "split_create",
    "split_table",
    "precheck_submission_files",
    "validate_submission_files",
]
