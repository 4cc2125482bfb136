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
    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        submission_name = request.data.get("name", "")
        uploads = request.FILES.getlist("files")
        if not uploads:
            raise InvalidSubmission(
                "upload the submission's files as multipart form fields named 'files'"
            )
        files = {}
        for upload in uploads:
            # Checked before reading, so that an oversize upload is never loaded.
            datarun_services.check_submission_file_size(upload.name, upload.size)
            if upload.name in files:
                raise InvalidSubmission(f"{upload.name} was uploaded twice")
            files[upload.name] = upload.read()
        submission = services.submission_create(
            event=event, user=request.user, name=submission_name, files=files
        )
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        return Response(_submission_out(submission, detail, request.user), status=201)


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
