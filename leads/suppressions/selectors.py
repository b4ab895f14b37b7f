"""Reads of the suppression list."""

from __future__ import annotations

from django.db import connection

from .models import Suppression
from .rules import SuppressionKind
from .services import suppression_indexes, suppression_value_clean
from .sql import BOUND_FOR_CHANNEL


def leads_bound_for(*, lead_ids: list, channel: str) -> set:
    """The leads (of `lead_ids`) that an active entry or the DNC registry binds for `channel` right now, read
    from the list itself (not from the leads' marks): the feeder's check at send time."""
    if not lead_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(BOUND_FOR_CHANNEL, {"ids": [str(lead_id) for lead_id in lead_ids], "channel": channel})
        return {row[0] for row in cursor.fetchall()}


def suppression_list(*, kind: str | None = None, reason: str | None = None, value: str | None = None, active=True):
    """Entries by kind, reason and (exact) value — a value is looked up by its blind index under every version."""
    entries = Suppression.objects.all()
    if active:
        entries = entries.active()
    if kind:
        entries = entries.filter(kind=kind)
    if reason:
        entries = entries.filter(reason=reason)
    if value:
        kinds = [kind] if kind else [SuppressionKind.EMAIL, SuppressionKind.PHONE, SuppressionKind.EMAIL_DOMAIN]
        wanted = []
        for each in kinds:
            try:
                wanted += suppression_indexes(each, suppression_value_clean(each, value))
            except (ValueError, KeyError):
                continue
        entries = entries.filter(value_indexes__overlap=wanted or ["-"])
    return entries
