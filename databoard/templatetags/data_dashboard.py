"""Template helpers of the data dashboard: figures and shares."""
from django import template

from databoard.charts import is_number

register = template.Library()


@register.filter
def figure(value):
    """A profile figure: numbers to 4 significant digits (integers whole), text as is."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if is_number(value):
        return f"{value:.4g}"
    return str(value)


@register.filter
def pct(share):
    """A share in [0, 1] as a percentage."""
    return "—" if share is None else f"{100 * share:.1f} %"


@register.filter
def percent(value):
    """A value already in percent."""
    return "—" if value is None else f"{value:.1f} %"
