"""The participant-facing REST API (``/api/v1/``): thin views over services."""
import logging

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import DatabaseError, connection
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from databoard import api_schema as shapes
from databoard import conditional, permissions, rank_history, selectors, services
from databoard import leaderboard_selectors as leaderboards
from databoard.models import Event, Submission, Team
from databoard.services import accounts
from datarun import selectors as datarun_selectors
from datarun import services as datarun_services
from datarun import submission_files
from datarun.api import idempotency
from datarun.api.pagination import PAGE_PARAMETERS, page_request, paged, paginate, with_links
from datarun.api.schema import (
    ErrorSerializer,
    LimitsSerializer,
    ProblemSummarySerializer,
    error_responses,
)
from datarun.api.uploads import SubmissionUploadParser
from datarun.errors import ApplicationError, InvalidSubmission, NotFound, PermissionDenied

logger = logging.getLogger(__name__)


class HealthApi(APIView):
    """Anonymous callers (load balancers, health checks) learn only whether the
    platform is up; what it runs on is for signed-in users."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="health", tags=["health"], summary="Is the platform up?",
                   description="`ok` once the database answers, else 503 with `error`; "
                               "signed-in users also see the database, broker and sandbox.",
                   responses={200: shapes.HealthSerializer,
                              503: OpenApiResponse(shapes.HealthSerializer,
                                                   description="The database does not answer.")})
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            logger.exception("health check: the database does not answer")
            return Response({"status": "error"}, status=503)
        if not request.user.is_authenticated:
            return Response({"status": "ok"})
        return Response({"status": "ok", "database": connection.vendor,
                         "broker": settings.CELERY_BROKER_URL.split("://")[0],
                         "sandbox": settings.DATARUN_SANDBOX})


class TokenApi(ObtainAuthToken):
    """DRF's token view, with the answers it really gives documented."""

    @extend_schema(operation_id="auth_token", tags=["auth"],
                   summary="Get your API token",
                   description="From your username and password; the same token each time "
                               "until you revoke it on your profile page or change your password.",
                   request=AuthTokenSerializer,
                   responses={200: shapes.TokenSerializer, **error_responses(400),
                              429: OpenApiResponse(ErrorSerializer, description=(
                                  "Too many failed logins for this account or from this "
                                  "address: locked out for a while."))},
                   parameters=[OpenApiParameter(
                       "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429],
                       description="Seconds until failed logins of this account or from "
                                   "this address are forgiven.")])
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token = accounts.api_token_create(user=user)
        # A login like the page's: axes forgives the failures before it, and
        # last_login is kept.
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        return Response({"token": token.key})

    def get_serializer_context(self):
        # Django's request, not DRF's wrapper: django-axes marks a locked-out
        # attempt on the request its middleware sees (databoard.throttling).
        return {**super().get_serializer_context(), "request": self.request._request}


def _validated(serializer_class, request) -> dict:
    """The request body checked by its input serializer: a body that is not a
    JSON object, a missing field or a NUL character is a 400, not a crash."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class EventListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="EventSummary")
    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Event
            fields = ["name", "title", "problem_name", "opens_at", "public_opens_at",
                      "closes_at"]

    @extend_schema(operation_id="events_list", tags=["events"], summary="List events",
                   description="The events you may see (public ones, and private ones you "
                               "are in or administer), a page at a time.",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paged(OutputSerializer, "PagedEventSummaryList"),
                              **error_responses(400, 404)})
    def get(self, request):
        events = [e for e in Event.objects.all() if permissions.can_view_event(e, request.user)]
        page, info = paginate(request, events)
        return Response({**info, "results": self.OutputSerializer(page, many=True).data})


def _event_out(event: Event, user) -> dict:
    data = EventListApi.OutputSerializer(event).data
    data["description"] = event.description
    data["problem"] = datarun_selectors.problem_summary(event.problem_name)
    data["limits"] = services.event_fold_limits(event)
    data["rules"] = {
        "min_submission_interval_s": event.min_submission_interval_s,
        "max_submissions_per_day": event.max_submissions_per_day,
        "is_competitive": event.is_competitive,
        "leaderboard_kind": event.leaderboard_kind,
        "signup_requires_approval": event.signup_requires_approval,
        "max_team_size": event.max_team_size,
    }
    team = services.team_of(event=event, user=user)
    data["my_team"] = _team_out(team) if team else None
    data["is_admin"] = event.is_admin(user)
    return data


class EventDetailApi(APIView):
    """``GET``: the event, its problem, rules and limits. ``PATCH`` (event
    admins): change rules, dates and limits."""

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="EventUpdate")
    class UpdateSerializer(serializers.ModelSerializer):
        class Meta:
            model = Event
            fields = list(services.events.EDITABLE_FIELDS)
            extra_kwargs = {f: {"required": False} for f in fields}

    @extend_schema_serializer(component_name="Event")
    class OutputSerializer(EventListApi.OutputSerializer):
        """Documents :func:`_event_out`."""

        problem = ProblemSummarySerializer(allow_null=True)
        limits = LimitsSerializer(help_text="Per-fold limits of this event's submissions.")
        rules = shapes.EventRulesSerializer()
        my_team = shapes.TeamSerializer(allow_null=True, help_text="null: in no team")
        is_admin = serializers.BooleanField(help_text="Whether you administer the event.")

        class Meta(EventListApi.OutputSerializer.Meta):
            fields = [*EventListApi.OutputSerializer.Meta.fields, "description", "problem",
                      "limits", "rules", "my_team", "is_admin"]

    @extend_schema(operation_id="event_get", tags=["events"], summary="An event",
                   description="The event, its problem, rules and limits, and your team.",
                   responses={200: OutputSerializer, **error_responses(404)})
    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        return Response(_event_out(event, request.user))

    @extend_schema(operation_id="event_update", tags=["events"], summary="Change an event",
                   description="Event admins: change rules, dates and limits (only the fields "
                               "sent).",
                   request=UpdateSerializer,
                   responses={200: OutputSerializer, **error_responses(400, 403, 404)})
    def patch(self, request, name):
        event = services.event_get(name=name, user=request.user)
        serializer = self.UpdateSerializer(event, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        event = services.event_update(event=event, user=request.user,
                                      **serializer.validated_data)
        return Response(_event_out(event, request.user))


def _team_out(team: Team) -> dict:
    memberships = team.memberships.all()
    if not hasattr(team, "_prefetched_objects_cache"):
        memberships = memberships.select_related("user")
    return {"id": team.id, "name": team.name, "approved": team.approved,
            "members": [m.user.username for m in memberships],
            "selected_submission": team.selected_submission_id}


class EventSignupApi(APIView):
    @extend_schema(operation_id="event_signup", tags=["teams"], summary="Sign up to an event",
                   description="Creates your one-person team in the event; it may await an "
                               "event admin's approval.",
                   request=None,
                   responses={201: shapes.SignupSerializer, **error_responses(401, 404)})
    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        team = services.event_signup(event=event, user=request.user)
        return Response({"event": event.name, "team": team.name,
                         "approved": team.approved}, status=201)


class MyTeamApi(APIView):
    """``GET`` your team in the event; ``PATCH {"name": ...}`` renames it."""

    @extend_schema(operation_id="team_get", tags=["teams"], summary="Your team in an event",
                   responses={200: shapes.TeamSerializer, **error_responses(401, 404)})
    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        team = services.team_of(event=event, user=request.user)
        if team is None:
            raise NotFound(f"you are in no team in {event.name}")
        return Response(_team_out(team))

    @extend_schema(operation_id="team_rename", tags=["teams"], summary="Rename your team",
                   request=shapes.TeamRenameSerializer,
                   responses={200: shapes.TeamSerializer, **error_responses(400, 401, 403, 404)})
    def patch(self, request, name):
        event = services.event_get(name=name, user=request.user)
        team = services.team_of(event=event, user=request.user)
        if team is None:
            raise NotFound(f"you are in no team in {event.name}")
        team = services.team_rename(team=team, user=request.user,
                                    name=_validated(shapes.TeamRenameSerializer, request)["name"])
        return Response(_team_out(team))


class MyTeamHistoryApi(APIView):
    @extend_schema(
        operation_id="team_history", tags=["teams"],
        summary="Your team's rank and best score over time",
        description="Teams ranked by their best public (validation) score so far, ties to "
                    "the earlier; one point each time your team's rank, its best score or "
                    "the number of ranked teams changed, in submission order.",
        responses={200: shapes.TeamHistorySerializer, **error_responses(401, 404)})
    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        team = services.team_of(event=event, user=request.user)
        if team is None:
            raise NotFound(f"you are in no team in {event.name}")
        return Response(rank_history.team_rank_history(event=event, team=team))


class TeamInviteApi(APIView):
    @extend_schema(operation_id="team_invite", tags=["teams"],
                   summary="Invite a user into your team",
                   request=shapes.TeamInviteSerializer,
                   responses={201: shapes.InvitationCreatedSerializer,
                              **error_responses(400, 401, 403, 404)})
    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        team = services.team_get(event=event, user=request.user)
        username = _validated(shapes.TeamInviteSerializer, request)["username"]
        invitation = services.team_invite(team=team, user=request.user, username=username)
        return Response({"id": invitation.id, "team": team.name,
                         "user": invitation.user.username}, status=201)


class TeamLeaveApi(APIView):
    @extend_schema(operation_id="team_leave", tags=["teams"], summary="Leave your team",
                   request=None,
                   responses={204: OpenApiResponse(description="You left the team."),
                              **error_responses(400, 401, 404)})
    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        services.team_leave(event=event, user=request.user)
        return Response(status=204)


class InvitationListApi(APIView):
    @extend_schema(operation_id="invitations_list", tags=["teams"],
                   summary="Invitations into a team, for you", parameters=PAGE_PARAMETERS,
                   responses={200: paged(shapes.InvitationSerializer, "PagedInvitationList"),
                              **error_responses(400, 401, 404)})
    def get(self, request):
        invitations, info = paginate(request, request.user.team_invitations.select_related(
            "team__event", "invited_by").order_by("-created_at", "-id"))
        return Response({**info, "results": [
            {"id": i.id, "event": i.team.event.name, "team": i.team.name,
             "invited_by": i.invited_by.username, "created_at": i.created_at}
            for i in invitations]})


class InvitationAcceptApi(APIView):
    @extend_schema(operation_id="invitation_accept", tags=["teams"],
                   summary="Accept an invitation", description="You join the team.",
                   request=None,
                   responses={200: shapes.TeamSerializer, **error_responses(400, 401, 404)})
    def post(self, request, pk):
        team = services.invitation_accept(invitation_id=pk, user=request.user)
        return Response(_team_out(team))


class InvitationDeclineApi(APIView):
    @extend_schema(operation_id="invitation_decline", tags=["teams"],
                   summary="Decline an invitation", request=None,
                   responses={204: OpenApiResponse(description="The invitation is gone."),
                              **error_responses(401, 404)})
    def post(self, request, pk):
        services.invitation_decline(invitation_id=pk, user=request.user)
        return Response(status=204)


class EventTeamsApi(APIView):
    """Event admins: every team and its sign-up state."""

    @extend_schema(operation_id="event_teams_list", tags=["teams"],
                   summary="Every team of an event", parameters=PAGE_PARAMETERS,
                   responses={200: paged(shapes.TeamSerializer, "PagedTeamList"),
                              **error_responses(400, 401, 403, 404)})
    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        if not event.is_admin(request.user):
            raise PermissionDenied(f"only an admin of {event.name} lists its teams")
        teams, info = paginate(request, event.teams.order_by("name").prefetch_related(
            "memberships__user"))
        return Response({**info, "results": [_team_out(t) for t in teams]})


class TeamApproveApi(APIView):
    @extend_schema(operation_id="team_approve", tags=["teams"], summary="Approve a sign-up",
                   description="Event admins: the team may submit from now on.", request=None,
                   responses={200: shapes.TeamSerializer, **error_responses(401, 403, 404)})
    def post(self, request, pk):
        return Response(_team_out(services.signup_approve(team_id=pk, user=request.user)))


class TeamRejectApi(APIView):
    @extend_schema(operation_id="team_reject", tags=["teams"], summary="Reject a sign-up",
                   description="Event admins: the pending team is removed.", request=None,
                   responses={204: OpenApiResponse(description="The team is removed."),
                              **error_responses(400, 401, 403, 404)})
    def post(self, request, pk):
        services.signup_reject(team_id=pk, user=request.user)
        return Response(status=204)


def _submission_out(submission: Submission, evaluation: dict, user) -> dict:
    evaluation = selectors.evaluation_as_seen_by(evaluation, event=submission.team.event,
                                               user=user)
    return {
        "id": submission.id, "name": submission.name,
        "event": submission.team.event.name, "team": submission.team.name,
        "submitted_by": submission.submitted_by.username,
        "submitted_at": submission.created_at,
        **{k: v for k, v in evaluation.items() if k not in ("id", "created_at")},
        "evaluation_id": submission.evaluation_id,
        "previous_evaluation_ids": submission.previous_evaluation_ids,
        "contributivity": submission.contributivity,
    }


class SubmissionCreateApi(APIView):
    """Submit to an event: ``multipart/form-data`` with a ``name`` and the files.

    The files come either one per ``files`` field (e.g. ``-F files=@estimator.py``)
    or all in one zip archive in an ``archive`` field, at its top level or in
    one folder. Unsafe or unexpected names, oversize files and hostile archives
    are refused with a 400 naming the file and the reason; nothing is stored.
    """

    parser_classes = [SubmissionUploadParser]

    @extend_schema(
        operation_id="submission_create", tags=["submissions"], summary="Submit",
        request={"multipart/form-data": shapes.SubmissionUploadSerializer},
        responses={201: shapes.SubmissionDetailSerializer,
                   **error_responses(400, 401, 403, 404, 422, 429, 503)},
        parameters=[OpenApiParameter(
            "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429],
            description="Seconds until the event's rules accept a submission again."),
            idempotency.PARAMETER])
    @idempotency.idempotent_create
    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        files = _submitted_files(request, problem_name=event.problem_name)
        submission = services.submission_create(
            event=event, user=request.user, name=request.data.get("name", ""), files=files
        )
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        return Response(_submission_out(submission, detail, request.user), status=201)


def _submitted_files(request, *, problem_name: str) -> dict[str, bytes]:
    uploads = request.FILES.getlist("files")
    archives = request.FILES.getlist("archive")
    if uploads and archives:
        raise InvalidSubmission("send the files either in 'files' fields or in one zip "
                                "'archive', not both")
    if len(archives) > 1:
        raise InvalidSubmission(f"send one zip archive, not {len(archives)}")
    if archives:
        archive = archives[0]
        # Checked before reading: an upload over the limit was never kept.
        submission_files.check_archive_size(archive.name, archive.size)
        return submission_files.files_from_zip(archive.name, archive.read())
    if not uploads:
        expected = submission_files.expected_file_names(
            datarun_services.problem_get(problem_name).workflow_elements)
        raise InvalidSubmission(
            f"this problem needs the files {', '.join(expected)}: upload each as a "
            f"multipart file field named 'files' (with curl: -F files=@{expected[0]}), "
            "or all of them in one zip archive in a field named 'archive'"
        )
    names = set()
    for upload in uploads:
        submission_files.check_file_name(upload.name)
        submission_files.check_file_size(upload.name, upload.size)
        if upload.name in names:
            raise InvalidSubmission(f"{upload.name} was uploaded twice")
        names.add(upload.name)
    submission_files.check_total_size(sum(upload.size for upload in uploads))
    return {upload.name: upload.read() for upload in uploads}


class SubmissionListApi(APIView):
    @extend_schema(operation_id="submissions_list", tags=["submissions"],
                   summary="Your submissions",
                   description="Every submission of your teams, in every event, with its "
                               "state and scores, newest first, a page at a time.",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paged(shapes.SubmissionSerializer, "PagedSubmissionList"),
                              **error_responses(400, 401, 404)})
    def get(self, request):
        submissions, info = paginate(request, selectors.submissions_of_user(
            user=request.user).order_by("-created_at", "-id"))
        summaries = datarun_selectors.evaluation_summaries(
            [s.evaluation_id for s in submissions]
        )
        return Response({**info, "results": [
            _submission_out(s, summaries[s.evaluation_id], request.user) for s in submissions]})


class SubmissionDetailApi(APIView):
    @extend_schema(operation_id="submission_get", tags=["submissions"], summary="A submission",
                   description="Its state, each fold's state, scores and errors, and its "
                               "place in the queue while queued. Your team's, or any as an "
                               "event admin.",
                   responses={200: shapes.SubmissionDetailSerializer,
                              **error_responses(401, 404)})
    def get(self, request, pk):
        submission = services.submission_get(submission_id=pk, user=request.user)
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        out = _submission_out(submission, detail, request.user)
        if detail["state"] == "queued":
            out["queue_position"] = datarun_selectors.queue_positions(
                [submission.evaluation_id]).get(submission.evaluation_id)
        return Response(out)


class SubmissionSelectApi(APIView):
    @extend_schema(operation_id="submission_select", tags=["submissions"],
                   summary="Select for the competition leaderboard",
                   description="Competitive events, until they close: the submission your "
                               "team puts forward.",
                   request=None,
                   responses={200: shapes.SubmissionSelectedSerializer,
                              **error_responses(400, 401, 404)})
    def post(self, request, pk):
        submission = services.submission_select(submission_id=pk, user=request.user)
        return Response({"id": submission.id, "selected": True})


class SubmissionRerunApi(APIView):
    @extend_schema(operation_id="submission_rerun", tags=["submissions"],
                   summary="Run a submission again",
                   description="Event admins: a new evaluation of the same files; the old "
                               "one is kept in previous_evaluation_ids.",
                   request=None,
                   responses={202: shapes.SubmissionDetailSerializer,
                              **error_responses(400, 401, 403, 404, 409)})
    def post(self, request, pk):
        submission = services.submission_rerun(submission_id=pk, user=request.user)
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        return Response(_submission_out(submission, detail, request.user), status=202)


class SubmissionCancelApi(APIView):
    @extend_schema(operation_id="submission_cancel", tags=["submissions"],
                   summary="Cancel a submission",
                   description="Event admins: stops a submission that has not finished; "
                               "it does not count against the team.",
                   request=None,
                   responses={200: shapes.SubmissionDetailSerializer,
                              **error_responses(401, 403, 404, 409)})
    def post(self, request, pk):
        submission = services.submission_cancel(submission_id=pk, user=request.user)
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        return Response(_submission_out(submission, detail, request.user))


class EventRerunFailedApi(APIView):
    @extend_schema(operation_id="event_rerun_failed", tags=["submissions"],
                   summary="Run every failed submission again",
                   description="Event admins: the event's submissions that failed are "
                               "queued again.",
                   request=None,
                   responses={202: shapes.RerunFailedSerializer,
                              **error_responses(401, 403, 404)})
    def post(self, request, name):
        event = services.event_get(name=name, user=request.user)
        rerun = services.submissions_rerun_failed(event=event, user=request.user)
        return Response({"rerun": [s.id for s in rerun]}, status=202)


class EventPoolApi(APIView):
    @extend_schema_serializer(component_name="EventPoolInput")
    class InputSerializer(serializers.Serializer):
        pool = serializers.SlugField(allow_null=True,
                                     help_text="A compute pool's name; null: the built-in pool.")
        fold_gpus = serializers.IntegerField(
            min_value=0, max_value=64, required=False, allow_null=True,
            help_text="GPUs each fold needs (runners offering fewer never get its folds).")

    @extend_schema_serializer(component_name="EventPool")
    class OutputSerializer(serializers.Serializer):
        pool = serializers.CharField(allow_null=True)
        fold_gpus = serializers.IntegerField(allow_null=True)

    @extend_schema(operation_id="event_pool_set", tags=["events"],
                   summary="Run the event's folds on a compute pool",
                   description="Superusers: new submissions of the event run on this pool's "
                               "runners (null: the platform's own workers).",
                   request=InputSerializer,
                   responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)})
    def put(self, request, name):
        event = services.event_get(name=name, user=request.user)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = services.event_assign_pool(event=event, user=request.user,
                                           pool_name=body.validated_data["pool"],
                                           fold_gpus=body.validated_data.get("fold_gpus"))
        return Response({"pool": event.pool.name if event.pool_id else None,
                         "fold_gpus": event.fold_gpus})


class LeaderboardApi(APIView):
    """``?board=public|private|competition``, ``?kind=bagged|mean``, pages, ``?team=``
    and ``?search=``; an ETag and Last-Modified, and a 304 when nothing changed."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="leaderboard_get", tags=["leaderboards"], summary="An event's leaderboard",
        description="Scored submissions ranked by the official score, a page at a time; a "
                    "missing score ranks last. Test scores are shown to event admins, and to "
                    "everyone once the event has closed. Send the ETag you got in "
                    "`If-None-Match` to get a 304 without a body while nothing changed.",
        parameters=[
            OpenApiParameter(
                "board", str, enum=list(leaderboards.LEADERBOARDS), default="public",
                description="public: by validation score; private: by test score (event "
                            "admins, everyone once closed); competition: each team's selected "
                            "submission."),
            OpenApiParameter("kind", str, enum=Event.LeaderboardKind.values,
                             description="The scores that rank (default: the event's)."),
            *PAGE_PARAMETERS,
            OpenApiParameter("team", str, description="Only this team's rows (its name), "
                                                      "with their ranks on the whole board."),
            OpenApiParameter("search", str, description="Only rows whose team or submission "
                                                        "name contains this (any case)."),
        ],
        responses={200: shapes.LeaderboardSerializer,
                   304: OpenApiResponse(description="Not modified since the ETag sent."),
                   **error_responses(400, 403, 404)})
    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        board, kind = leaderboard_board_and_kind(request.query_params, event)
        page = page_request(request.query_params)
        etag = leaderboards.leaderboard_version(event=event, user=request.user,
                                                query=request.GET.urlencode())
        if unchanged := conditional.not_modified(request, etag=etag,
                                                 last_modified=event.leaderboard_changed_at):
            return unchanged
        data = leaderboards.leaderboard_rows(
            event=event, user=request.user, kind=kind, board=board, page=page,
            team=request.query_params.get("team", "").strip(),
            search=request.query_params.get("search", "").strip())
        return conditional.with_validators(Response(with_links(request, data)), etag=etag,
                                           last_modified=event.leaderboard_changed_at)


class LeaderboardCsvApi(APIView):
    """The whole board as CSV (``?board=``, ``?kind=`` as for the JSON board)."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="leaderboard_csv", tags=["leaderboards"],
        summary="An event's leaderboard as CSV, for grading",
        description="Every ranked row of the board (not paginated): rank, team, its members, "
                    "submission, submitted_at, each score as the board shows it, times and "
                    "contributivity. The same permissions as the leaderboard.",
        parameters=[OpenApiParameter("board", str, enum=list(leaderboards.LEADERBOARDS),
                                     default="public"),
                    OpenApiParameter("kind", str, enum=Event.LeaderboardKind.values)],
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 403, 404)})
    def get(self, request, name):
        event = services.event_get(name=name, user=request.user)
        board, kind = leaderboard_board_and_kind(request.query_params, event)
        text = leaderboards.leaderboard_csv(event=event, user=request.user, board=board,
                                            kind=kind)
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{leaderboards.csv_file_name(event, board)}"')
        return response


def leaderboard_board_and_kind(params, event: Event) -> tuple[str, str | None]:
    """The board and kind asked for, checked (the JSON and CSV boards, API and pages)."""
    kind = params.get("kind") or None
    if kind not in (None, *Event.LeaderboardKind.values):
        raise ApplicationError("kind must be 'bagged' or 'mean'")
    board = params.get("board") or "public"
    if board not in leaderboards.LEADERBOARDS:
        raise ApplicationError("board must be 'public', 'private' or 'competition'")
    return board, kind
