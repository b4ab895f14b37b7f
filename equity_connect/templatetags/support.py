"""`{% support_contacts as contacts %}`: SUPPORT_CONTACTS for a template (the admin index); empty when malformed
(`check --deploy` reports that)."""

from django import template

from equity_connect.support import SupportContactsInvalid
from equity_connect.support import support_contacts as configured

register = template.Library()


@register.simple_tag
def support_contacts():
    try:
        return configured()
    except SupportContactsInvalid:
        return []
