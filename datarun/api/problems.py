"""Problems over the API, for staff: create a declarative problem from a
spec, read a problem's summary, download its RAMP kit.

Staff only: the kit holds the test labels, and a problem may belong to a
challenge not announced yet. Participants read an event's problem through
the event API.
"""
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import selectors
from datarun.api import idempotency
from datarun.api.schema import ProblemSummarySerializer, error_responses
from datarun.declarative.spec import TASKS, WORKFLOWS
from datarun.models import Problem
from datarun.services.declarative import problem_create_declarative, problem_export_kit
from datarun.services.problems import problem_get


def problem_out(problem: Problem) -> dict:
    data = selectors.problem_summary(problem.name)
    data["kind"] = problem.kind
    data["created_at"] = problem.created_at
    if problem.kind == Problem.Kind.DECLARATIVE:
        data["dataset_version"] = problem.spec.get("dataset")
        data["split"] = {"id": problem.split.id, "split_hash": problem.split.split_hash,
                         "summary": problem.split.summary}
        data["limits"] = problem.spec.get("limits", {})
        data["spec"] = problem.spec
    data["kit_url"] = f"/api/v1/problems/{problem.name}/kit.zip"
    return data


# --- the shapes of the requests and answers below, for the OpenAPI description only --

class ProblemSplitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    split_hash = serializers.CharField()
    summary = serializers.DictField(help_text="Rows per split and fold sizes.")


class ProblemSerializer(ProblemSummarySerializer):
    """Documents :func:`problem_out`; the declarative fields only for declarative problems."""

    kind = serializers.ChoiceField(choices=Problem.Kind.choices)
    created_at = serializers.DateTimeField()
    dataset_version = serializers.CharField(required=False,
                                            help_text="Declarative: name@number of its data.")
    split = ProblemSplitSerializer(required=False, help_text="Declarative: its split.")
    limits = serializers.DictField(required=False,
                                   help_text="Declarative: its own per-fold limits.")
    spec = serializers.DictField(required=False,
                                 help_text="Declarative: its spec, in normal form.")
    kit_url = serializers.CharField(help_text="Its RAMP kit (zip, test labels included).")


class ProblemSpecLimitsSerializer(serializers.Serializer):
    wall_time_s = serializers.FloatField(required=False)
    memory_mb = serializers.IntegerField(required=False)
    cpus = serializers.FloatField(required=False)


class ProblemSpecSerializer(serializers.Serializer):
    """A declarative problem: a dataset version, a target, scores, a split."""

    name = serializers.RegexField(r"^[A-Za-z0-9_-]{1,100}$")
    title = serializers.CharField(required=False, help_text="Default: the name.")
    description = serializers.CharField(required=False)
    dataset = serializers.CharField(help_text="The dataset version, as name@number.")
    target = serializers.CharField(help_text="The column to predict.")
    ignore = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="Columns left out of the features.")
    task = serializers.ChoiceField(choices=TASKS)
    score_types = serializers.ListField(
        child=serializers.JSONField(),
        help_text="Score names (e.g. accuracy, rmse), or {type, name, precision}; the first "
                  "is the official one.")
    split = serializers.JSONField(
        help_text="A split spec ({test, cv, seed, named}) or the id of an existing split "
                  "of the dataset version.")
    workflow = serializers.ChoiceField(choices=sorted(WORKFLOWS), required=False,
                                       help_text="Default: estimator.")
    limits = ProblemSpecLimitsSerializer(required=False)


class ProblemSpecTextSerializer(serializers.Serializer):
    spec = serializers.CharField(help_text="The same spec as YAML (or JSON) text.")


class ProblemCreateApi(APIView):
    """``POST`` a declarative spec as JSON (the spec's fields), or
    ``{"spec": "<YAML text>"}``; answers 201 with the problem's summary."""

    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="problem_create", tags=["problems"],
        summary="Create a declarative problem",
        description="From a spec given as JSON fields, or as YAML text in `spec`; checked "
                    "against the dataset version's table, with its folds computed once.",
        request=PolymorphicProxySerializer(
            component_name="ProblemCreate",
            serializers=[ProblemSpecSerializer, ProblemSpecTextSerializer],
            resource_type_field_name=None),
        responses={201: ProblemSerializer, **error_responses(400, 401, 403, 404, 422, 503)},
        parameters=[idempotency.PARAMETER])
    @idempotency.idempotent_create
    def post(self, request):
        data = request.data
        if isinstance(data, dict) and set(data) == {"spec"} and isinstance(data["spec"], str):
            data = data["spec"]
        problem = problem_create_declarative(spec=data)
        return Response(problem_out(problem), status=201)


class ProblemDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(operation_id="problem_get", tags=["problems"], summary="A problem",
                   responses={200: ProblemSerializer, **error_responses(401, 403, 404)})
    def get(self, request, name):
        return Response(problem_out(problem_get(name)))


class ProblemKitApi(APIView):
    """The problem's RAMP kit as a zip, test labels included (organisers' copy)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="problem_kit", tags=["problems"], summary="A problem's RAMP kit",
        description="The kit as a zip, test labels included (the organisers' copy).",
        responses={(200, "application/zip"): OpenApiResponse(
            OpenApiTypes.BINARY, description="problem.py, data/ and submissions/."),
            **error_responses(401, 403, 404)})
    def get(self, request, name):
        problem = problem_get(name)
        response = HttpResponse(problem_export_kit(problem=problem),
                                content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{problem.name}-kit.zip"'
        return response
