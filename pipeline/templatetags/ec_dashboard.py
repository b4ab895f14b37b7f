"""The dashboard's number formats for templates: `ec_number` (12,345; an en dash for none), `ec_percent`
(12.3%), `ec_times` (1.25 times the first week's value)."""

from django import template

from pipeline.monitoring.charts import number, percent

register = template.Library()


@register.filter
def ec_number(value):
    return number(value)


@register.filter
def ec_percent(value):
    return percent(value)


@register.filter
def ec_times(value):
    return "\u2013" if value is None else f"{value:.2f}\u00d7"
