"""The shapes of the participant API's requests and answers, for its OpenAPI
description (``/api/schema/``).

The views in :mod:`databoard.api` build their answers as plain data; these
serializers describe that data and are never used to render it. The tests in
``tests/datarun/test_openapi.py`` check that real answers have the keys
described here.
"""
from rest_framework import serializers

from databoard.leaderboard_selectors import LEADERBOARDS
from datarun.api.pagination import PageFieldsSerializer
from datarun.api.schema import (
    EvaluationDetailSerializer,
    EvaluationStateSerializer,
    ScoreTypeSerializer,
    ScoreValuesSerializer,
    UploadField,
    scores_field,
)


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(["ok", "error"],
                                     help_text='"ok" when the database answers.')
    database = serializers.CharField(required=False,
                                     help_text="Database vendor, e.g. postgresql (signed in).")
    broker = serializers.CharField(required=False,
                                   help_text="Task broker transport, e.g. redis (signed in).")
    sandbox = serializers.CharField(required=False,
                                    help_text="Sandbox backend: local or docker (signed in).")


# --- teams ---------------------------------------------------------------------------

class TeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    approved = serializers.BooleanField(help_text="false while the sign-up awaits approval")
    members = serializers.ListField(child=serializers.CharField(), help_text="User names.")
    selected_submission = serializers.IntegerField(
        allow_null=True, help_text="The submission put forward for the competition "
                                   "leaderboard (null: the team's best public score).")


class RankPointSerializer(serializers.Serializer):
    t = serializers.DateTimeField(help_text="When the submission that changed it was made.")
    rank = serializers.IntegerField(help_text="The team's place, 1 the best.")
    teams = serializers.IntegerField(help_text="Teams with a score then.")
    best = serializers.FloatField(allow_null=True, help_text="The team's best score then.")
    best_submission = serializers.CharField()


class TeamSubmissionScoreSerializer(serializers.Serializer):
    t = serializers.DateTimeField()
    submission = serializers.CharField()
    value = serializers.FloatField(allow_null=True)


class TeamHistorySerializer(serializers.Serializer):
    event = serializers.CharField()
    team = serializers.CharField()
    kind = serializers.CharField(help_text="bagged or mean: the event's leaderboard kind.")
    score = serializers.DictField(allow_null=True, help_text="The official score type "
                                  "(name, precision, is_lower_the_better).")
    points = RankPointSerializer(many=True, help_text="One per change of rank or best score.")
    submissions = TeamSubmissionScoreSerializer(many=True)


class SignupSerializer(serializers.Serializer):
    event = serializers.CharField()
    team = serializers.CharField(help_text="Your team in the event.")
    approved = serializers.BooleanField(
        help_text="false when an event admin must approve the sign-up first")


class TeamRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="The team's new name.")


class TeamInviteSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="Who to invite into your team.")


class InvitationCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.CharField()
    user = serializers.CharField(help_text="The invited user's name.")


class InvitationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    team = serializers.CharField()
    invited_by = serializers.CharField()
    created_at = serializers.DateTimeField()


# --- events --------------------------------------------------------------------------

class EventRulesSerializer(serializers.Serializer):
    min_submission_interval_s = serializers.IntegerField(
        help_text="Seconds a team waits between two submissions (0: none).")
    max_submissions_per_day = serializers.IntegerField(
        allow_null=True, help_text="Per team in any 24 hours (null: no quota).")
    is_competitive = serializers.BooleanField(
        help_text="Teams select one submission for the competition leaderboard.")
    leaderboard_kind = serializers.CharField(help_text="bagged or mean: what ranks by default.")
    signup_requires_approval = serializers.BooleanField()
    max_team_size = serializers.IntegerField()


# --- submissions ---------------------------------------------------------------------

class SubmissionUploadSerializer(serializers.Serializer):
    """A submission's files: one ``files`` field each, or all in one zip ``archive``."""

    name = serializers.CharField(
        max_length=100, help_text="1-100 letters, digits, '_', '-' or '.'; unique in your team.")
    files = serializers.ListField(
        child=UploadField(), required=False,
        help_text="One field per file, named as the problem expects (e.g. estimator.py).")
    archive = UploadField(
        required=False, help_text="Instead of files: one zip with the files at its top level "
                                  "or in one folder.")


class SubmissionSerializer(EvaluationStateSerializer):
    """A submission and the state and scores of its current evaluation."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    event = serializers.CharField()
    team = serializers.CharField()
    submitted_by = serializers.CharField()
    submitted_at = serializers.DateTimeField()
    scores = scores_field()
    evaluation_id = serializers.IntegerField(help_text="The evaluation shown (the latest run).")
    previous_evaluation_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Earlier evaluations (before re-runs).")
    contributivity = serializers.FloatField(
        allow_null=True, help_text="Share of the event's best ensemble it contributes.")


class SubmissionDetailSerializer(SubmissionSerializer, EvaluationDetailSerializer):
    """A submission with its folds, limits and files."""

    queue_position = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="Only while queued: fold runs of other submissions ahead of this one.")


class SubmissionCodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    team = serializers.CharField()
    files = serializers.DictField(child=serializers.CharField(),
                                  help_text="File name -> its text.")


class SubmissionSelectedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    selected = serializers.BooleanField()


class RerunFailedSerializer(serializers.Serializer):
    rerun = serializers.ListField(child=serializers.IntegerField(),
                                  help_text="The submissions queued again.")


# --- leaderboards --------------------------------------------------------------------

class RankedScoreValuesSerializer(ScoreValuesSerializer):
    """Scores of one step; an empty object when the submission has none."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
        return fields


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    submission_id = serializers.IntegerField()
    submission = serializers.CharField(help_text="The submission's name.")
    team = serializers.CharField()
    team_id = serializers.IntegerField()
    submitted_at = serializers.DateTimeField()
    scores = serializers.DictField(
        child=serializers.DictField(child=RankedScoreValuesSerializer()),
        help_text="Score type name -> step (valid; test where shown) -> scores.")
    train_time = serializers.FloatField(allow_null=True)
    valid_time = serializers.FloatField(allow_null=True)
    test_time = serializers.FloatField(allow_null=True, help_text="null unless test scores "
                                                                  "are shown.")
    cpu_time = serializers.FloatField(allow_null=True)
    peak_memory = serializers.IntegerField(allow_null=True)
    contributivity = serializers.FloatField(allow_null=True)
    public_rank = serializers.IntegerField(
        required=False, help_text="Competition board only: the rank by the public score.")
    rank_change = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="Competition board only: public rank minus final rank, once the event "
                  "has closed (null before).")


class MyTeamPlaceSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Your team's name.")
    rank = serializers.IntegerField(help_text="Its best rank on this board.")
    page = serializers.IntegerField(help_text="The page that row is on (at this page_size).")


class LeaderboardSerializer(PageFieldsSerializer):
    event = serializers.CharField()
    board = serializers.ChoiceField(choices=LEADERBOARDS)
    kind = serializers.CharField(help_text="bagged or mean: the scores that rank.")
    score_types = ScoreTypeSerializer(many=True)
    test_scores_shown = serializers.BooleanField(
        help_text="Whether test scores are in the rows (event admins; everyone once the "
                  "event has closed).")
    my_team = MyTeamPlaceSerializer(
        allow_null=True, help_text="Where your team's best row is; null when you are in no "
                                   "team or it has none on this board.")
    rows = LeaderboardRowSerializer(many=True, help_text="This page's rows, best first.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")
