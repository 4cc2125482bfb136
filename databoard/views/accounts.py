"""Web pages: accounts."""
urlpatterns = []
