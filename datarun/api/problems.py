"""Problems over the API, for staff: create a declarative problem from a
spec, read a problem's summary, download its RAMP kit.

Staff only: the kit holds the test labels, and a problem may belong to a
challenge not announced yet. Participants read an event's problem through
the event API.
"""
from django.http import HttpResponse
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import selectors
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


class ProblemCreateApi(APIView):
    """``POST`` a declarative spec as JSON (the spec's fields), or
    ``{"spec": "<YAML text>"}``; answers 201 with the problem's summary."""

    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]

    def post(self, request):
        data = request.data
        if isinstance(data, dict) and set(data) == {"spec"} and isinstance(data["spec"], str):
            data = data["spec"]
        problem = problem_create_declarative(spec=data)
        return Response(problem_out(problem), status=201)


class ProblemDetailApi(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request, name):
        return Response(problem_out(problem_get(name)))


class ProblemKitApi(APIView):
    """The problem's RAMP kit as a zip, test labels included (organisers' copy)."""

    permission_classes = [IsAdminUser]

    def get(self, request, name):
        problem = problem_get(name)
        response = HttpResponse(problem_export_kit(problem=problem),
                                content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{problem.name}-kit.zip"'
        return response
