"""Compute pools in the organiser pages (superusers): the pools with their
runners, a new pool (its runner token and start command shown once), a
token reset."""
from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from databoard.views.errors import shows_errors
from datarun import services as datarun_services
from datarun.errors import PermissionDenied
from datarun.models import ComputePool
from datarun.services.pools import POOL_FIELDS


class PoolForm(forms.ModelForm):
    class Meta:
        model = ComputePool
        fields = POOL_FIELDS
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        labels = {"concurrency": "Fold slots per runner", "cpus_per_slot": "CPUs per slot",
                  "memory_mb_per_slot": "Memory per slot (MiB)",
                  "gpus_per_slot": "GPUs per slot"}


def _page(request, *, form=None, token=None, pool=None, status=200):
    context = {"pools": datarun_services.pools_overview(user=request.user),
               "form": form or PoolForm(), "new_token": token, "token_pool": pool}
    if token:
        context["commands"] = datarun_services.runner_commands(
            base_url=request.build_absolute_uri("/").rstrip("/"), pool=pool, token=token)
    return render(request, "databoard/organiser/pools.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@shows_errors
def pools(request):
    if request.method == "GET":
        return _page(request)
    form = PoolForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    pool, token = datarun_services.pool_create(user=request.user, **{
        name: form.cleaned_data[name] for name in POOL_FIELDS})
    return _page(request, token=token, pool=pool, status=201)


@login_required
@require_POST
@shows_errors
def pool_token_reset(request, name):
    if not request.user.is_superuser:  # not even whether the pool exists
        raise PermissionDenied("only a superuser manages compute pools")
    pool = datarun_services.pool_get(name)
    token = datarun_services.pool_token_reset(pool=pool, user=request.user)
    return _page(request, token=token, pool=pool)


urlpatterns = [
    path("organiser/pools/", pools, name="organiser-pools"),
    path("organiser/pools/<slug:name>/token/", pool_token_reset, name="organiser-pool-token"),
]
