from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from datarun.errors import ApplicationError
from datarun.models import (
    ComputePool,
    Dataset,
    DatasetFile,
    DatasetVersion,
    Evaluation,
    FoldRun,
    Problem,
    ScoreType,
)


class ScoreTypeInline(admin.TabularInline):
    model = ScoreType
    extra = 0


EXAMPLE_SPEC = """\
name: my-problem
title: My problem
dataset: my-dataset@1        # a dataset version (NAME@N, NAME@latest)
target: label
ignore: [id]                 # columns that are not features
task: multiclass             # binary | multiclass | regression
score_types:                 # the first is official
  - {type: accuracy, name: acc, precision: 3}
  - error
  - nll
split:
  seed: 42
  test: {method: stratified, fraction: 0.2}
  cv: {method: stratified_shuffle, n_splits: 5, fraction: 0.2}
workflow: estimator          # | feature_extractor_classifier | feature_extractor_regressor
limits: {wall_time_s: 60, memory_mb: 1024, cpus: 1}
"""


class DeclarativeProblemForm(forms.Form):
    spec = forms.CharField(
        label="Spec (YAML)", initial=EXAMPLE_SPEC,
        widget=forms.Textarea(attrs={"rows": 22, "cols": 90, "spellcheck": "false",
                                     "style": "font-family: monospace"}))


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "kind", "n_train", "n_test", "n_folds", "created_at"]
    list_filter = ["kind"]
    inlines = [ScoreTypeInline]
    readonly_fields = ["kind", "data_hash", "folds_hash", "storage_dir", "dataset_version",
                       "split", "spec", "kit"]

    @admin.display(description="RAMP kit")
    def kit(self, obj):
        url = reverse("problem-kit", args=[obj.name])
        return format_html('<a href="{}">{}-kit.zip</a> (test labels included)', url, obj.name)

    def get_urls(self):
        view = self.admin_site.admin_view(self.declarative_view)
        return [path("declarative/", view, name="datarun_problem_declarative"),
                *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        # A problem is added from a declarative spec here; RAMP kits come in
        # with ``manage.py import_ramp_kit``.
        return self.declarative_view(request)

    def declarative_view(self, request):
        """A YAML spec with a preview (checked, nothing created) and a create button."""
        from datarun.services.declarative import (
            problem_create_declarative,
            problem_preview_declarative,
        )

        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DeclarativeProblemForm(request.POST or None)
        preview, error = None, None
        if request.method == "POST" and form.is_valid():
            spec = form.cleaned_data["spec"]
            try:
                if "create" in request.POST:
                    problem = problem_create_declarative(spec=spec)
                    self.message_user(request, f"Problem {problem.name} created: "
                                      f"{problem.n_train} training rows, {problem.n_test} test "
                                      f"rows, {problem.n_folds} folds.", messages.SUCCESS)
                    return redirect("admin:datarun_problem_change", problem.pk)
                preview = problem_preview_declarative(spec=spec)
            except ApplicationError as exc:
                error = exc.message
        versions = DatasetVersion.objects.select_related("dataset").order_by(
            "dataset__name", "-number")[:100]
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a declarative problem",
            "opts": self.model._meta,
            "form": form,
            "preview": preview,
            "error": error,
            "versions": [{"ref": f"{v.dataset.name}@{v.number}", "n_rows": v.n_rows,
                          "columns": ", ".join(f"{c['name']} ({c['type']})" for c in v.schema)}
                         for v in versions],
        }
        return TemplateResponse(request, "admin/datarun/problem/declarative.html", context)


class FoldRunInline(admin.TabularInline):
    model = FoldRun
    extra = 0
    fields = ["fold_index", "state", "attempt", "worker_host", "wall_time", "cpu_time",
              "peak_memory", "isolation", "runtime_image", "error_message"]
    readonly_fields = fields


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "problem", "state", "error_kind", "created_at", "finished_at"]
    list_filter = ["state", "error_kind", "problem"]
    inlines = [FoldRunInline]
    search_fields = ["=id", "code_hash"]
    date_hierarchy = "created_at"
    readonly_fields = ["problem", "state", "error_kind", "error_message", "error_traceback",
                       "files", "code_hash", "limits", "sandbox_backend", "created_at",
                       "started_at", "finished_at"]

    # Evaluations change only through datarun's services (re-run and cancel
    # from databoard's organiser pages): read-only here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FoldRun)
class FoldRunAdmin(admin.ModelAdmin):
    list_display = ["id", "evaluation", "fold_index", "state", "attempt", "worker_host",
                    "started_at", "heartbeat_at", "wall_time", "peak_memory", "error_kind"]
    list_filter = ["state", "error_kind", "worker_host", "isolation"]
    search_fields = ["=evaluation__id", "worker_host"]
    list_select_related = ["evaluation"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DatasetFileInline(admin.TabularInline):
    model = DatasetFile
    extra = 0
    fields = ["name", "sha256", "size_bytes", "encoding_format", "source"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "refresh_interval_s", "last_checked_at", "created_at"]
    search_fields = ["name", "title"]
    readonly_fields = ["name", "spec", "last_checked_at", "created_at"]

    # Versions are made by the dataset services (API, dataset_register,
    # dataset_apply); here a dataset's title, description and refresh
    # interval may change, nothing else.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "n_rows", "size_bytes", "manifest_hash", "created_at"]
    list_filter = ["dataset"]
    list_select_related = ["dataset"]
    search_fields = ["dataset__name", "manifest_hash"]
    inlines = [DatasetFileInline]
    readonly_fields = ["dataset", "number", "manifest_hash", "table_path", "table_sha256",
                       "n_rows", "size_bytes", "schema", "transform_sql", "sources",
                       "croissant", "created_at"]

    # Versions are immutable.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ComputePool)
class ComputePoolAdmin(admin.ModelAdmin):
    """Pools are created here too; the runner token is shown once, in the
    message after saving, and only its hash is kept."""

    list_display = ("name", "sandbox", "concurrency", "cpus_per_slot", "memory_mb_per_slot",
                    "gpus_per_slot", "token_prefix", "created_at")
    readonly_fields = ("token_prefix", "token_generation", "created_at")
    actions = ["reset_token"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    has_view_permission = has_change_permission = has_add_permission = \
        has_delete_permission = lambda self, request, obj=None: request.user.is_superuser  # noqa: E731

    def save_model(self, request, obj, form, change):
        from datarun.services import pools

        if change:
            return super().save_model(request, obj, form, change)
        pool, token = pools.pool_create(
            user=request.user, **{name: form.cleaned_data[name] for name in pools.POOL_FIELDS})
        obj.pk = pool.pk
        self._token_message(request, pool, token)

    @admin.action(description="Reset the runner token of the selected pools")
    def reset_token(self, request, queryset):
        from datarun.services import pools

        for pool in queryset:
            self._token_message(request, pool, pools.pool_token_reset(pool=pool, user=request.user))

    def _token_message(self, request, pool, token):
        from datarun.services import pools

        command = pools.runner_commands(base_url=request.build_absolute_uri("/").rstrip("/"),
                                        pool=pool, token=token)["shell"]
        messages.warning(request, format_html(
            "Runner token of {} (shown once): <code>{}</code> — start a runner with "
            "<code>{}</code>", pool.name, token, command))
