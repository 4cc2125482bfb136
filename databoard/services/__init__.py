"""Writes on the databoard side. Every event rule is checked here, so the web
pages and the API enforce the same rules."""
from databoard.services.announcements import announcement_create
from databoard.services.events import (
    audit,
    event_admin_add,
    event_admin_remove,
    event_assign_pool,
    event_create,
    event_fold_limits,
    event_get,
    event_limits,
    event_rules,
    event_update,
)
from databoard.services.kits import event_create_from_kit
from databoard.services.roster import accounts_import_csv
from databoard.services.submissions import (
    counted_submission_times,
    sandbox_contents,
    sandbox_file_save,
    sandbox_files,
    sandbox_import,
    submission_cancel,
    submission_create,
    submission_create_from_sandbox,
    submission_get,
    submission_reproduce,
    submission_rerun,
    submission_run_id,
    submission_runs,
    submission_select,
    submissions_rerun_failed,
)
from databoard.services.teams import (
    event_signup,
    invitation_accept,
    invitation_decline,
    signup_approve,
    signup_reject,
    team_get,
    team_invite,
    team_leave,
    team_of,
    team_rename,
)

__all__ = [
    "accounts_import_csv", "announcement_create", "audit", "event_admin_add", "event_admin_remove",
    "counted_submission_times", "event_assign_pool", "event_create",
    "event_create_from_kit", "event_fold_limits", "event_get",
    "event_limits",
    "event_rules", "event_signup", "event_update", "invitation_accept",
    "invitation_decline", "sandbox_contents", "sandbox_file_save", "sandbox_files",
    "sandbox_import",
    "signup_approve", "signup_reject", "submission_cancel", "submission_create",
    "submission_create_from_sandbox", "submission_get", "submission_reproduce",
    "submission_rerun", "submission_run_id", "submission_runs",
    "submission_select", "submissions_rerun_failed", "team_get", "team_invite",
    "team_leave", "team_of", "team_rename",
]
