"""Kit upload over the API: a RAMP kit zip becomes a problem and its event."""
from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from databoard import selectors, services
from databoard.api import EventDetailApi, _event_out
from datarun.api import idempotency
from datarun.api.schema import ProblemSummarySerializer, UploadField, error_responses
from datarun.errors import ApplicationError, KitTooLarge, NotFound, PermissionDenied


class KitInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)


@extend_schema_serializer(component_name="KitUpload")
class KitUploadSerializer(KitInputSerializer):
    kit = UploadField(help_text="The kit's folder zipped: problem.py, data/, "
                                "submissions/starting_kit/, README.md.")


@extend_schema_serializer(component_name="StartingKitRun")
class StartingKitRunSerializer(serializers.Serializer):
    evaluation_id = serializers.IntegerField()
    state = serializers.CharField()
    error = serializers.CharField()
    scores = serializers.ListField(child=serializers.DictField(),
                                   help_text="name, valid (mean over folds), precision")


@extend_schema_serializer(component_name="KitImportReport")
class KitImportReportSerializer(serializers.Serializer):
    archive = serializers.CharField()
    imported_at = serializers.DateTimeField()
    problem = ProblemSummarySerializer()
    description_from_readme = serializers.BooleanField()
    starting_kit = StartingKitRunSerializer(
        allow_null=True, help_text="Its run; null when the kit has no starting kit.")
    starting_kit_note = serializers.CharField(help_text="Why it was not run, if not.")


@extend_schema_serializer(component_name="KitImport")
class KitImportSerializer(serializers.Serializer):
    event = EventDetailApi.OutputSerializer()
    report = KitImportReportSerializer()


class KitImportApi(APIView):
    """``POST`` (superusers) ``multipart/form-data``: ``kit`` (the zip),
    ``name`` (the event's and the problem's) and an optional ``title``."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="kit_import", tags=["events"], summary="Upload a RAMP kit",
        description="Superusers: the kit becomes a problem and an unlisted event of the same "
                    "name, described by its README; its starting kit is queued for a run "
                    "(follow it in `report.starting_kit`, or later at "
                    "`GET /api/v1/events/{name}/kit-report/`). "
                    "Malformed kits are refused with what to fix, and create nothing.",
        request={"multipart/form-data": KitUploadSerializer},
        responses={201: KitImportSerializer, **error_responses(400, 401, 403, 413, 422)},
        parameters=[idempotency.PARAMETER])
    @idempotency.idempotent_create
    def post(self, request):
        if not request.user.is_superuser:  # before reading the body
            raise PermissionDenied("only a superuser uploads kits: importing one runs its "
                                   "problem.py on the server")
        limit = settings.DATARUN_MAX_KIT_BYTES
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + 65536:
            # Refused before the body is read into a temporary file.
            raise KitTooLarge(f"the upload is {request.META['CONTENT_LENGTH']} bytes; a kit "
                              f"zip may weigh at most {limit} bytes: leave large data out")
        body = KitInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = request.FILES.get("kit")
        if upload is None:
            raise ApplicationError("send the kit's zip in a multipart file field named 'kit' "
                                   "(with curl: -F kit=@my-kit.zip)")
        event = services.event_create_from_kit(
            user=request.user, archive=upload, archive_name=upload.name,
            name=body.validated_data["name"], title=body.validated_data.get("title", ""))
        return Response({"event": _event_out(event, request.user),
                         "report": selectors.kit_import_report(event)}, status=201)


class KitReportApi(APIView):
    """The import report of an event opened from an uploaded kit (its admins)."""

    @extend_schema(operation_id="kit_report", tags=["events"], summary="A kit's import report",
                   description="Event admins: what the kit upload made, and the starting "
                               "kit's run and validation scores.",
                   responses={200: KitImportReportSerializer,
                              **error_responses(401, 403, 404)})
    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        if not event.is_admin(request.user):
            raise PermissionDenied(f"only an admin of {event.name} reads its kit report")
        report = selectors.kit_import_report(event)
        if report is None:
            raise NotFound(f"{event.name} was not opened from an uploaded kit")
        return Response(report)
