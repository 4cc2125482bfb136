"""Events, teams and submissions.

A submission refers to its evaluation in datarun by ID only: databoard reads
evaluations through datarun's selectors, never through its tables.
"""
from django.conf import settings
from django.db import models


class Event(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    problem_name = models.SlugField(max_length=100, help_text="datarun problem")
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=True)
    opens_at = models.DateTimeField(null=True, blank=True)
    closes_at = models.DateTimeField(null=True, blank=True)
    # Per-fold limits for this event's submissions; null means the default.
    fold_time_limit_s = models.FloatField(null=True, blank=True)
    fold_memory_limit_mb = models.PositiveIntegerField(null=True, blank=True)
    fold_cpus = models.FloatField(null=True, blank=True)
    admins = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                    related_name="administered_events")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def is_admin(self, user) -> bool:
        return bool(user.is_authenticated and (
            user.is_superuser or self.admins.filter(id=user.id).exists()))


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class EventTeam(models.Model):
    """A team's sign-up to an event."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="event_teams")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="event_teams")
    approved = models.BooleanField(default=True)
    signed_up_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "team"], name="event_team_unique"),
        ]


class Submission(models.Model):
    event_team = models.ForeignKey(EventTeam, on_delete=models.CASCADE,
                                   related_name="submissions")
    name = models.CharField(max_length=100)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="submissions")
    evaluation_id = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["event_team", "name"],
                                    name="submission_name_unique_per_team"),
        ]

    def __str__(self) -> str:
        return self.name
