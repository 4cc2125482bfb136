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
from datarun.models import Problem, RuntimeEnvironment
from datarun.services.declarative import problem_create_declarative, problem_export_kit
from datarun.services.environments import problem_environment_set
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


def environment_out(problem: Problem) -> dict:
    """A problem's environment as organisers see it: state, packages, build log."""
    environment = problem.environment
    if environment is None:
        return {"problem": problem.name, "shared_runtime": True, "lock_hash": None,
                "state": "ready", "prepared": True, "requirements": "", "python": "",
                "packages": [], "error": "", "log": "", "size_bytes": None,
                "build_seconds": None}
    return {"problem": problem.name, "shared_runtime": False,
            "lock_hash": environment.lock_hash, "state": environment.state,
            "prepared": problem.environment_prepared == environment.lock_hash,
            "requirements": environment.requirements, "python": environment.python,
            "packages": [{"name": p["name"], "version": p["version"], "sha256": p["sha256"]}
                         for p in environment.packages],
            "error": environment.error, "log": environment.log,
            "size_bytes": environment.size_bytes, "build_seconds": environment.build_seconds}


class LockedPackageSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    sha256 = serializers.CharField()


class ProblemEnvironmentSerializer(serializers.Serializer):
    problem = serializers.CharField()
    shared_runtime = serializers.BooleanField(
        help_text="True: no environment of its own, folds run on the server's runtime.")
    lock_hash = serializers.CharField(allow_null=True,
                                      help_text="sha256 of the lock; names the environment.")
    state = serializers.ChoiceField(choices=RuntimeEnvironment.State.choices)
    prepared = serializers.BooleanField(
        help_text="The kit's data was prepared in this environment: submissions are open.")
    requirements = serializers.CharField(help_text="The declared lines.")
    python = serializers.CharField()
    packages = LockedPackageSerializer(many=True, help_text="The lock: exact versions, hashes.")
    error = serializers.CharField(help_text="Why the build or the preparation failed.")
    log = serializers.CharField(help_text="The build's log (pip's output).")
    size_bytes = serializers.IntegerField(allow_null=True)
    build_seconds = serializers.FloatField(allow_null=True)


class ProblemEnvironmentInputSerializer(serializers.Serializer):
    requirements = serializers.CharField(
        allow_blank=True, help_text="requirements.txt lines (package==version); resolved at "
                                    "once, built in the background.")


class ProblemEnvironmentApi(APIView):
    """A problem's own environment: ``GET`` its state, lock and build log;
    ``PUT {"requirements": "..."}`` declares its packages (resolved now, built
    in the background; refused once the problem has runs)."""

    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]

    @extend_schema(operation_id="problem_environment", tags=["problems"],
                   summary="A problem's environment",
                   responses={200: ProblemEnvironmentSerializer,
                              **error_responses(401, 403, 404)})
    def get(self, request, name):
        problem = Problem.objects.select_related("environment").filter(name=name).first()
        return Response(environment_out(problem or problem_get(name)))

    @extend_schema(operation_id="problem_environment_set", tags=["problems"],
                   summary="Declare a problem's packages",
                   description="Resolved to a lock at once (a requirement that cannot be "
                               "installed is refused, naming the package and pip's reason); "
                               "built in the background; follow `state` and `log`.",
                   request=ProblemEnvironmentInputSerializer,
                   responses={202: ProblemEnvironmentSerializer,
                              **error_responses(400, 401, 403, 404)})
    def put(self, request, name):
        body = ProblemEnvironmentInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        problem = problem_environment_set(problem=problem_get(name),
                                          requirements=body.validated_data["requirements"])
        return Response(environment_out(problem), status=202)
