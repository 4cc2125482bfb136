"""Dataset API (``/api/v1/datasets/``): staff users only, since data can be sensitive."""
import json

from django.conf import settings
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import storage
from datarun.api.pagination import PAGE_PARAMETERS, paged, paginate
from datarun.api.schema import UploadField, error_responses
from datarun.datasets import croissant
from datarun.errors import InvalidDataset, NotFound
from datarun.models import Dataset, DatasetVersion, Split
from datarun.services import datasets as services

# --- the shapes of the answers below, for the OpenAPI description only -----------

class DatasetVersionSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    manifest_hash = serializers.CharField(help_text="sha256 over the files' names and hashes.")
    n_rows = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class DatasetSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    n_versions = serializers.IntegerField()
    latest = DatasetVersionSummarySerializer(allow_null=True)


class DatasetDetailSerializer(DatasetSerializer):
    versions = DatasetVersionSummarySerializer(many=True)


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="DuckDB type, e.g. BIGINT, DOUBLE, VARCHAR.")
    nullable = serializers.BooleanField()


class DatasetFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    encoding_format = serializers.CharField(help_text="Its media type, e.g. text/csv.")
    source = serializers.CharField(help_text='"upload", or the URL or path it came from.')
    url = serializers.CharField(help_text="Where to download it.")


class DatasetSplitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    split_hash = serializers.CharField()
    rows = serializers.DictField(child=serializers.IntegerField(),
                                 help_text="Split name (train, test) -> number of rows.")
    url = serializers.CharField(help_text="Its per-row table (Parquet).")


class DatasetVersionSerializer(DatasetVersionSummarySerializer):
    dataset = serializers.CharField()
    ref = serializers.CharField(help_text="name@number, how problems name the version.")
    n_columns = serializers.IntegerField()
    schema = ColumnSerializer(many=True)
    table_sha256 = serializers.CharField()
    transform_sql = serializers.CharField(allow_blank=True)
    files = DatasetFileSerializer(many=True)
    table_url = serializers.CharField(help_text="The materialised table (Parquet).")
    croissant_url = serializers.CharField()
    splits = DatasetSplitSerializer(many=True)


class DatasetVersionCreatedSerializer(DatasetVersionSerializer):
    created = serializers.BooleanField(help_text="false: the same bytes were already a version.")


class DatasetListApi(APIView):
    """List datasets; create a version (of a new or existing dataset).

    ``multipart/form-data``: ``name`` and one ``files`` field per file (plus
    optional ``sources``, ``transform_sql``, ``title``, ``description``); or
    JSON ``{"name", "sources": [...], "transform_sql", "title", "description"}``
    where sources are http(s) or s3:// URLs, or server paths under
    DATARUN_DATASET_PATHS. Answers 201 with the new version, or 200 with the
    version that already holds the same bytes.
    """

    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema_serializer(component_name="DatasetSources")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        sources = serializers.ListField(child=serializers.CharField(max_length=1000),
                                        required=False, default=list)
        transform_sql = serializers.CharField(required=False, default="", allow_blank=True,
                                              trim_whitespace=False)
        title = serializers.CharField(required=False, default="", allow_blank=True,
                                      max_length=200)
        description = serializers.CharField(required=False, default="", allow_blank=True)

    @extend_schema_serializer(component_name="DatasetUpload")
    class UploadSerializer(InputSerializer):
        files = serializers.ListField(child=UploadField(), required=False,
                                      help_text="One field per file.")

    @extend_schema(operation_id="datasets_list", tags=["datasets"], summary="List datasets",
                   description="Every dataset, with its number of versions and its latest, "
                               "a page at a time.",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paged(DatasetSerializer, "PagedDatasetList"),
                              **error_responses(400, 401, 403, 404)})
    def get(self, request):
        rows, info = paginate(request,
                              Dataset.objects.prefetch_related("versions").order_by("name"))
        return Response({**info, "results": [_dataset_out(d, versions=False) for d in rows]})

    @extend_schema(
        operation_id="dataset_version_create", tags=["datasets"],
        summary="Create a dataset version",
        description="Uploaded files (multipart), or sources to fetch (JSON: http(s) or s3:// "
                    "URLs, or server paths under DATARUN_DATASET_PATHS), optionally "
                    "transformed by DuckDB SQL. The dataset is created if new.",
        request={"multipart/form-data": UploadSerializer, "application/json": InputSerializer},
        responses={
            201: OpenApiResponse(DatasetVersionCreatedSerializer,
                                 description="A new version."),
            200: OpenApiResponse(DatasetVersionCreatedSerializer,
                                 description="The version that already holds the same bytes."),
            **error_responses(400, 401, 403)})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        uploads = {}
        for upload in request.FILES.getlist("files"):
            if upload.name in uploads:
                raise InvalidDataset(f"{upload.name} was uploaded twice")
            uploads[upload.name] = upload
        version, created = services.dataset_version_create(
            dataset=data["name"], sources=data["sources"], uploads=uploads,
            transform_sql=data["transform_sql"], title=data["title"],
            description=data["description"],
            allowed_paths=settings.DATARUN_DATASET_PATHS,
        )
        return Response({"created": created, **_version_out(version)},
                        status=201 if created else 200)


class DatasetDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(operation_id="dataset_get", tags=["datasets"], summary="A dataset",
                   description="The dataset and every one of its versions.",
                   responses={200: DatasetDetailSerializer, **error_responses(401, 403, 404)})
    def get(self, request, name):
        dataset = Dataset.objects.prefetch_related("versions").filter(name=name).first()
        if dataset is None:
            raise NotFound(f"no dataset named {name!r}")
        return Response(_dataset_out(dataset, versions=True))


class DatasetVersionApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(operation_id="dataset_version_get", tags=["datasets"],
                   summary="A dataset version",
                   description="Its files, schema, table and splits, with their download URLs.",
                   responses={200: DatasetVersionSerializer, **error_responses(401, 403, 404)})
    def get(self, request, name, number):
        return Response(_version_out(_version(name, number)))


class DatasetVersionCroissantApi(APIView):
    """The version's Croissant JSON-LD, as a file to save; with its latest split
    (or ``?split=<id>``) as a ``cr:Split`` record set."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="dataset_version_croissant", tags=["datasets"],
        summary="A dataset version's Croissant", description="JSON-LD, as a file to save.",
        parameters=[OpenApiParameter("split", int, description="The id of one of the "
                                     "version's splits (default: the latest).")],
        responses={(200, "application/ld+json"): OpenApiResponse(
            OpenApiTypes.OBJECT, description="Croissant JSON-LD (mlcroissant validates it)."),
            **error_responses(400, 401, 403, 404)})
    def get(self, request, name, number):
        version = _version(name, number)
        split = None
        if "split" in request.query_params:
            split = _split(version, request.query_params["split"])
        doc = services.dataset_version_croissant(version, split=split)
        response = HttpResponse(json.dumps(doc, indent=2), content_type="application/ld+json")
        response["Content-Disposition"] = (
            f'attachment; filename="{name}-v{number}-croissant.json"')
        return response


class DatasetVersionFileApi(APIView):
    """One file of the version, by the name its Croissant gives (``table.parquet``
    is the materialised table, ``split-<id>.parquet`` a split's per-row table)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="dataset_version_file", tags=["datasets"],
        summary="A file of a dataset version",
        responses={(200, "application/octet-stream"): OpenApiResponse(
            OpenApiTypes.BINARY,
            description=f"The file, as an attachment. Its content type is the one its Croissant "
                        f"gives: {croissant.PARQUET} for the table and the splits, the "
                        f"file's own (e.g. text/csv) for a source file."),
            **error_responses(400, 401, 403, 404)})
    def get(self, request, name, number, file_name):
        version = _version(name, number)
        split = next((s for s in version.splits.all()
                      if services.split_file_name(s) == file_name), None)
        if file_name == croissant.TABLE_FILE:
            path, content_type = services.dataset_version_table(version), croissant.PARQUET
        elif split is not None:
            path, content_type = storage.resolve(split.table_path), croissant.PARQUET
        else:
            file = version.files.filter(name=file_name).first()
            if file is None:
                raise NotFound(f"{version} has no file named {file_name!r}")
            path, content_type = storage.blob_path(file.sha256), file.encoding_format
        return FileResponse(open(path, "rb"), as_attachment=True, filename=file_name,
                            content_type=content_type)


def _version(name: str, number: int) -> DatasetVersion:
    return services.dataset_version_get(f"{name}@{number}")


def _split(version: DatasetVersion, split_id: str) -> Split:
    split = version.splits.filter(pk=int(split_id)).first() if split_id.isdigit() else None
    if split is None:
        raise NotFound(f"{version} has no split {split_id!r}")
    return split


def _dataset_out(dataset: Dataset, *, versions: bool) -> dict:
    all_versions = sorted(dataset.versions.all(), key=lambda v: v.number)
    out = {
        "name": dataset.name,
        "title": dataset.title,
        "description": dataset.description,
        "created_at": dataset.created_at,
        "n_versions": len(all_versions),
        "latest": _version_summary(all_versions[-1]) if all_versions else None,
    }
    if versions:
        out["versions"] = [_version_summary(v) for v in all_versions]
    return out


def _version_summary(version: DatasetVersion) -> dict:
    return {
        "number": version.number,
        "manifest_hash": version.manifest_hash,
        "n_rows": version.n_rows,
        "size_bytes": version.size_bytes,
        "created_at": version.created_at,
    }


def _version_out(version: DatasetVersion) -> dict:
    base = f"/api/v1/datasets/{version.dataset.name}/versions/{version.number}/"
    return {
        "dataset": version.dataset.name,
        "ref": f"{version.dataset.name}@{version.number}",
        **_version_summary(version),
        "n_columns": len(version.schema),
        "schema": version.schema,
        "table_sha256": version.table_sha256,
        "transform_sql": version.transform_sql,
        "files": [{"name": f.name, "sha256": f.sha256, "size_bytes": f.size_bytes,
                   "encoding_format": f.encoding_format, "source": f.source,
                   "url": f"{base}files/{f.name}"}
                  for f in version.files.all()],
        "table_url": f"{base}files/{croissant.TABLE_FILE}",
        "croissant_url": f"{base}croissant.json",
        "splits": [{"id": s.pk, "split_hash": s.split_hash, "rows": s.summary.get("rows", {}),
                    "url": f"{base}files/{services.split_file_name(s)}"}
                   for s in version.splits.order_by("pk")],
    }
