"""The REST API of tracked runs (``/api/v1/submissions/<pk>/runs/...``) and
the starting kit download: every evaluation of a submission is a run with
its metadata, metrics, live log and artifacts."""
import mimetypes

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from databoard import selectors, services
from datarun import run_selectors
from datarun import services as datarun_services
from datarun.api.pagination import PAGE_PARAMETERS, paged, paginate
from datarun.api.schema import (
    ErrorSerializer,
    EvaluationDetailSerializer,
    EvaluationStateSerializer,
    FoldRunSerializer,
    error_responses,
    scores_field,
)
from datarun.errors import ApplicationError
from datarun.states import RunState

NOT_YOURS = OpenApiResponse(ErrorSerializer, description="no such submission or run of "
                            "your team (also for runs you may not see)")


class RunSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RunState.choices)
    current = serializers.BooleanField(help_text="the run the leaderboard shows")
    kind = serializers.ChoiceField(["run", "rerun", "reproduction"])
    reproduces = serializers.IntegerField(allow_null=True,
                                          help_text="for a reproduction: the run it reproduces")
    started_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class RunMetricSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="e.g. valid/acc, cpu_time, bagged/valid/acc")
    value = serializers.FloatField(allow_null=True)
    step = serializers.IntegerField(help_text="the fold index for fold metrics")
    timestamp = serializers.DateTimeField()
    fold = serializers.IntegerField(allow_null=True)


class RunArtifactSerializer(serializers.Serializer):
    name = serializers.CharField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    fold = serializers.IntegerField(allow_null=True)
    url = serializers.CharField()


class RunFoldSerializer(FoldRunSerializer):
    environment = serializers.DictField(help_text="the worker's Python, packages, platform")


class RunDetailSerializer(RunSummarySerializer, EvaluationStateSerializer,
                          EvaluationDetailSerializer):
    submission = serializers.IntegerField()
    error_traceback = serializers.CharField(allow_blank=True)
    metadata = serializers.DictField(
        help_text="what the run was given: problem, data and fold hashes, dataset "
                  "version, code hash, limits, sandbox, the server's packages")
    logs_truncated = serializers.BooleanField()
    log_bytes = serializers.IntegerField()
    folds = RunFoldSerializer(many=True)
    scores = scores_field()
    metrics = RunMetricSerializer(many=True)
    artifacts = RunArtifactSerializer(many=True)
    reproduction = serializers.DictField(
        allow_null=True, help_text="for a reproduction: inputs and software compared with "
        "the original run, and fold by fold whether the predictions are identical")


class LogLineSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="increasing; pass the last one as ?after=")
    fold = serializers.IntegerField()
    attempt = serializers.IntegerField()
    stream = serializers.ChoiceField(["stdout", "stderr", "note"])
    at = serializers.DateTimeField(help_text="when the worker read the line")
    text = serializers.CharField()


class RunLogSerializer(serializers.Serializer):
    lines = LogLineSerializer(many=True)
    next = serializers.IntegerField(help_text="pass as ?after= to get only newer lines")
    finished = serializers.BooleanField(
        help_text="the run is over and every line has been returned")
    truncated = serializers.BooleanField(help_text="the run printed more than is kept")
    state = serializers.CharField()
    run = serializers.IntegerField()


class ReproduceInputSerializer(serializers.Serializer):
    run = serializers.IntegerField(required=False,
                                   help_text="the run to reproduce (default: the current one)")


AFTER = OpenApiParameter("after", int, description="only lines with a greater seq")


def _after(request) -> int:
    raw = request.query_params.get("after", "0") or "0"
    try:
        after = int(raw)
    except ValueError:
        raise ApplicationError(
            f"after must be a whole number (a log line's seq), not {raw!r}") from None
    return max(after, 0)


def _run_out(request, submission, run_id: int) -> dict:
    run = run_selectors.run_detail(run_id)
    run = selectors.evaluation_as_seen_by(run, event=submission.team.event, user=request.user)
    summary = next(r for r in services.submission_runs(submission=submission)
                   if r["id"] == run_id)
    base = f"/api/v1/submissions/{submission.id}/runs/{run_id}/artifacts/"
    for artifact in run["artifacts"]:
        artifact["url"] = base + artifact["name"]
    # The run detail last: its state and its reproduction report come from one
    # reading (a summary read later could say scored while the report says pending).
    return {**summary, **run, "submission": submission.id}


def _log_out(run_id: int, request) -> dict:
    return {**run_selectors.run_log(run_id, after=_after(request)), "run": run_id}


@extend_schema(tags=["events"], summary="Download the event's starting kit",
               responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: ErrorSerializer})
class EventStartingKitApi(APIView):
    """problem.py, the README, the starting kit submission and the training
    data (never the test data), zipped: what a participant tests locally with
    ``datarun test``."""

    permission_classes = [AllowAny]

    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        response = HttpResponse(selectors.starting_kit_zip(event),
                                content_type="application/zip")
        response["Content-Disposition"] = (
            f'attachment; filename="{event.name}-starting-kit.zip"')
        return response


class SubmissionRunListApi(APIView):
    """Every evaluation of the submission, newest first: the first run, the
    re-runs and the reproductions, a page at a time. Older runs stay readable
    after a re-run."""

    @extend_schema(operation_id="submissions_runs_list", tags=["runs"],
                   summary="The runs of a submission", parameters=PAGE_PARAMETERS,
                   responses={200: paged(RunSummarySerializer, "PagedRunSummaryList"),
                              404: NOT_YOURS, **error_responses(400)})
    def get(self, request, pk):
        submission = services.submission_get(submission_id=pk, user=request.user)
        runs, info = paginate(request, services.submission_runs(submission=submission))
        return Response({**info, "results": runs})


@extend_schema(tags=["runs"], summary="One run: metadata, folds, metrics, artifacts",
               responses={200: RunDetailSerializer, 404: NOT_YOURS})
class SubmissionRunApi(APIView):
    def get(self, request, pk, run):
        submission = services.submission_get(submission_id=pk, user=request.user)
        run_id = services.submission_run_id(submission=submission, run_id=run)
        return Response(_run_out(request, submission, run_id))


@extend_schema(tags=["runs"], summary="A run's log lines (poll with ?after=)",
               parameters=[AFTER], responses={200: RunLogSerializer, 400: ErrorSerializer,
                                              404: NOT_YOURS})
class SubmissionRunLogApi(APIView):
    """What the folds printed (stdout and stderr, per fold, with the time the
    worker read each line), streamed while they run. Poll with
    ``?after=<next>`` until ``finished``."""

    def get(self, request, pk, run):
        submission = services.submission_get(submission_id=pk, user=request.user)
        run_id = services.submission_run_id(submission=submission, run_id=run)
        return Response(_log_out(run_id, request))


@extend_schema(tags=["runs"], summary="The log of a submission's current run",
               parameters=[AFTER], responses={200: RunLogSerializer, 400: ErrorSerializer,
                                              404: NOT_YOURS})
class SubmissionLogApi(APIView):
    def get(self, request, pk):
        submission = services.submission_get(submission_id=pk, user=request.user)
        return Response(_log_out(submission.evaluation_id, request))


@extend_schema(tags=["runs"], summary="Download an artifact of a run",
               responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                          (200, "text/plain"): OpenApiResponse(
                              OpenApiTypes.STR, description="Text files (code, CSV) as text."),
                          400: ErrorSerializer, 404: NOT_YOURS})
class SubmissionRunArtifactApi(APIView):
    """A file kept for the run: ``submission/<file>`` (what was submitted) or
    ``fold_<k>/y_pred_train.npy`` / ``fold_<k>/y_pred_test.npy`` (its
    predictions, NumPy format)."""

    def get(self, request, pk, run, name):
        submission = services.submission_get(submission_id=pk, user=request.user)
        run_id = services.submission_run_id(submission=submission, run_id=run)
        artifact, data = datarun_services.artifact_read(evaluation_id=run_id, name=name)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or name.endswith(".py"):
            content_type = "text/plain; charset=utf-8"
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="run{run_id}-{name.replace("/", "-")}"')
        response["ETag"] = f'"{artifact.sha256}"'
        return response


@extend_schema(tags=["runs"], summary="Reproduce a scored run (event admins)",
               request=ReproduceInputSerializer,
               responses={202: RunDetailSerializer, 400: ErrorSerializer,
                          403: ErrorSerializer, 404: NOT_YOURS,
                          409: ErrorSerializer})
class SubmissionReproduceApi(APIView):
    """Run a scored run of the submission again on its recorded inputs (the
    same files, limits, data and folds). When it is scored, its
    ``reproduction`` says fold by fold whether the predictions are identical.
    The leaderboard keeps showing the run it showed."""

    def post(self, request, pk):
        serializer = ReproduceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run_id = services.submission_reproduce(submission_id=pk, user=request.user,
                                               run_id=serializer.validated_data.get("run"))
        submission = services.submission_get(submission_id=pk, user=request.user)
        return Response(_run_out(request, submission, run_id), status=202)
