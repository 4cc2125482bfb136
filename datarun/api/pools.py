"""Compute pools over the API, for superusers: create a pool (its runner
token is answered once, with the command that starts a runner), list pools
with their runners, reset a pool's token."""
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from datarun.api.pagination import PAGE_PARAMETERS, paged, paginate
from datarun.api.schema import error_responses
from datarun.models import ComputePool
from datarun.services import pools

TAG = "pools"


class IsSuperuser(BasePermission):
    message = "only a superuser manages compute pools"

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_superuser)


class RunnerSerializer(serializers.Serializer):
    host = serializers.CharField()
    cpus = serializers.FloatField(allow_null=True)
    memory_mb = serializers.IntegerField(allow_null=True)
    gpus = serializers.ListField(child=serializers.DictField())
    sandbox = serializers.CharField()
    last_seen = serializers.DateTimeField()
    running = serializers.IntegerField(help_text="Folds it is running now.")


class PoolSerializer(serializers.Serializer):
    name = serializers.SlugField()
    description = serializers.CharField()
    cpus_per_slot = serializers.FloatField()
    memory_mb_per_slot = serializers.IntegerField()
    gpus_per_slot = serializers.IntegerField()
    sandbox = serializers.CharField()
    concurrency = serializers.IntegerField()
    token_prefix = serializers.CharField(help_text="The token's first characters, to tell "
                                                   "which one a runner holds.")
    created_at = serializers.DateTimeField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    runners = RunnerSerializer(many=True)


class PoolTokenSerializer(serializers.Serializer):
    pool = serializers.SlugField()
    token = serializers.CharField(help_text="Shown once: store it where the runner runs.")
    commands = inline_serializer("RunnerCommands", {
        "shell": serializers.CharField(), "docker": serializers.CharField()})


def _token_answer(request, pool: ComputePool, token: str) -> dict:
    return {"pool": pool.name, "token": token,
            "commands": pools.runner_commands(base_url=request.build_absolute_uri("/").rstrip("/"),
                                        pool=pool, token=token)}


class PoolListApi(APIView):
    permission_classes = [IsSuperuser]

    @extend_schema_serializer(component_name="PoolCreate")
    class InputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        cpus_per_slot = serializers.FloatField(min_value=0.1, default=1.0)
        memory_mb_per_slot = serializers.IntegerField(min_value=64, default=2048)
        gpus_per_slot = serializers.IntegerField(min_value=0, default=0)
        sandbox = serializers.ChoiceField(choices=ComputePool.Sandbox.choices,
                                          default=ComputePool.Sandbox.DOCKER)
        concurrency = serializers.IntegerField(min_value=1, max_value=256, default=1)

    @extend_schema(tags=[TAG], operation_id="pools_list", summary="Compute pools",
                   description="Every pool with its runners and its queued and running "
                               "folds, a page at a time.",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paged(PoolSerializer, "PagedPoolList"),
                              **error_responses(400, 401, 403, 404)})
    def get(self, request):
        rows, info = paginate(request, pools.pools_overview(user=request.user))
        return Response({**info, "results": rows})

    @extend_schema(tags=[TAG], operation_id="pools_create", summary="Create a compute pool",
                   request=InputSerializer,
                   responses={201: PoolTokenSerializer, **error_responses(400, 401, 403)})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pool, token = pools.pool_create(user=request.user, **body.validated_data)
        return Response(_token_answer(request, pool, token), status=201)


class PoolTokenApi(APIView):
    permission_classes = [IsSuperuser]

    @extend_schema(tags=[TAG], operation_id="pools_token_reset",
                   summary="Reset a pool's runner token",
                   description="Runners holding the old token are refused from their next "
                               "call; the folds they were running go back to the queue.",
                   request=None,
                   responses={200: PoolTokenSerializer, **error_responses(401, 403, 404)})
    def post(self, request, name: str):
        pool = pools.pool_get(name)
        token = pools.pool_token_reset(pool=pool, user=request.user)
        return Response(_token_answer(request, pool, token))
