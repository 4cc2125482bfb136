"""Conditional GETs for pages and API answers that are polled: an ETag and a
Last-Modified, and a 304 without a body when the client's copy is current."""
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, quote_etag


def not_modified(request, *, etag: str, last_modified):
    """A 304 answer when the client's copy (If-None-Match, else
    If-Modified-Since) is current; None when the answer must be built."""
    response = get_conditional_response(
        request, etag=quote_etag(etag), last_modified=int(last_modified.timestamp()))
    return _validated(response, etag, last_modified) if response is not None else None


def _validated(response, etag: str, last_modified):
    response["ETag"] = quote_etag(etag)
    response["Last-Modified"] = http_date(last_modified.timestamp())
    # Each viewer's copy is their own (rights, team), and is checked every time.
    response["Cache-Control"] = "private, no-cache"
    response["Vary"] = "Cookie, Authorization"
    return response


def with_validators(response, *, etag: str, last_modified):
    return _validated(response, etag, last_modified)
