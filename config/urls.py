from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from databoard import api, collaboration_api, kits_api, runs_api
from datarun.api import dashboard as dashboard_api
from datarun.api import datasets as datasets_api
from datarun.api import pools as pools_api
from datarun.api import problems as problems_api
from datarun.api import rescore as rescore_api
from datarun.api import runner as runner_api
from datarun.api.errors import not_found_json

api_v1 = [
    path("pools/", pools_api.PoolListApi.as_view(), name="pools"),
    path("pools/<slug:name>/token/", pools_api.PoolTokenApi.as_view(), name="pool-token"),
    path("runner/problems/", runner_api.PoolProblemApi.as_view(), name="runner-problems"),
    path("runner/claim/", runner_api.ClaimNextApi.as_view(), name="runner-claim-next"),
    path("runner/folds/<int:pk>/claim/", runner_api.FoldClaimApi.as_view(),
         name="runner-fold-claim"),
    path("runner/folds/<int:pk>/inputs/<str:digest>", runner_api.FoldInputApi.as_view(),
         name="runner-fold-input"),
    path("runner/folds/<int:pk>/heartbeat/", runner_api.HeartbeatApi.as_view(),
         name="runner-fold-heartbeat"),
    path("runner/folds/<int:pk>/logs/", runner_api.LogLinesApi.as_view(),
         name="runner-fold-logs"),
    path("runner/folds/<int:pk>/outcome/", runner_api.OutcomeApi.as_view(),
         name="runner-fold-outcome"),
    path("health/", api.HealthApi.as_view(), name="health"),
    path("auth/token/", api.TokenApi.as_view(), name="token"),
    path("events/", api.EventListApi.as_view(), name="events"),
    path("kits/", kits_api.KitImportApi.as_view(), name="kit-import"),
    path("events/<slug:name>/", api.EventDetailApi.as_view(), name="event"),
    path("events/<slug:name>/kit-report/", kits_api.KitReportApi.as_view(), name="kit-report"),
    path("events/<slug:name>/signup/", api.EventSignupApi.as_view(), name="event-signup"),
    path("events/<slug:name>/submissions/", api.SubmissionCreateApi.as_view(),
         name="submission-create"),
    path("events/<slug:name>/leaderboard/", api.LeaderboardApi.as_view(), name="leaderboard"),
    path("events/<slug:name>/starting-kit.zip", runs_api.EventStartingKitApi.as_view(),
         name="event-starting-kit"),
    path("events/<slug:name>/team/", api.MyTeamApi.as_view(), name="my-team"),
    path("events/<slug:name>/team/invitations/", api.TeamInviteApi.as_view(),
         name="team-invite"),
    path("events/<slug:name>/team/leave/", api.TeamLeaveApi.as_view(), name="team-leave"),
    path("events/<slug:name>/teams/", api.EventTeamsApi.as_view(), name="event-teams"),
    path("events/<slug:name>/pool/", api.EventPoolApi.as_view(), name="event-pool"),
    path("events/<slug:name>/rerun-failed/", api.EventRerunFailedApi.as_view(),
         name="event-rerun-failed"),
    path("teams/<int:pk>/approve/", api.TeamApproveApi.as_view(), name="team-approve"),
    path("teams/<int:pk>/reject/", api.TeamRejectApi.as_view(), name="team-reject"),
    path("invitations/", api.InvitationListApi.as_view(), name="invitations"),
    path("invitations/<int:pk>/accept/", api.InvitationAcceptApi.as_view(),
         name="invitation-accept"),
    path("invitations/<int:pk>/decline/", api.InvitationDeclineApi.as_view(),
         name="invitation-decline"),
    path("submissions/", api.SubmissionListApi.as_view(), name="submissions"),
    path("submissions/<int:pk>/", api.SubmissionDetailApi.as_view(), name="submission"),
    path("submissions/<int:pk>/code/", collaboration_api.SubmissionCodeApi.as_view(),
         name="submission-code"),
    path("submissions/<int:pk>/diff/", collaboration_api.SubmissionDiffApi.as_view(),
         name="submission-diff"),
    path("submissions/<int:pk>/import/", collaboration_api.SubmissionImportApi.as_view(),
         name="submission-import"),
    path("submissions/<int:pk>/credits/", collaboration_api.SubmissionCreditsApi.as_view(),
         name="submission-credits"),
    path("submissions/<int:pk>/select/", api.SubmissionSelectApi.as_view(),
         name="submission-select"),
    path("submissions/<int:pk>/rerun/", api.SubmissionRerunApi.as_view(),
         name="submission-rerun"),
    path("submissions/<int:pk>/cancel/", api.SubmissionCancelApi.as_view(),
         name="submission-cancel"),
    path("submissions/<int:pk>/runs/", runs_api.SubmissionRunListApi.as_view(),
         name="submission-runs"),
    path("submissions/<int:pk>/runs/<int:run>/", runs_api.SubmissionRunApi.as_view(),
         name="submission-run"),
    path("submissions/<int:pk>/runs/<int:run>/logs/", runs_api.SubmissionRunLogApi.as_view(),
         name="submission-run-logs"),
    path("submissions/<int:pk>/runs/<int:run>/artifacts/<path:name>",
         runs_api.SubmissionRunArtifactApi.as_view(), name="submission-run-artifact"),
    path("submissions/<int:pk>/logs/", runs_api.SubmissionLogApi.as_view(),
         name="submission-logs"),
    path("submissions/<int:pk>/reproduce/", runs_api.SubmissionReproduceApi.as_view(),
         name="submission-reproduce"),
    path("evaluations/<int:pk>/rescore/", rescore_api.EvaluationRescoreApi.as_view(),
         name="evaluation-rescore"),
    path("evaluations/<int:pk>/drift/", rescore_api.EvaluationDriftApi.as_view(),
         name="evaluation-drift"),
    path("problems/", problems_api.ProblemCreateApi.as_view(), name="problem-create"),
    path("problems/<slug:name>/", problems_api.ProblemDetailApi.as_view(), name="problem"),
    path("problems/<slug:name>/kit.zip", problems_api.ProblemKitApi.as_view(),
         name="problem-kit"),
    path("datasets/<slug:name>/versions/<int:number>/dashboard/",
         dashboard_api.DatasetVersionDashboardApi.as_view(), name="dataset-version-dashboard"),
    path("problems/<slug:name>/dashboard/", dashboard_api.ProblemDashboardApi.as_view(),
         name="problem-dashboard"),
    path("datasets/", datasets_api.DatasetListApi.as_view(), name="datasets"),
    path("datasets/<slug:name>/", datasets_api.DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<slug:name>/versions/<int:number>/", datasets_api.DatasetVersionApi.as_view(),
         name="dataset-version"),
    path("datasets/<slug:name>/versions/<int:number>/croissant.json",
         datasets_api.DatasetVersionCroissantApi.as_view(), name="dataset-version-croissant"),
    path("datasets/<slug:name>/versions/<int:number>/files/<str:file_name>",
         datasets_api.DatasetVersionFileApi.as_view(), name="dataset-version-file"),
    # Unknown API URLs answer in the API's JSON error shape, not an HTML page
    # ([\s\S], not ".": an encoded newline in the path is unknown too).
    re_path(r"^[\s\S]*$", not_found_json),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # The OpenAPI description of /api/v1/, and Swagger UI served from the
    # project's own static files (works offline).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file: no inline script (CSP).
    path("api/schema/swagger/", SpectacularSwaggerSplitView.as_view(url_name="schema"),
         name="swagger-ui"),
    path("api/v1/", include(api_v1)),
    path("", include("databoard.urls")),
]
