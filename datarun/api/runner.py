"""The runner API (``/api/v1/runner/``): how whoever runs folds talks to the
platform, with no database credentials and no shared disk.

A runner holds a runner token (``Authorization: Runner <token>``) and claims
a fold; the claim answers the fold's ticket (:mod:`datarun.contract`), whose
fold token (``Authorization: Fold <token>``) then lets it fetch that fold's
inputs by content hash and report heartbeats, log lines and the outcome of
that fold and attempt only. In-cluster Celery workers and remote runners use
the same calls.
"""
import hmac
import json
import time

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun import contract, services
from datarun.api.schema import UploadField, error_responses
from datarun.models import ComputePool
from datarun.services import pools
from datarun.services.environments import environment_for_runner, environment_wheel_path
from datarun.services.fold_runs import ClaimLost

TAG = "runner"
# The longest a runner's claim waits for a fold (long poll), and how often
# the queue is looked at meanwhile.
MAX_WAIT_S = 30.0
POLL_S = 0.5
# Log lines per request and characters per line a runner may send.
MAX_LOG_LINES = 5000


def _credential(request, keyword: str) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme != keyword or not value.strip():
        raise exceptions.NotAuthenticated(
            f"send `Authorization: {keyword} <token>`"
            + (" (the runner token of the pool)" if keyword == "Runner"
               else " (the fold token of the ticket)"))
    return value.strip()


def _check_runner(request) -> None:
    """The built-in pool's token (in-cluster workers)."""
    token = _credential(request, "Runner")
    if not hmac.compare_digest(token.encode(), settings.DATARUN_RUNNER_TOKEN.encode()):
        raise exceptions.AuthenticationFailed("the runner token is not valid")


def _runner_pool(request) -> ComputePool | None:
    """The pool whose token the request carries (None: the built-in pool)."""
    token = _credential(request, "Runner")
    if hmac.compare_digest(token.encode(), settings.DATARUN_RUNNER_TOKEN.encode()):
        return None
    pool = pools.pool_for_token(token)
    if pool is None:
        raise exceptions.AuthenticationFailed(
            "the runner token is not valid (was the pool's token reset? start the runner "
            "with the new one)")
    return pool


def _fold_attempt(request, fold_run_id: int) -> int:
    return services.fold_token_check(token=_credential(request, "Fold"),
                                     fold_run_id=fold_run_id)


class _RunnerChallenge(BaseAuthentication):
    """Runners authenticate with their own tokens, checked in each view (a
    user's session or API token means nothing here); this only names the
    scheme in ``WWW-Authenticate``, so that a refusal is a 401."""

    scheme = "Runner"

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return self.scheme


class _FoldChallenge(_RunnerChallenge):
    scheme = "Fold"


class _RunnerScheme(OpenApiAuthenticationExtension):
    target_class = _RunnerChallenge
    name = "runnerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Runner <token>`: the runner token of the pool."}


class _FoldScheme(OpenApiAuthenticationExtension):
    target_class = _FoldChallenge
    name = "foldToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Fold <token>`: the fold token of the claimed fold's ticket."}


class RunnerView(APIView):
    authentication_classes = [_FoldChallenge]
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]


class GpuSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    memory_mb = serializers.IntegerField(min_value=0, required=False)


class EnvironmentSerializer(serializers.Serializer):
    host = serializers.CharField(max_length=200)
    sandbox = serializers.ChoiceField(choices=ComputePool.Sandbox.choices)
    cpus = serializers.FloatField(min_value=0, required=False)
    memory_mb = serializers.IntegerField(min_value=0, required=False)
    gpus = GpuSerializer(many=True, required=False)
    slot_gpus = GpuSerializer(
        many=True, required=False,
        help_text="The GPUs of the runner this claim may use (its slot's share); "
                  "default: all of `gpus`.")
    slot = serializers.CharField(
        max_length=100, required=False,
        help_text="Which of the runner's slots claims (a worker process, a runner slot): "
                  "with `host`, where the fold ran.")
    claim_id = serializers.CharField(
        max_length=64, required=False,
        help_text="The runner's own id of this claim: the same claim sent again (its "
                  "answer lost) gets the same ticket back.")
    python = serializers.CharField(max_length=50, required=False)
    platform = serializers.CharField(max_length=300, required=False)
    packages = serializers.DictField(child=serializers.CharField(allow_null=True,
                                                                 max_length=100),
                                     required=False)


class TicketSerializer(serializers.Serializer):
    fold_run_id = serializers.IntegerField()
    evaluation_id = serializers.IntegerField()
    fold_index = serializers.IntegerField()
    attempt = serializers.IntegerField()
    inputs = serializers.DictField(child=serializers.CharField(),
                                   help_text="sha256 of each input: "
                                             + ", ".join(contract.INPUT_NAMES))
    files = serializers.DictField(child=serializers.CharField(),
                                  help_text="sha256 of each submission file, by name")
    limits = serializers.DictField()
    n_train = serializers.IntegerField()
    n_test = serializers.IntegerField()
    prediction_shape = serializers.ListField(child=serializers.IntegerField())
    token = serializers.CharField(help_text="The fold token: `Authorization: Fold <token>`.")
    expires_at = serializers.FloatField(help_text="When the fold token expires (epoch s).")


class FoldClaimApi(RunnerView):
    authentication_classes = [_RunnerChallenge]

    @extend_schema(
        tags=[TAG], operation_id="runner_fold_claim", summary="Claim a fold",
        description="Move a queued fold to running for this runner and answer its "
                    "ticket; 204 when there is nothing to run (finished, cancelled, or "
                    "running elsewhere with a fresh heartbeat).",
        request=EnvironmentSerializer,
        responses={200: TicketSerializer, 204: OpenApiResponse(description="Nothing to run."),
                   **error_responses(400, 401, 404)})
    def post(self, request, pk: int):
        _check_runner(request)
        body = EnvironmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ticket = services.fold_run_claim(fold_run_id=pk, environment=dict(body.validated_data))
        if ticket is None:
            return Response(status=204)
        return Response(ticket.to_json())


class ClaimNextSerializer(EnvironmentSerializer):
    wait = serializers.FloatField(min_value=0, max_value=MAX_WAIT_S, default=0,
                                  help_text="Seconds to wait for a fold when none is queued.")


class ClaimNextApi(RunnerView):
    authentication_classes = [_RunnerChallenge]

    @extend_schema(
        tags=[TAG], operation_id="runner_claim_next", summary="Claim the next fold of the pool",
        description="For runners that pull work (any machine with outbound HTTPS): the next "
                    "fold of the token's pool, oldest first, one team at a time, only folds "
                    "whose GPU needs the runner's advertised GPUs meet; waits up to `wait` "
                    "seconds for one (long poll), then answers 204.",
        request=ClaimNextSerializer,
        responses={200: TicketSerializer, 204: OpenApiResponse(description="Nothing to run."),
                   **error_responses(400, 401)})
    def post(self, request):
        pool = _runner_pool(request)
        body = ClaimNextSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        environment = dict(body.validated_data)
        wait = environment.pop("wait")
        environment["gpus"] = [dict(g) for g in environment.get("gpus", [])]
        if "slot_gpus" in environment:
            environment["slot_gpus"] = [dict(g) for g in environment["slot_gpus"]]
        if pool is not None:
            pools.runner_seen(pool=pool, environment=environment)
        deadline = time.monotonic() + wait
        while True:
            ticket = services.fold_run_claim_next(pool=pool, environment=environment)
            if ticket is not None:
                return Response(ticket.to_json())
            if time.monotonic() >= deadline:
                return Response(status=204)
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


class PoolScoreTypeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    is_lower_the_better = serializers.BooleanField()
    precision = serializers.IntegerField(min_value=0, max_value=20)
    minimum = serializers.FloatField(allow_null=True)
    maximum = serializers.FloatField(allow_null=True)


class PoolProblemSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    title = serializers.CharField(max_length=200)
    workflow_elements = serializers.ListField(child=serializers.CharField(max_length=100),
                                              min_length=1)
    # contract.OBJECTS (-1) first for lists of objects per row (detection).
    prediction_shape = serializers.ListField(
        child=serializers.IntegerField(min_value=contract.OBJECTS))
    n_train = serializers.IntegerField(min_value=1)
    n_test = serializers.IntegerField(min_value=1)
    n_folds = serializers.IntegerField(min_value=1, max_value=1000)
    data_hash = serializers.RegexField(r"^[0-9a-f]{64}$")
    folds_hash = serializers.RegexField(r"^[0-9a-f]{64}$")
    score_types = PoolScoreTypeSerializer(many=True, min_length=1)
    fold_inputs = serializers.ListField(child=serializers.DictField(
        child=serializers.RegexField(r"^[0-9a-f]{64}$")),
        help_text="Per fold, the sha256 of each input: " + ", ".join(contract.INPUT_NAMES))
    starting_kit = serializers.DictField(
        child=serializers.CharField(), required=False, default=dict,
        help_text="Published files, base64: submissions/starting_kit/<file> and README.md.")

    def validate_fold_inputs(self, value):
        for digests in value:
            if set(digests) != set(contract.INPUT_NAMES):
                raise serializers.ValidationError(
                    f"each fold names the inputs {', '.join(contract.INPUT_NAMES)}")
        return value

    def validate_starting_kit(self, value):
        import base64
        import binascii

        try:
            return {path: base64.b64decode(data, validate=True) for path, data in value.items()}
        except binascii.Error:
            raise serializers.ValidationError("files must be base64") from None


class PoolProblemApi(RunnerView):
    authentication_classes = [_RunnerChallenge]

    @extend_schema(
        tags=[TAG], operation_id="runner_problem_register",
        summary="Register a problem prepared on the pool's machine",
        description="Sensitive data: `datarun runner prepare` prepares a RAMP kit on the data "
                    "owner's machine and registers only its metadata, hashes, score types and "
                    "the starting kit files the owner publishes. Its folds then run and are "
                    "scored only on this pool.",
        request=PoolProblemSerializer,
        responses={201: inline_serializer("PoolProblemRegistered", {
            "name": serializers.CharField(), "pool": serializers.CharField()}),
            **error_responses(400, 401, 403)})
    def post(self, request):
        pool = _runner_pool(request)
        if pool is None:
            raise exceptions.PermissionDenied(
                "problems are registered with a compute pool's token, not the built-in pool's")
        body = PoolProblemSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        problem = pools.problem_register_on_pool(pool=pool, **body.validated_data)
        return Response({"name": problem.name, "pool": pool.name}, status=201)


class FoldInputApi(RunnerView):
    @extend_schema(
        tags=[TAG], operation_id="runner_input", summary="Fetch an input by content hash",
        description="One of the inputs or submission files the fold's ticket names.",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   **error_responses(401, 404, 409)})
    def get(self, request, pk: int, digest: str):
        attempt = _fold_attempt(request, pk)
        path = services.fold_run_input_path(fold_run_id=pk, attempt=attempt, digest=digest)
        return FileResponse(open(path, "rb"), content_type="application/octet-stream")


class EnvironmentLockApi(RunnerView):
    authentication_classes = [_RunnerChallenge]

    @extend_schema(
        tags=[TAG], operation_id="runner_environment", summary="A problem environment's lock",
        description="What a runner with no shared disk needs to build the environment a fold's "
                    "ticket names (`environment`, its lock hash) by itself: every package at "
                    "its version with the sha256 of its file (fetched from "
                    "`/runner/wheels/<sha256>`) and the Python it is for.",
        responses={200: inline_serializer("RunnerEnvironment", {
            "lock_hash": serializers.CharField(), "python": serializers.CharField(),
            "requirements": serializers.CharField(),
            "packages": serializers.ListField(child=serializers.DictField())}),
            **error_responses(401, 404)})
    def get(self, request, lock_hash: str):
        _runner_pool(request)
        environment = environment_for_runner(lock_hash=lock_hash)
        return Response({"lock_hash": environment.lock_hash, "python": environment.python,
                         "requirements": environment.requirements,
                         "packages": environment.packages})


class EnvironmentWheelApi(RunnerView):
    authentication_classes = [_RunnerChallenge]

    @extend_schema(
        tags=[TAG], operation_id="runner_wheel", summary="A locked package file by sha256",
        description="A file of the platform's kept wheel folder that an environment's lock "
                    "names; nothing else of the folder is served.",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   **error_responses(401, 404)})
    def get(self, request, digest: str):
        _runner_pool(request)
        path = environment_wheel_path(sha256=digest)
        return FileResponse(open(path, "rb"), content_type="application/octet-stream")


class HeartbeatApi(RunnerView):
    @extend_schema(
        tags=[TAG], operation_id="runner_heartbeat", summary="Keep a fold's claim",
        request=None,
        responses={200: inline_serializer("Heartbeat", {"running": serializers.BooleanField()}),
                   **error_responses(401, 404, 409)})
    def post(self, request, pk: int):
        attempt = _fold_attempt(request, pk)
        if not services.fold_run_heartbeat(fold_run_id=pk, attempt=attempt):
            raise ClaimLost(
                f"fold run {pk} is no longer claimed by attempt {attempt}: stop running it")
        return Response({"running": True})


class LogLinesSerializer(serializers.Serializer):
    lines = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(allow_blank=True,
                                                                trim_whitespace=False),
                                    min_length=2, max_length=2),
        max_length=MAX_LOG_LINES,
        help_text='`[["stdout" | "stderr", text], ...]` in the order printed.')

    def validate_lines(self, lines):
        for stream, _ in lines:
            if stream not in ("stdout", "stderr"):
                raise serializers.ValidationError(f"unknown stream {stream!r}: "
                                                  "stdout or stderr")
        return [(stream, text.replace("\x00", "\ufffd")) for stream, text in lines]


class LogLinesApi(RunnerView):
    @extend_schema(
        tags=[TAG], operation_id="runner_log_lines", summary="Send log lines",
        request=LogLinesSerializer,
        responses={200: inline_serializer("LogLinesAccepted", {
            "accepted": serializers.BooleanField(
                help_text="false once the run's log is full or the claim is lost: "
                          "stop sending")}),
            **error_responses(400, 401, 404)})
    def post(self, request, pk: int):
        attempt = _fold_attempt(request, pk)
        body = LogLinesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        accepted = services.run_log_append(fold_run_id=pk, attempt=attempt,
                                           lines=body.validated_data["lines"])
        return Response({"accepted": accepted})


class OutcomeApi(RunnerView):
    # Form-encoded when a failed fold sends no predictions.
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=[TAG], operation_id="runner_outcome", summary="Report a fold's outcome",
        description="Multipart: `outcome` (JSON: measurements, logs, error) and, when the "
                    "fold succeeded, `y_pred_train` and `y_pred_test` as plain `.npy` "
                    "files. The server checks and scores the predictions.",
        request={"multipart/form-data": inline_serializer("Outcome", {
            "outcome": serializers.CharField(help_text="The outcome as JSON."),
            "y_pred_train": UploadField(required=False),
            "y_pred_test": UploadField(required=False)})},
        responses={200: inline_serializer("OutcomeRecorded",
                                          {"recorded": serializers.BooleanField()}),
                   **error_responses(400, 401, 404, 409)})
    def post(self, request, pk: int):
        attempt = _fold_attempt(request, pk)
        try:
            meta = json.loads(request.data.get("outcome", ""))
        except ValueError:
            raise exceptions.ValidationError(
                {"outcome": "must be the outcome as a JSON object"}) from None
        files = {name: upload.read() for name, upload in request.FILES.items()}
        services.fold_run_outcome(fold_run_id=pk, attempt=attempt, meta=meta, files=files)
        return Response({"recorded": True})
