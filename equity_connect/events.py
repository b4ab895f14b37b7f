"""The one way to append to `pipeline_events` (its model: equity_connect/models.py), usable from every layer.

`record_event` / `record_events` write rows one by one; `lead_events_insert_sql` is the statement the
ingestion's set-based SQL uses to record one event per lead it created or merged. It lives at the bottom
of the import order so that `security` (partner keys), `leads` (consent, portal actions) and `pipeline`
(ingestion, jobs, webhooks) record events the same way without importing each other. It writes with the
caller's database context: a broker's context may only record events for that broker (RLS). Never put
secrets, signatures or request bodies in `event_data`. A test fails if any other module writes the table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from .models import EventStatus

# The seed's names where it has them; ours for the rest.
SEED_EVENT_TYPES = (
    "upload_received",
    "dedupe_success",
    "lead_verified",
    "campaign_added",
    "email_replied",
    "appointment_booked",
)
EVENT_TYPES = (
    *SEED_EVENT_TYPES,
    "upload_rejected",
    "upload_unverified",
    "upload_failed",
    "upload_requeued",
    "upload_cancelled",
    "upload_rerun",
    "contacts_encrypted",
    "pii_reencrypted",
    "lead_created",
    "lead_merged",
    "lead_owner_changed",
    "lead_merged_away",
    "lead_kept_apart",
    "possible_duplicate",
    "lead_rejected",
    "lead_queued",
    "lead_do_not_contact",
    "lead_outcome",
    "consent_given",
    "consent_refused",
    "consent_link_created",
    "consent_link_requested",
    "consent_link_sent",
    "contact_window_changed",
    "email_bounced",
    "unsubscribed",
    "lead_not_interested",
    "lead_wrong_person",
    "mv_refreshed",
    "feeder_run",
    "campaign_skipped",
    "campaign_stopped",
    "job_run",
    "job_skipped",
    "dlq_reprocessed",
    "dlq_discarded",
    "alert_fired",
    "alert_resolved",
    "alert_acknowledged",
    "alert_snoozed",
    "alert_threshold_changed",
    "partner_key_created",
    "partner_key_changed",
    "partner_key_revoked",
    "login_locked_out",
    "staff_2fa_enrolled",
    "staff_2fa_locked_out",
    "person_exported",
    "person_erased",
    "suppression_added",
    "suppression_removed",
    "suppressions_imported",
    "lead_suppression_changed",
    "instantly_blocked",
    "dnc_imported",
    "follow_up_added",
    "follow_up_done",
    "broker_offboarded",
    "lead_reassigned",
    "holiday_changed",
    "lead_contact_changed",
    "broker_settings_changed",
    "notifications_mailed",
    "score_model_activated",
    "rule_score_activated",
    "sms_sent",
    "sms_replied",
    "sms_opted_out",
    "sms_opted_in",
    "sms_possible_opt_out",
    "sms_review_closed",
    "sms_undelivered",
    "sms_send_run",
    "sms_send_unknown",
    "experiment_started",
    "experiment_stopped",
)
STATUSES = tuple(EventStatus.values)

_INSERT = (
    "INSERT INTO pipeline_events (event_type, lead_id, broker_id, upload_id, event_data, duration_ms, status,"
    " error_message) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s)"
)


def _row(
    event_type: str,
    *,
    lead_id=None,
    broker_id=None,
    upload_id=None,
    data: dict | None = None,
    duration_ms: int | None = None,
    status: str = "success",
    error_message: str | None = None,
) -> list:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if status not in STATUSES:
        raise ValueError(f"unknown event status {status!r}")
    return [
        event_type,
        _uuid(lead_id),
        _uuid(broker_id),
        _uuid(upload_id),
        json.dumps(data or {}, cls=DjangoJSONEncoder),
        duration_ms,
        status,
        error_message,
    ]


def _uuid(value) -> str | None:
    return None if value is None else str(uuid.UUID(str(value)))


def record_event(event_type: str, **fields: Any) -> None:
    """Append one event. Fields: lead_id, broker_id, upload_id, data, duration_ms, status, error_message."""
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, _row(event_type, **fields))


def record_events(events: Iterable[tuple[str, dict]]) -> int:
    """Append many events in one round trip: `[(event_type, fields), ...]`. Returns the count."""
    rows = [_row(event_type, **fields) for event_type, fields in events]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(_INSERT, rows)
    return len(rows)


def lead_events_insert_sql(
    event_type: str,
    *,
    source: str,
    lead_column: str = "id",
    broker_column: str = "assigned_broker_id",
    data_sql: str = "'{}'::jsonb",
    where_sql: str = "",
    upload_sql: str = "%(upload)s",
) -> str:
    """One `event_type` event per row of `source` (a CTE or temporary table naming leads an upload created
    or changed), for the upload `%(upload)s`; `data_sql` is an SQL expression over `source` for the event's
    data, `where_sql` an optional condition on its rows (both the code's own, never input); `upload_sql` is
    `NULL` for a statement with positional parameters that names no upload (the portal's bulk actions)::

        INSERT INTO pipeline_events (event_type, lead_id, broker_id, upload_id, event_data, status)
        SELECT 'lead_created', id, assigned_broker_id, %(upload)s, '{}'::jsonb, 'success' FROM created
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if upload_sql not in ("%(upload)s", "NULL"):
        raise ValueError(f"not an upload expression: {upload_sql!r}")
    for name in (source, lead_column, broker_column):
        if not name.isidentifier():
            raise ValueError(f"not an identifier: {name!r}")
    return (
        "INSERT INTO pipeline_events (event_type, lead_id, broker_id, upload_id, event_data, status)\n"
        f"SELECT '{event_type}', {lead_column}, {broker_column}, {upload_sql}, {data_sql}, 'success' FROM {source}"
        + (f" WHERE {where_sql}" if where_sql else "")
    )
