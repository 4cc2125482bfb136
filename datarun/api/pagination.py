"""One way to page every list the API answers (and the leaderboard pages).

``?page=`` (from 1) and ``?page_size=`` (default :data:`PAGE_SIZE`, at most
:data:`MAX_PAGE_SIZE`); an answer carries ``count`` (items in all), ``page``,
``page_size``, ``pages``, ``next`` and ``previous`` (URLs, null at either
end) and the items in ``results`` (``rows`` on a leaderboard).
"""
from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from datarun.errors import ApplicationError, NotFound

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class PageRequest:
    number: int = 1
    size: int = PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def info(self, count: int) -> dict:
        """The page's place among ``count`` items; a page past the last is refused."""
        pages = max(1, -(-count // self.size))
        if self.number > pages:
            raise NotFound(f"no page {self.number}: there are {pages} of {self.size}")
        return {"count": count, "page": self.number, "page_size": self.size, "pages": pages}


def _positive(params, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise ApplicationError(f"{name} is a whole number from 1, not {raw!r}")
    return value


def page_request(params, *, default_size: int = PAGE_SIZE) -> PageRequest:
    """The page that ``params`` (a query dict) ask for."""
    size = _positive(params, "page_size", default_size)
    if size > MAX_PAGE_SIZE:
        raise ApplicationError(f"page_size is at most {MAX_PAGE_SIZE}")
    return PageRequest(number=_positive(params, "page", 1), size=size)


def with_links(request, info: dict) -> dict:
    """``info`` with the ``next`` and ``previous`` pages' URLs."""
    def url(number: int) -> str:
        params = request.GET.copy()
        params["page"] = str(number)
        return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")

    return {**info,
            "next": url(info["page"] + 1) if info["page"] < info["pages"] else None,
            "previous": url(info["page"] - 1) if info["page"] > 1 else None}


def paginate(request, items, *, default_size: int = PAGE_SIZE) -> tuple[list, dict]:
    """The requested page of ``items`` (a queryset or a list) and its
    pagination fields (links included)."""
    page = page_request(request.GET, default_size=default_size)
    count = len(items) if isinstance(items, list) else items.count()
    info = with_links(request, page.info(count))
    return list(items[page.offset:page.offset + page.size]), info


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1 (default 1)."),
    OpenApiParameter("page_size", int,
                     description=f"Items per page (default {PAGE_SIZE}, at most "
                                 f"{MAX_PAGE_SIZE})."),
]


class PageFieldsSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Items in all pages.")
    page = serializers.IntegerField(help_text="This page's number, from 1.")
    page_size = serializers.IntegerField()
    pages = serializers.IntegerField(help_text="How many pages (at least 1).")
    next = serializers.URLField(allow_null=True, help_text="The next page; null on the last.")
    previous = serializers.URLField(allow_null=True,
                                    help_text="The previous page; null on the first.")


_PAGED: dict[str, type] = {}


def paged(item_serializer: type[serializers.Serializer], name: str) -> type:
    """The documented shape of a page of ``item_serializer`` items (component ``name``)."""
    if name not in _PAGED:
        _PAGED[name] = type(name, (PageFieldsSerializer,), {
            "results": item_serializer(many=True),
            "__module__": __name__,
        })
    return _PAGED[name]
