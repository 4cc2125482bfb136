"""The data dashboard as JSON (staff only): the same numbers as the pages
``/data/datasets/<name>/v<n>/`` and ``/data/problems/<name>/``."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import dataset_selectors
from datarun.api.datasets import ColumnSerializer
from datarun.api.schema import error_responses
from datarun.declarative.spec import TASKS
from datarun.models import Problem

# --- the shapes of the answers below, for the OpenAPI description only ---------------


class DashboardFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    source = serializers.CharField()
    encoding_format = serializers.CharField()


class DashboardSplitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    spec = serializers.DictField(help_text="The split spec it was made from.")
    spec_hash = serializers.CharField()
    split_hash = serializers.CharField()
    summary = serializers.DictField(help_text="Rows per split and fold sizes.")
    created_at = serializers.DateTimeField()


class DashboardVersionSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The dataset's name.")
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    number = serializers.IntegerField()
    manifest_hash = serializers.CharField()
    table_sha256 = serializers.CharField()
    n_rows = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    schema = ColumnSerializer(many=True)
    transform_sql = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    croissant_url = serializers.CharField()
    files = DashboardFileSerializer(many=True)
    splits = DashboardSplitSerializer(many=True, help_text="Newest first.")


class ProfileSampleSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()))


class DataProfileSerializer(serializers.Serializer):
    """What DuckDB measured on the table, per split (see ``datarun.datasets.profile``)."""

    format = serializers.IntegerField(help_text="Version of this shape.")
    n_rows = serializers.IntegerField()
    n_columns = serializers.IntegerField()
    columns = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per column: its type, missing and distinct counts, and a histogram or "
                  "its most frequent values, per split.")
    splits = serializers.ListField(child=serializers.DictField(),
                                   help_text="Rows per split.")
    folds = serializers.ListField(child=serializers.DictField(),
                                  help_text="Train and validation rows per fold.")
    target = serializers.DictField(allow_null=True,
                                   help_text="The target's distribution per split, if asked.")
    sample = ProfileSampleSerializer(help_text="The first rows.")


class DatasetVersionDashboardSerializer(serializers.Serializer):
    dataset = DashboardVersionSerializer()
    split = DashboardSplitSerializer(allow_null=True,
                                     help_text="The split profiled (null: the whole table).")
    profile = DataProfileSerializer()


class DashboardProblemSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=Problem.Kind.choices)
    n_train = serializers.IntegerField()
    n_test = serializers.IntegerField()
    n_folds = serializers.IntegerField()
    data_hash = serializers.CharField()
    folds_hash = serializers.CharField()
    target = serializers.CharField(required=False, help_text="Declarative problems only.")
    task = serializers.ChoiceField(choices=TASKS, required=False,
                                   help_text="Declarative problems only.")
    ignore = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="Declarative problems only.")


class KitFoldSerializer(serializers.Serializer):
    fold = serializers.IntegerField()
    train = serializers.IntegerField(help_text="Training rows.")
    valid = serializers.IntegerField(help_text="Validation rows.")


class KitSplitSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="train or test")
    rows = serializers.IntegerField()


class KitDataSerializer(serializers.Serializer):
    storage_dir = serializers.CharField()
    folds = KitFoldSerializer(many=True)
    splits = KitSplitSerializer(many=True)


class ProblemDashboardSerializer(serializers.Serializer):
    problem = DashboardProblemSerializer()
    dataset = DashboardVersionSerializer(allow_null=True, help_text="Declarative problems.")
    split = DashboardSplitSerializer(allow_null=True, help_text="Declarative problems.")
    profile = DataProfileSerializer(allow_null=True, help_text="Declarative problems.")
    kit = KitDataSerializer(allow_null=True, help_text="RAMP kits: what their import recorded.")


class DatasetVersionDashboardApi(APIView):
    """``?target=<column>`` adds the target's distribution per split;
    ``?split=<id>`` picks one of the version's splits (default: the latest),
    ``?split=all`` profiles the whole table."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="dataset_version_dashboard", tags=["datasets"],
        summary="A dataset version's dashboard",
        description="Its record, files, splits and DuckDB profile per split.",
        parameters=[
            OpenApiParameter("target", str, description="A column: adds its distribution "
                                                        "per split."),
            OpenApiParameter("split", str, description="The id of one of the version's "
                             "splits (default: the latest), or 'all' for the whole table."),
        ],
        responses={200: DatasetVersionDashboardSerializer,
                   **error_responses(400, 401, 403, 404)})
    def get(self, request, name: str, number: int):
        return Response(dataset_selectors.dataset_version_dashboard(
            name=name, number=number, target=request.query_params.get("target") or None,
            split=request.query_params.get("split") or None))


class ProblemDashboardApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(operation_id="problem_dashboard", tags=["problems"],
                   summary="A problem's data dashboard",
                   description="A declarative problem: its dataset version's profile per "
                               "split; a RAMP kit: the rows and folds its import recorded.",
                   responses={200: ProblemDashboardSerializer,
                              **error_responses(401, 403, 404)})
    def get(self, request, name: str):
        return Response(dataset_selectors.problem_dashboard(name=name))
