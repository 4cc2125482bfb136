"""The participant-facing REST API (``/api/v1/``): thin views over services."""
from django.conf import settings
from django.db import connection
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from databoard import selectors, services
from databoard.models import Event, Submission
from datarun import selectors as datarun_selectors
from datarun import services as datarun_services
from datarun import submission_files
from datarun.api.uploads import SubmissionUploadParser
from datarun.errors import InvalidSubmission, NotFound


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response({"status": "ok", "database": connection.vendor,
                         "broker": settings.CELERY_BROKER_URL.split("://")[0],
                         "sandbox": settings.DATARUN_SANDBOX})


class EventListApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Event
            fields = ["name", "title", "problem_name", "opens_at", "closes_at"]

    def get(self, request):
        events = [e for e in Event.objects.all() if e.is_public or e.is_admin(request.user)]
        return Response(self.OutputSerializer(events, many=True).data)


class EventDetailApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        data = EventListApi.OutputSerializer(event).data
        data["description"] = event.description
        data["problem"] = datarun_selectors.problem_summary(event.problem_name)
        data["limits"] = {**datarun_services.default_limits(),
                          **services.event_limits(event)}
        return Response(data)


class EventSignupApi(APIView):
    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        event_team = services.event_signup(event=event, user=request.user)
        return Response({"event": event.name, "team": event_team.team.name,
                         "approved": event_team.approved}, status=201)


def _submission_out(submission: Submission, evaluation: dict, user) -> dict:
    evaluation = selectors.without_test_scores(evaluation, event=submission.event_team.event,
                                               user=user)
    return {
        "id": submission.id, "name": submission.name,
        "event": submission.event_team.event.name, "team": submission.event_team.team.name,
        "submitted_by": submission.submitted_by.username,
        "submitted_at": submission.created_at,
        **{k: v for k, v in evaluation.items() if k not in ("id", "created_at")},
        "evaluation_id": submission.evaluation_id,
    }


class SubmissionCreateApi(APIView):
    """Submit to an event: ``multipart/form-data`` with a ``name`` and the files.

    The files come either one per ``files`` field (e.g. ``-F files=@estimator.py``)
    or all in one zip archive in an ``archive`` field, at its top level or in
    one folder. Unsafe or unexpected names, oversize files and hostile archives
    are refused with a 400 naming the file and the reason; nothing is stored.
    """

    parser_classes = [SubmissionUploadParser]

    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        files = _submitted_files(request, problem_name=event.problem_name)
        submission = services.submission_create(
            event=event, user=request.user, name=request.data.get("name", ""), files=files
        )
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        return Response(_submission_out(submission, detail, request.user), status=201)


def _submitted_files(request, *, problem_name: str) -> dict[str, bytes]:
    uploads = request.FILES.getlist("files")
    archives = request.FILES.getlist("archive")
    if uploads and archives:
        raise InvalidSubmission("send the files either in 'files' fields or in one zip "
                                "'archive', not both")
    if len(archives) > 1:
        raise InvalidSubmission(f"send one zip archive, not {len(archives)}")
    if archives:
        archive = archives[0]
        # Checked before reading: an upload over the limit was never kept.
        submission_files.check_archive_size(archive.name, archive.size)
        return submission_files.files_from_zip(archive.name, archive.read())
    if not uploads:
        expected = submission_files.expected_file_names(
            datarun_services.problem_get(problem_name).workflow_elements)
        raise InvalidSubmission(
            f"this problem needs the files {', '.join(expected)}: upload each as a "
            f"multipart file field named 'files' (with curl: -F files=@{expected[0]}), "
            "or all of them in one zip archive in a field named 'archive'"
        )
    names = set()
    for upload in uploads:
        submission_files.check_file_name(upload.name)
        submission_files.check_file_size(upload.name, upload.size)
        if upload.name in names:
            raise InvalidSubmission(f"{upload.name} was uploaded twice")
        names.add(upload.name)
    submission_files.check_total_size(sum(upload.size for upload in uploads))
    return {upload.name: upload.read() for upload in uploads}


class SubmissionListApi(APIView):
    def get(self, request):
        submissions = list(selectors.submissions_of_user(user=request.user))
        summaries = datarun_selectors.evaluation_summaries(
            [s.evaluation_id for s in submissions]
        )
        return Response([_submission_out(s, summaries[s.evaluation_id], request.user)
                         for s in submissions])


class SubmissionDetailApi(APIView):
    def get(self, request, pk):
        submission = Submission.objects.select_related(
            "event_team__event", "event_team__team", "submitted_by"
        ).filter(pk=pk).first()
        if submission is None or not selectors.submission_visible_to(
            submission=submission, user=request.user
        ):
            raise NotFound(f"no submission {pk} of yours")
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        return Response(_submission_out(submission, detail, request.user))


class LeaderboardApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        kind = request.query_params.get("kind", "bagged")
        if kind not in ("bagged", "mean"):
            raise InvalidSubmission("kind must be 'bagged' or 'mean'")
        return Response(selectors.leaderboard_rows(event=event, user=request.user, kind=kind))
