"""Web pages: events."""
urlpatterns = []
