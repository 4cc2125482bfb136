"""The data dashboard as JSON (staff only): the same numbers as the pages
``/data/datasets/<name>/v<n>/`` and ``/data/problems/<name>/``."""
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import dataset_selectors


class DatasetVersionDashboardApi(APIView):
    """``?target=<column>`` adds the target's distribution per split;
    ``?split=<id>`` picks one of the version's splits (default: the latest),
    ``?split=all`` profiles the whole table."""

    permission_classes = [IsAdminUser]

    def get(self, request, name: str, number: int):
        return Response(dataset_selectors.dataset_version_dashboard(
            name=name, number=number, target=request.query_params.get("target") or None,
            split=request.query_params.get("split") or None))


class ProblemDashboardApi(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request, name: str):
        return Response(dataset_selectors.problem_dashboard(name=name))
