"""The shapes the API answers with, for its OpenAPI description.

Views build their answers as plain data (see the selectors); these serializers
only describe that data for ``/api/schema/`` and are never used to render it.
Here: the one error shape, and what datarun's selectors return (problems,
score types, evaluations and their folds), which databoard's answers embed.
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from datarun.models import RuntimeEnvironment
from datarun.states import ErrorKind, RunState

ERROR_MEANINGS = {
    400: "The request is invalid; the message says what to fix.",
    401: "No credentials, or a wrong token: send `Authorization: Token <key>`.",
    403: "You may not do this (the message says why).",
    404: "No such thing, or none you may see.",
    409: "The thing's state does not allow this now (e.g. it has already finished).",
    413: "The upload is over the platform's size limit (the message gives it).",
    429: "A rule of the event refuses this for now: `details.rule` names it and "
         "`details.next_allowed_at` says when to try again (`Retry-After` in seconds).",
    422: "The `Idempotency-Key` was already used for another request: use a new key.",
    503: "The platform is unavailable for a moment (`Retry-After` in seconds): send the "
         "same request again.",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable: invalid, not_authenticated, permission_denied, "
                  "not_found, invalid_state, submission_refused, ...")
    message = serializers.CharField(help_text="What went wrong and what to fix, for people.")
    details = serializers.DictField(
        help_text="The invalid fields and their errors, or the rule that refused a "
                  "submission; empty otherwise.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The API's error shape under each of ``statuses``, for ``extend_schema(responses=...)``."""
    return {status: OpenApiResponse(ErrorSerializer, description=ERROR_MEANINGS[status])
            for status in statuses}


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file part of a multipart request (drf-spectacular would describe a URL)."""


class LimitsSerializer(serializers.Serializer):
    wall_time_s = serializers.FloatField(help_text="Wall time per fold, in seconds.")
    memory_mb = serializers.IntegerField(help_text="Memory per fold, in MiB.")
    cpus = serializers.FloatField(help_text="CPUs per fold.")


class ScoreTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    is_lower_the_better = serializers.BooleanField()
    precision = serializers.IntegerField(help_text="Decimals shown.")
    minimum = serializers.FloatField(allow_null=True, help_text="null when unbounded")
    maximum = serializers.FloatField(allow_null=True, help_text="null when unbounded")
    official = serializers.BooleanField(help_text="The score that ranks (the first one).")


class PackageVersionSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()


class EnvironmentSummarySerializer(serializers.Serializer):
    lock_hash = serializers.CharField(help_text="sha256 of the lock (exact versions, hashes).")
    state = serializers.ChoiceField(choices=RuntimeEnvironment.State.choices)
    prepared = serializers.BooleanField(help_text="Its data prepared there: runs are open.")
    python = serializers.CharField()
    error = serializers.CharField()
    packages = PackageVersionSerializer(many=True)


class ProblemSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    workflow_elements = serializers.ListField(
        child=serializers.CharField(), help_text="What a submission's files are named after.")
    n_train = serializers.IntegerField()
    n_test = serializers.IntegerField()
    n_folds = serializers.IntegerField()
    data_hash = serializers.CharField()
    folds_hash = serializers.CharField()
    score_types = ScoreTypeSerializer(many=True)
    environment = EnvironmentSummarySerializer(
        allow_null=True, help_text="Its own environment; null: the shared runtime.")


class ScoreValuesSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True, help_text="Mean over folds.")
    std = serializers.FloatField(allow_null=True, help_text="Standard deviation over folds.")
    bagged = serializers.FloatField(allow_null=True,
                                    help_text="Bagged (RAMP): combined fold predictions.")


def scores_field() -> serializers.DictField:
    """``{score type: {step: {mean, std, bagged}}}``; a missing score is null."""
    return serializers.DictField(
        child=serializers.DictField(child=ScoreValuesSerializer()),
        help_text="Score type name -> step (train, valid; test where you may see it) -> "
                  "scores. A missing score (NaN, or not computed) is null.")


class EvaluationStateSerializer(serializers.Serializer):
    """Where an evaluation stands, and what it cost (folds scored so far)."""

    problem = serializers.CharField()
    state = serializers.ChoiceField(choices=RunState.choices)
    error_kind = serializers.ChoiceField(
        choices=ErrorKind.choices, allow_blank=True,
        help_text="participant: the submission failed; platform: the platform did "
                  "(never counted against you); empty when no error.")
    error = serializers.CharField(allow_blank=True, help_text="Why it failed; empty if not.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    n_folds = serializers.IntegerField()
    n_folds_done = serializers.IntegerField()
    train_time = serializers.FloatField(allow_null=True, help_text="Seconds, summed over folds.")
    valid_time = serializers.FloatField(allow_null=True, help_text="Seconds, summed over folds.")
    test_time = serializers.FloatField(allow_null=True, help_text="Seconds, summed over folds.")
    cpu_time = serializers.FloatField(allow_null=True, help_text="Seconds, summed over folds.")
    peak_memory = serializers.IntegerField(allow_null=True,
                                           help_text="Bytes, the largest of any fold.")


class FoldRunSerializer(serializers.Serializer):
    fold = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RunState.choices)
    attempt = serializers.IntegerField()
    worker_host = serializers.CharField(allow_blank=True)
    isolation = serializers.CharField(allow_blank=True)
    runtime_image = serializers.CharField(allow_blank=True)
    train_time = serializers.FloatField(allow_null=True)
    valid_time = serializers.FloatField(allow_null=True)
    test_time = serializers.FloatField(allow_null=True)
    wall_time = serializers.FloatField(allow_null=True)
    cpu_time = serializers.FloatField(allow_null=True)
    peak_memory = serializers.IntegerField(allow_null=True, help_text="Bytes.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error_kind = serializers.ChoiceField(choices=ErrorKind.choices, allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    error_traceback = serializers.CharField(allow_blank=True)
    scores = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField(allow_null=True)),
        help_text="Score type name -> step -> the fold's score.")


class EvaluationDetailSerializer(serializers.Serializer):
    """What an evaluation's detail adds to its state: inputs, folds and scores."""

    limits = LimitsSerializer()
    sandbox_backend = serializers.CharField()
    code_hash = serializers.CharField()
    files = serializers.DictField(child=serializers.CharField(),
                                  help_text="File name -> sha256 of its content.")
    error_traceback = serializers.CharField(allow_blank=True)
    folds = FoldRunSerializer(many=True)
    scores = scores_field()
