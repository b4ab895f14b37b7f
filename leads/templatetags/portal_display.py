"""Template filters of the broker portal (leads/display.py does the work): `{{ lead.phone|phone }}`,
`{{ lead.property_address|title_caps }}`, `{{ lead.property_value|money }}`, `{% when event.created_at %}`."""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.html import format_html

from .. import display

register = template.Library()


@register.filter
def phone(value):
    return display.phone_national(value)


@register.filter
def title_caps(value):
    return display.title_if_shouting(value)


@register.filter
def money(value):
    return display.money(value)


@register.filter
def local_time(value):
    """The time in the current zone (the broker's: the portal activates it for each request)."""
    return display.absolute_time(value, timezone.get_current_timezone())


@register.simple_tag
def when(value, relative_first=False):
    """`<time>` with the absolute time in the broker's zone and the relative one ("3 hours ago"); the other
    one is in its title."""
    absolute = display.absolute_time(value, timezone.get_current_timezone())
    if not absolute:
        return "—"
    relative = display.relative_time(value)
    moment = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if relative_first:
        return format_html('<time datetime="{}" title="{}">{}</time>', moment, absolute, relative)
    return format_html(
        '<time datetime="{}" title="{}">{}</time> <span class="muted">({})</span>',
        moment,
        relative,
        absolute,
        relative,
    )


@register.filter
def number(value):
    """`12345` -> `12,345`."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value
