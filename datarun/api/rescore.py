"""Organiser API: re-score an evaluation on another problem, and read the drift.

Staff only: evaluations are datarun's, below any event's permissions
(event admins re-score their event's submissions through databoard).
"""
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import selectors
from datarun.api.schema import EvaluationStateSerializer, error_responses
from datarun.services.rescore import evaluation_rescore, score_drift
from datarun.states import RunState

# --- the shapes of the answers below, for the OpenAPI description only ---------------

class RescoreSerializer(EvaluationStateSerializer):
    id = serializers.IntegerField(help_text="The new evaluation.")
    created_at = serializers.DateTimeField()
    rescore_of = serializers.IntegerField(help_text="The evaluation it re-scores.")


class ScorePairSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    bagged = serializers.FloatField(allow_null=True)


class DriftRowSerializer(serializers.Serializer):
    rescore_id = serializers.IntegerField()
    problem = serializers.CharField(help_text="The problem it was re-scored on.")
    state = serializers.ChoiceField(choices=RunState.choices, help_text="The re-score's state.")
    score_type = serializers.CharField()
    step = serializers.CharField(help_text="train, valid or test")
    is_lower_the_better = serializers.BooleanField()
    old = ScorePairSerializer()
    new = ScorePairSerializer()
    drift = ScorePairSerializer(help_text="new - old; null where either is missing.")


class DriftSerializer(serializers.Serializer):
    evaluation = serializers.IntegerField()
    drift = DriftRowSerializer(many=True)


class EvaluationRescoreApi(APIView):
    """``POST /api/v1/evaluations/<id>/rescore/ {"problem": name}`` -> 202."""

    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="RescoreRequest")
    class InputSerializer(serializers.Serializer):
        problem = serializers.SlugField(max_length=100)

    @extend_schema(operation_id="evaluation_rescore", tags=["evaluations"],
                   summary="Re-score an evaluation on another problem",
                   description="The same files, with the same limits, evaluated on another "
                               "problem (e.g. one built on a newer dataset version).",
                   request=InputSerializer,
                   responses={202: RescoreSerializer, **error_responses(400, 401, 403, 404)})
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

    @extend_schema(operation_id="evaluation_drift", tags=["evaluations"],
                   summary="How re-scores' scores drift",
                   description="One row per re-score, score type and step.",
                   responses={200: DriftSerializer, **error_responses(401, 403, 404)})
    def get(self, request, pk):
        return Response({"evaluation": pk, "drift": score_drift(evaluation_id=pk)})
