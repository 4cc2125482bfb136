"""Organiser API: re-score an evaluation on another problem, and read the drift.

Staff only: evaluations are datarun's, below any event's permissions
(event admins re-score their event's submissions through databoard).
"""
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import selectors
from datarun.services.rescore import evaluation_rescore, score_drift


class EvaluationRescoreApi(APIView):
    """``POST /api/v1/evaluations/<id>/rescore/ {"problem": name}`` -> 202."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        problem = serializers.SlugField(max_length=100)

    def post(self, request, pk):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        evaluation = evaluation_rescore(evaluation_id=pk, problem=data.validated_data["problem"])
        return Response({**selectors.evaluation_summary(evaluation),
                         "rescore_of": evaluation.rescore_of_id}, status=202)


class EvaluationDriftApi(APIView):
    """``GET /api/v1/evaluations/<id>/drift/``: each re-score's scores against
    the original's, per score type and step (see :func:`score_drift`)."""

    permission_classes = [IsAdminUser]

    def get(self, request, pk):
        return Response({"evaluation": pk, "drift": score_drift(evaluation_id=pk)})
