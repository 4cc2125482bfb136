"""Show times in the viewer's time zone: the profile's, else the browser's
(a ``tz`` cookie set by app.js), else UTC. Stored times stay UTC."""
import zoneinfo
from urllib.parse import unquote

from django.utils import timezone


def _zone(name: str | None):
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class ViewerTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        profile_tz = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            profile = getattr(user, "profile", None) if hasattr(user, "profile") else None
            profile_tz = profile.time_zone if profile else None
        zone, source = _zone(profile_tz), "from your profile"
        if zone is None:
            # app.js URL-encodes the name (Europe%2FParis); Django does not decode cookies.
            zone, source = _zone(unquote(request.COOKIES.get("tz", ""))), "from your browser"
        if zone is None:
            source = "the default"
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        request.viewer_time_zone = str(zone) if zone else "UTC"
        request.viewer_time_zone_source = source
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def viewer_time_zone(request):
    """Template context: the zone times are shown in."""
    return {"viewer_time_zone": getattr(request, "viewer_time_zone", "UTC"),
            "viewer_time_zone_source": getattr(request, "viewer_time_zone_source",
                                               "the default")}
