"""Web pages: boards."""
urlpatterns = []
