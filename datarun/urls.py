from django.contrib import admin
from django.urls import include, path, re_path
from rest_framework.authtoken.views import obtain_auth_token

from databoard import api
from datarun.api.errors import not_found_json

api_v1 = [
    path("health/", api.HealthApi.as_view(), name="health"),
    path("auth/token/", obtain_auth_token, name="token"),
    path("events/", api.EventListApi.as_view(), name="events"),
    path("events/<slug:name>/", api.EventDetailApi.as_view(), name="event"),
    path("events/<slug:name>/signup/", api.EventSignupApi.as_view(), name="event-signup"),
    path("events/<slug:name>/submissions/", api.SubmissionCreateApi.as_view(),
         name="submission-create"),
    path("events/<slug:name>/leaderboard/", api.LeaderboardApi.as_view(), name="leaderboard"),
    path("submissions/", api.SubmissionListApi.as_view(), name="submissions"),
    path("submissions/<int:pk>/", api.SubmissionDetailApi.as_view(), name="submission"),
    # Unknown API URLs answer in the API's JSON error shape, not an HTML page.
    re_path(r"^.*$", not_found_json),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]
