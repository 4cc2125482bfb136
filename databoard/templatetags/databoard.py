"""Template helpers: scores at their precision, durations, bytes, Markdown."""
import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

from databoard import permissions

register = template.Library()

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}


def _own_images_only(tag: str, attribute: str, value: str) -> str | None:
    # A remote image would tell another host who reads the page, and when.
    if tag == "img" and attribute == "src" and not (
            value.startswith("/") and not value.startswith("//")):
        return None
    return value


@register.filter
def organises(user) -> bool:
    """Whether the navigation links to the organiser pages."""
    return permissions.is_organiser(user)


@register.filter
def markdown(text: str) -> str:
    """Markdown rendered, then sanitised: no scripts, no event handlers, no
    ``javascript:`` links, no image from another host, whatever the organiser
    (or an attacker) wrote."""
    html = markdown_lib.markdown(text or "", extensions=["fenced_code", "tables"])
    return mark_safe(nh3.clean(html, tags=_ALLOWED_TAGS,
                               url_schemes={"http", "https", "mailto"},
                               attribute_filter=_own_images_only,
                               link_rel="noopener noreferrer nofollow"))


@register.filter
def score(value, precision=3):
    if value is None:
        return "—"
    try:
        return f"{float(value):.{int(precision)}f}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def seconds(value):
    if value is None:
        return "—"
    value = float(value)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


@register.filter
def mebibytes(value):
    if value is None:
        return "—"
    return f"{int(value) / 2**20:.0f} MiB"


@register.filter
def get(mapping, key):
    if mapping is None:
        return None
    try:
        return mapping.get(key)
    except AttributeError:
        return None
