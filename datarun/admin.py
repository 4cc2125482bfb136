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
