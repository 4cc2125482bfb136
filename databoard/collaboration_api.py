"""The collaborative phase in the REST API: read a submission's code, diff
two submissions, import one into your team's sandbox (credited on your next
submission, whichever way it is sent) and list its credits. The same rules
as the web pages hold (:func:`databoard.permissions.can_read_code`): your
team's code always; other teams' code once the event's public opening has
passed, for approved participants."""
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from databoard import api_schema as shapes
from databoard import permissions, services
from databoard.models import Submission
from databoard.services import collaboration
from datarun.api.schema import ErrorSerializer, error_responses
from datarun.errors import ApplicationError

UNREADABLE = OpenApiResponse(ErrorSerializer, description="no such submission, or not one "
                             "whose code you may read (other teams' code: after the event's "
                             "public opening, for its approved participants)")


class SubmissionRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    team = serializers.CharField()
    code_readable = serializers.BooleanField(help_text="Whether you may read its code.")


class FileDiffSerializer(serializers.Serializer):
    name = serializers.CharField()
    changed = serializers.BooleanField()
    only_old = serializers.BooleanField(help_text="Only in the `against` submission.")
    only_new = serializers.BooleanField(help_text="Only in this submission.")
    diff = serializers.CharField(help_text="A unified diff (empty when unchanged).")


class CodeDiffSerializer(serializers.Serializer):
    submission = SubmissionRefSerializer(help_text="The new side of the diff.")
    against = SubmissionRefSerializer(help_text="The old side of the diff.")
    files = FileDiffSerializer(many=True)


class CodeImportSerializer(serializers.Serializer):
    source = SubmissionRefSerializer()
    files = serializers.DictField(child=serializers.CharField(),
                                  help_text="File name -> its text, as imported.")
    credited = serializers.BooleanField(
        help_text="Whether your team's next submission credits it (another team's).")
    pending_credits = SubmissionRefSerializer(
        many=True, help_text="Every import your team's next submission credits.")


class SubmissionCreditsSerializer(serializers.Serializer):
    submission = SubmissionRefSerializer()
    credits = SubmissionRefSerializer(many=True,
                                      help_text="Submissions this one imported code from.")
    reused_by = SubmissionRefSerializer(many=True,
                                        help_text="Submissions that imported code from this one.")


def _ref(submission: Submission, user) -> dict:
    return {"id": submission.id, "name": submission.name, "team": submission.team.name,
            "code_readable": permissions.can_read_code(submission, user)}


class SubmissionCodeApi(APIView):
    """The submission's files: your team's; any approved participant's in the
    collaborative phase (after the event's public opening)."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="submission_code", tags=["collaboration"],
                   summary="A submission's files",
                   responses={200: shapes.SubmissionCodeSerializer, 404: UNREADABLE})
    def get(self, request, pk):
        submission = collaboration.submission_readable(submission_id=pk, user=request.user)
        return Response({"id": submission.id, "name": submission.name,
                         "team": submission.team.name,
                         "files": collaboration.submission_texts(submission)})


class SubmissionDiffApi(APIView):
    """What changed from ``?against=<id>`` to this submission, file by file."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="submission_diff", tags=["collaboration"],
        summary="Diff two submissions",
        description="Both submissions must be ones whose code you may read.",
        parameters=[OpenApiParameter("against", int, required=True,
                                     description="The submission to compare with (the old "
                                                 "side of the diff).")],
        responses={200: CodeDiffSerializer, **error_responses(400), 404: UNREADABLE})
    def get(self, request, pk):
        new = collaboration.submission_readable(submission_id=pk, user=request.user)
        against = request.query_params.get("against", "")
        if not against.isdigit():
            raise ApplicationError("name the submission to compare with: ?against=<id>")
        old = collaboration.submission_readable(submission_id=int(against), user=request.user)
        return Response({"submission": _ref(new, request.user),
                         "against": _ref(old, request.user),
                         "files": collaboration.code_diff(old=old, new=new)})


class SubmissionImportApi(APIView):
    """Copy a submission's files into your team's sandbox and get them back."""

    @extend_schema(
        operation_id="submission_import", tags=["collaboration"],
        summary="Import a submission's code",
        description="Into your team's sandbox (the web editor). Another team's submission "
                    "is credited on your team's next submission, whether it is sent from "
                    "the sandbox, the API, the CLI or the Python client.",
        request=None,
        responses={200: CodeImportSerializer, **error_responses(401, 403), 404: UNREADABLE})
    def post(self, request, pk):
        source = collaboration.submission_readable(submission_id=pk, user=request.user)
        event = source.team.event
        files = services.sandbox_import(event=event, user=request.user, source_id=source.id)
        team = services.team_get(event=event, user=request.user)
        pending = [i.source for i in team.sandbox_imports.select_related("source__team__event")
                   .order_by("imported_at")]
        return Response({"source": _ref(source, request.user), "files": files,
                         "credited": source.team_id != team.id,
                         "pending_credits": [_ref(s, request.user) for s in pending]})


class SubmissionCreditsApi(APIView):
    """Whose code the submission took (credited on it) and who took its code."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="submission_credits", tags=["collaboration"],
                   summary="A submission's credits",
                   responses={200: SubmissionCreditsSerializer, 404: UNREADABLE})
    def get(self, request, pk):
        submission = collaboration.submission_readable(submission_id=pk, user=request.user)
        credits = collaboration.submission_credits(submission=submission)
        return Response({
            "submission": _ref(submission, request.user),
            **{key: [_ref(s, request.user) for s in subs] for key, subs in credits.items()},
        })
