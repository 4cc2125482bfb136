"""The web pages. Each views module owns its own URL list."""
from django.urls import include, path

from databoard.views import accounts, boards, data, events, organiser, pools, runs, teams

urlpatterns = [
    path("accounts/", include(accounts.urlpatterns)),
    path("", include(events.urlpatterns)),
    path("", include(teams.urlpatterns)),
    path("", include(boards.urlpatterns)),
    path("", include(organiser.urlpatterns)),
    path("", include(pools.urlpatterns)),
    path("", include(data.urlpatterns)),
    path("", include(runs.urlpatterns)),
]
