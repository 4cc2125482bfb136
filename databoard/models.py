"""Events, their rules, teams, sandboxes and submissions.

A submission refers to its evaluation in datarun by ID only: databoard reads
evaluations through datarun's selectors, never through its tables.
Teams belong to one event; a user is in at most one team per event (the
database enforces it through ``TeamMember.event``).
"""
from django.conf import settings
from django.db import models


class EventQuerySet(models.QuerySet):
    def seen_by(self, user) -> "EventQuerySet":
        """Each event loaded knows whether ``user`` administers it, so that
        ``Event.is_admin`` asks nothing more for them."""
        if not user or not user.is_authenticated or user.is_superuser:
            return self
        admins = Event.admins.through.objects.filter(event_id=models.OuterRef("pk"),
                                                    user_id=user.id)
        return self.annotate(viewer_id=models.Value(user.id),
                             viewer_is_admin=models.Exists(admins))


class Event(models.Model):
    class LeaderboardKind(models.TextChoices):
        BAGGED = "bagged", "bagged (RAMP: out-of-fold / averaged fold models)"
        MEAN = "mean", "mean over folds"

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    problem_name = models.SlugField(max_length=100, help_text="datarun problem")
    description = models.TextField(blank=True, help_text="Markdown")
    is_public = models.BooleanField(default=True, help_text="listed and visible to everyone")
    # Times are stored in UTC and shown in the viewer's time zone.
    opens_at = models.DateTimeField(null=True, blank=True,
                                    help_text="submissions accepted from")
    public_opens_at = models.DateTimeField(
        null=True, blank=True,
        help_text="collaborative phase: participants read each other's code from then on "
                  "(empty: never)")
    closes_at = models.DateTimeField(null=True, blank=True,
                                     help_text="submissions refused from; private scores "
                                               "become public")
    min_submission_interval_s = models.PositiveIntegerField(
        default=0, help_text="seconds a team waits between two submissions (0: none)")
    max_submissions_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="per team in any 24 hours (empty: no quota)")
    is_competitive = models.BooleanField(
        default=False, help_text="teams select one submission for the competition leaderboard")
    leaderboard_kind = models.CharField(max_length=10, choices=LeaderboardKind.choices,
                                        default=LeaderboardKind.BAGGED)
    signup_requires_approval = models.BooleanField(default=False)
    max_team_size = models.PositiveSmallIntegerField(default=5)
    # Per-fold limits for this event's submissions; null means the default.
    fold_time_limit_s = models.FloatField(null=True, blank=True)
    fold_memory_limit_mb = models.PositiveIntegerField(null=True, blank=True)
    fold_cpus = models.FloatField(null=True, blank=True)
    fold_gpus = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="GPUs each fold needs: its folds go only to runners "
                                         "offering that many")
    # Where the event's folds run: a compute pool's runners, or (empty) the
    # built-in pool of the platform's own workers. Superusers assign it.
    pool = models.ForeignKey("datarun.ComputePool", null=True, blank=True,
                             on_delete=models.PROTECT, related_name="+")
    admins = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                    related_name="administered_events")
    # Set while a contributivity update is scheduled (debounce).
    contributivity_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When anything a leaderboard shows last changed (its ETag and Last-Modified);
    # null until the leaderboard read model is first built.
    leaderboard_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def is_admin(self, user) -> bool:
        if not user or not user.is_authenticated:
            return False
        if user.is_superuser:
            return True
        # Asked several times per page: once per loaded event and user.
        known = self.__dict__.setdefault("_admins_known", {})
        if user.id not in known:
            if self.__dict__.get("viewer_id") == user.id:  # EventQuerySet.seen_by
                known[user.id] = self.viewer_is_admin
            else:
                known[user.id] = self.admins.filter(id=user.id).exists()
        return known[user.id]

    def remember_admin(self, user, is_admin: bool) -> None:
        """What a query that loaded the event for ``user`` found out."""
        self.__dict__.setdefault("_admins_known", {})[user.id] = is_admin


class Team(models.Model):
    """A team in one event; its sign-up may await an event admin's approval."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="TeamMember",
                                     related_name="teams")
    approved = models.BooleanField(default=True)
    # Competitive events: the submission the team puts forward (None: its best
    # by the public score).
    selected_submission = models.ForeignKey("Submission", null=True, blank=True,
                                            on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event", "name"]
        constraints = [
            models.UniqueConstraint(fields=["event", "name"], name="team_name_unique_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.event.name})"


class TeamMember(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="team_memberships")
    # Copied from the team so that the database refuses a second team per event.
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "user"], name="one_team_per_event"),
        ]


class TeamInvitation(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="team_invitations")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_invitation_per_team"),
        ]


class SubmissionQuerySet(models.QuerySet):
    def of_event(self, event):
        return self.filter(team__event=event)

    def seen_by(self, user) -> "SubmissionQuerySet":
        """Each submission loaded knows whether ``user`` is in its team and
        administers its event (``databoard.permissions`` asks nothing more)."""
        if not user or not user.is_authenticated:
            return self
        member = TeamMember.objects.filter(team_id=models.OuterRef("team_id"), user_id=user.id)
        admin = Event.admins.through.objects.filter(event_id=models.OuterRef("team__event_id"),
                                                    user_id=user.id)
        return self.annotate(viewer_id=models.Value(user.id),
                             viewer_is_member=models.Exists(member),
                             viewer_is_admin=models.Exists(admin))


class Submission(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="submissions")
    name = models.CharField(max_length=100)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="submissions")
    evaluation_id = models.BigIntegerField(unique=True)
    # Earlier evaluations of the same files (re-runs), oldest first.
    previous_evaluation_ids = models.JSONField(default=list, blank=True)
    # Share of the validation ensemble (Caruana, RAMP semantics), 0..1.
    contributivity = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"],
                                    name="submission_name_unique_per_team"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def event(self) -> Event:
        return self.team.event


class SubmissionCredit(models.Model):
    """Code a submission took from another team's submission (collaborative phase)."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="credits")
    source = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="credited_by")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["submission", "source"], name="credit_unique"),
        ]


class LeaderboardEntry(models.Model):
    """The leaderboard read model: one row per scored submission and score kind
    (bagged, mean), with the columns the boards show.

    Written by ``databoard.services.leaderboards`` whenever what a board shows
    changes; read by the pages and the API with one indexed query. A rank is
    the row's place in (sort key, submission time, submission id) order, so a
    new score writes its own rows and never renumbers the others.
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Event.LeaderboardKind.choices)
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    submitted_at = models.DateTimeField()
    # The official score of this kind on the validation (public) and test
    # (private) data, negated when higher is better; +inf when missing, so
    # that ascending order is best first and missing scores rank last.
    valid_key = models.FloatField()
    test_key = models.FloatField()
    # Competitive events: the row the team puts forward (its selection, or its
    # best public row when it selected none).
    in_competition = models.BooleanField(default=False)
    # {score type: {"valid"|"test": {"mean", "std", "bagged"}}}
    scores = models.JSONField()
    train_time = models.FloatField(null=True)
    valid_time = models.FloatField(null=True)
    test_time = models.FloatField(null=True)
    cpu_time = models.FloatField(null=True)
    peak_memory = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["submission", "kind"], name="leaderboard_entry_unique"),
        ]
        indexes = [
            models.Index(fields=["event", "kind", "valid_key", "submitted_at", "submission"],
                         name="leaderboard_public_order"),
            models.Index(fields=["event", "kind", "test_key", "submitted_at", "submission"],
                         name="leaderboard_private_order"),
            models.Index(fields=["event", "kind", "valid_key", "submitted_at", "submission"],
                         condition=models.Q(in_competition=True),
                         name="leaderboard_competition_order"),
        ]

    def __str__(self) -> str:
        return f"{self.submission_id} ({self.kind})"


class SandboxFile(models.Model):
    """A team's work in progress: one file of the next submission."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="sandbox_files")
    file_name = models.CharField(max_length=100)
    content = models.TextField(blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "file_name"], name="sandbox_file_unique"),
        ]


class SandboxImport(models.Model):
    """Another team's submission imported into a sandbox, credited on the next submit."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="sandbox_imports")
    source = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "source"], name="sandbox_import_unique"),
        ]


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="profile")
    affiliation = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(max_length=64, blank=True,
                                 help_text="IANA name, e.g. Europe/Paris (empty: the browser's)")
    notify_submissions = models.BooleanField(
        default=True, help_text="an e-mail when a submission of one's team is scored or fails")

    def __str__(self) -> str:
        return f"profile of {self.user}"


class Announcement(models.Model):
    """A message from an event's admins to its participants: on the event's
    page, and e-mailed to the members of its teams."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="announcements")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                               related_name="+")
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown")
    n_mailed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subject} ({self.event.name})"


class AuditEntry(models.Model):
    """Who did what to an event: organiser actions and sign-up decisions."""

    event = models.ForeignKey(Event, null=True, on_delete=models.CASCADE,
                              related_name="audit_entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="+")
    action = models.CharField(max_length=50)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"
