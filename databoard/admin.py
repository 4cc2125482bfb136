from django.contrib import admin, messages

from databoard import services
from databoard.models import (
    AuditEntry,
    Event,
    Profile,
    SandboxFile,
    SandboxImport,
    Submission,
    SubmissionCredit,
    Team,
    TeamInvitation,
    TeamMember,
)
from datarun.errors import ApplicationError


def _run_service(request, queryset, done: str, action) -> None:
    """An admin action through ``databoard.services``: one message per refusal."""
    n = 0
    for obj in queryset:
        try:
            action(obj)
        except ApplicationError as exc:
            messages.error(request, f"{obj}: {exc.message}")
        else:
            n += 1
    if n:
        messages.success(request, f"{n} {done}.")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "problem_name", "is_public", "opens_at",
                    "public_opens_at", "closes_at", "is_competitive"]
    list_filter = ["is_public", "is_competitive", "signup_requires_approval"]
    search_fields = ["name", "title", "problem_name"]
    filter_horizontal = ["admins"]
    fieldsets = [
        (None, {"fields": ["name", "title", "problem_name", "description", "is_public",
                           "admins"]}),
        ("Dates (UTC)", {"fields": ["opens_at", "public_opens_at", "closes_at"]}),
        ("Rules", {"fields": ["min_submission_interval_s", "max_submissions_per_day",
                              "is_competitive", "leaderboard_kind",
                              "signup_requires_approval", "max_team_size"]}),
        ("Per-fold limits (empty: the platform's defaults)",
         {"fields": ["fold_time_limit_s", "fold_memory_limit_mb", "fold_cpus"]}),
    ]


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    fields = ["user", "joined_at"]
    readonly_fields = ["joined_at"]
    extra = 0


class TeamInvitationInline(admin.TabularInline):
    model = TeamInvitation
    fields = ["user", "invited_by", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "event", "approved", "created_at"]
    list_filter = ["event", "approved"]
    search_fields = ["name", "members__username"]
    raw_id_fields = ["selected_submission"]
    inlines = [TeamMemberInline, TeamInvitationInline]
    actions = ["approve_signups"]

    @admin.action(description="Approve the selected sign-ups")
    def approve_signups(self, request, queryset):
        _run_service(request, queryset, "approved",
                     lambda team: services.signup_approve(team_id=team.id, user=request.user))

    def save_formset(self, request, form, formset, change):
        # The event of a membership is the team's (one team per user and event).
        for obj in formset.save(commit=False):
            if isinstance(obj, TeamMember):
                obj.event_id = form.instance.event_id
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()


class SubmissionCreditInline(admin.TabularInline):
    model = SubmissionCredit
    fk_name = "submission"
    raw_id_fields = ["source"]
    extra = 0


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "submitted_by", "evaluation_id", "contributivity",
                    "created_at"]
    list_filter = ["team__event"]
    search_fields = ["name", "team__name", "submitted_by__username"]
    raw_id_fields = ["team", "submitted_by"]
    readonly_fields = ["evaluation_id", "previous_evaluation_ids", "contributivity"]
    inlines = [SubmissionCreditInline]
    actions = ["rerun", "cancel"]

    @admin.action(description="Re-run the selected submissions (finished ones)")
    def rerun(self, request, queryset):
        _run_service(request, queryset, "queued again",
                     lambda s: services.submission_rerun(submission_id=s.id, user=request.user))

    @admin.action(description="Cancel the selected submissions (queued or running ones)")
    def cancel(self, request, queryset):
        _run_service(request, queryset, "cancelled",
                     lambda s: services.submission_cancel(submission_id=s.id, user=request.user))


@admin.register(SandboxFile)
class SandboxFileAdmin(admin.ModelAdmin):
    list_display = ["team", "file_name", "updated_by", "updated_at"]
    list_filter = ["team__event"]


@admin.register(SandboxImport)
class SandboxImportAdmin(admin.ModelAdmin):
    list_display = ["team", "source", "imported_at"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "affiliation", "time_zone"]
    search_fields = ["user__username", "affiliation"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "user", "action"]
    list_filter = ["action", "event"]
    readonly_fields = ["event", "user", "action", "data", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
