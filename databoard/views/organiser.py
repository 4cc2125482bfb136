"""Web pages: organiser."""
urlpatterns = []
