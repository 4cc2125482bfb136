"""Web pages: teams."""
urlpatterns = []
