"""What a person does with an alert: acknowledge it (who, when, a note) or snooze its rule's notifications.

    alert_acknowledge(alert=alert, user=user, note="looking at the DLQ")
    alert_snooze(alert=alert, user=user, until=now + timedelta(hours=4))   # until=None ends a snooze

Neither changes whether the rule holds: the alert stays firing until its condition clears (then it resolves by
itself, pipeline/monitoring/alerts.py). A snooze silences notifications about the rule until `until`, including a
new incident of the same rule opened meanwhile; when it ends with the alert still firing and unacknowledged, one
reminder goes out. Call inside a service context (a staff request).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from equity_connect.events import record_event
from pipeline.models import Alert, AlertState

MAX_SNOOZE = dt.timedelta(days=7)
ACKNOWLEDGE_NOTE_MAX = 2000


class AlertActionError(Exception):
    """An action that cannot be done to this alert (the message is safe to show)."""


def _username(user) -> str | None:
    return getattr(user, "get_username", lambda: None)()


def alert_acknowledge(*, alert: Alert, user, note: str = "") -> Alert:
    """Mark a firing alert as seen by `user` with `note`. Changes the alert; records `alert_acknowledged`."""
    note = (note or "").strip()[:ACKNOWLEDGE_NOTE_MAX]
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != AlertState.FIRING:
            raise AlertActionError(f"Alert #{alert.pk} ({alert.rule}) is already resolved.")
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = user
        alert.acknowledge_note = note
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledge_note"])
        record_event(
            "alert_acknowledged",
            data={"alert_id": alert.pk, "rule": alert.rule, "by": _username(user), "note": note},
        )
    return alert


def alert_snooze(*, alert: Alert, user, until: dt.datetime | None) -> Alert:
    """Silence the notifications of `alert`'s rule until `until` (None: end the snooze now).

    Changes the alert; records `alert_snoozed`. Raises AlertActionError for a time in the past or too far ahead."""
    now = timezone.now()
    if until is not None and until <= now:
        raise AlertActionError("A snooze must end in the future.")
    if until is not None and until - now > MAX_SNOOZE:
        raise AlertActionError("A snooze may last at most 7 days.")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        alert.snoozed_until = until
        alert.snoozed_by = user if until else None
        alert.save(update_fields=["snoozed_until", "snoozed_by"])
        record_event(
            "alert_snoozed",
            data={"alert_id": alert.pk, "rule": alert.rule, "by": _username(user), "until": until},
        )
    return alert


def rule_snoozed_until(rule: str, now: dt.datetime) -> dt.datetime | None:
    """The end of a snooze in force on `rule` (set on its latest alert), or None."""
    until = Alert.objects.filter(rule=rule).order_by("-opened_at", "-id").values_list("snoozed_until", flat=True)
    until = until.first()
    return until if until and until > now else None
