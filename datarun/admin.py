from django.contrib import admin

from datarun.models import Evaluation, FoldRun, Problem, ScoreType


class ScoreTypeInline(admin.TabularInline):
    model = ScoreType
    extra = 0


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "n_train", "n_test", "n_folds", "created_at"]
    inlines = [ScoreTypeInline]
    readonly_fields = ["data_hash", "folds_hash", "storage_dir"]


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
