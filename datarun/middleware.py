"""Requests refused before any view sees them, and headers every answer gets."""
from django.conf import settings
from django.http import HttpResponseBadRequest

from datarun.api.errors import error_json


class RefuseNulCharactersMiddleware:
    """A NUL character in the URL path or query string is a 400.

    No name, slug or filter of the platform can contain one, and PostgreSQL
    refuses it in any text it is asked to compare (a ``DataError``, so a 500),
    so it is turned away here once rather than in every view that reads a
    path segment or a query parameter. Form and JSON fields are checked by
    their own CharFields, which refuse NUL too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            message = "a NUL character is not allowed in a URL"
            if request.path.startswith("/api/"):
                return error_json("invalid", message, 400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Sends ``settings.CONTENT_SECURITY_POLICY`` with every answer. With DEBUG
    on, browsers only report breaches: Django's debug pages are inline styles
    and scripts."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        header = ("Content-Security-Policy-Report-Only" if settings.DEBUG
                  else "Content-Security-Policy")
        response.headers.setdefault(header, settings.CONTENT_SECURITY_POLICY)
        return response
