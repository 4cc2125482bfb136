"""A user error (ApplicationError) raised by a page becomes a page with its
message and its 4xx status, the same for every area of the site."""
import functools

from django.shortcuts import render

from datarun.errors import ApplicationError


def error_page(request, exc: ApplicationError):
    return render(request, "databoard/error.html", {"error": exc}, status=exc.status_code)


def shows_errors(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ApplicationError as exc:
            return error_page(request, exc)
    return wrapped
