"""Small template helpers for the pages."""

from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`{{ mapping|get_item:key }}`: a dict lookup with a variable key."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def pct(value, digits=1):
    """A 0–1 rate as a percentage string, '–' when unknown."""
    if value is None:
        return "–"
    return f"{100 * float(value):.{int(digits)}f} %"
