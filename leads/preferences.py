"""A broker's own portal settings (`broker_portal_settings`): e-mail notifications on or off and the lead list's
columns. One row per broker, made on the first change; without one, the defaults. RLS lets a broker read and
write only their own row (migration 0018); every function takes the broker and touches only that row."""

from __future__ import annotations

from django.db import transaction

from equity_connect.events import record_event

from .models import BrokerPortalSettings

# The lead list's columns a broker may hide or show, in the list's order (the name is always shown: it opens
# the lead). The template reads `shown_columns`.
LIST_COLUMNS = {
    "property": "Property",
    "contact": "Contact",
    "score": "Score",
    "status": "Status",
    "consent": "Consent",
    "created": "Created",
}
DEFAULT_LIST_COLUMNS = tuple(LIST_COLUMNS)


def broker_settings_get(*, broker) -> BrokerPortalSettings:
    """The broker's settings (an unsaved row of defaults when they never changed one)."""
    found = BrokerPortalSettings.objects.filter(broker_id=broker.pk).first()
    return found or BrokerPortalSettings(broker_id=broker.pk, notify_by_email=True, list_columns=[])


def shown_columns(*, broker) -> tuple[str, ...]:
    """The list columns the broker chose (every column until they choose)."""
    chosen = [column for column in broker_settings_get(broker=broker).list_columns or () if column in LIST_COLUMNS]
    return tuple(chosen) if chosen else DEFAULT_LIST_COLUMNS


def broker_settings_update(*, broker, notify_by_email: bool | None = None, list_columns=None) -> BrokerPortalSettings:
    """Change the broker's notification switch and/or list columns (unknown column names are dropped; none left
    means every column). Records `broker_settings_changed` with what changed."""
    with transaction.atomic():
        current = BrokerPortalSettings.objects.select_for_update().filter(broker_id=broker.pk).first()
        row = current or BrokerPortalSettings(broker_id=broker.pk, notify_by_email=True, list_columns=[])
        changed = {}
        if notify_by_email is not None and notify_by_email != row.notify_by_email:
            row.notify_by_email = changed["notify_by_email"] = bool(notify_by_email)
        if list_columns is not None:
            columns = [column for column in LIST_COLUMNS if column in set(list_columns)]
            if columns == list(DEFAULT_LIST_COLUMNS):
                columns = []
            if columns != list(row.list_columns or []):
                row.list_columns = changed["list_columns"] = columns
        if changed or current is None:
            row.save()
        if changed:
            record_event("broker_settings_changed", broker_id=broker.pk, data=changed)
    return row
