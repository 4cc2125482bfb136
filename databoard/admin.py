from django.contrib import admin

from databoard.models import Event, EventTeam, Submission, Team


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "problem_name", "is_public", "opens_at", "closes_at"]
    filter_horizontal = ["admins"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    filter_horizontal = ["members"]


@admin.register(EventTeam)
class EventTeamAdmin(admin.ModelAdmin):
    list_display = ["event", "team", "approved", "signed_up_at"]
    list_filter = ["event", "approved"]


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["name", "event_team", "submitted_by", "evaluation_id", "created_at"]
