"""The daily retention job (03:45 Los Angeles): what personal data is kept how long, and the counts it removed.

| part | setting (default) | what happens to older data |
| DLQ payloads | DLQ_PAYLOAD_RETENTION_DAYS (90) | the payload is redacted; the row, reason and line stay |
| staged rows | STAGING_RETENTION_DAYS (7) | deleted (rows of uploads still being ingested are kept) |
| webhook deliveries | WEBHOOK_DELIVERY_RETENTION_DAYS (90) | deleted |
| event detail | EVENT_DETAIL_RETENTION_DAYS (365) | the detail and error are emptied; the event stays |
| events | EVENT_RETENTION_DAYS (730) | deleted by month: a month's partition is dropped once all of it is older |
| access records | ACCESS_RECORD_RETENTION_DAYS (1826) | deleted |
| consent records | CONSENT_RECORD_RETENTION_DAYS (2557) | deleted |
| text bodies | SMS_BODY_RETENTION_DAYS (365) | the body of a text (sent or received) is emptied; the row stays |

Access and consent records are never kept less than 1826 days (5 years): a lower setting stops the start-up, and
their SECURITY DEFINER functions (leads migration 0013) refuse fewer days. Those two and the event detail
change only through those functions, as `privacy_officer` (equity_connect.db.privacy_officer_context).

Events live in two steps: at EVENT_DETAIL_RETENTION_DAYS an event keeps its row (type, status, time, broker,
upload, lead: the funnel and the timeline still count it) with its detail and error emptied; at
EVENT_RETENTION_DAYS the whole event goes with its month's partition (`pipeline_events_drop_partitions()`,
pipeline migration 0018: DROP, no archive, so nothing an erasure should reach survives elsewhere), and the
DEFAULT partition's rows that old are deleted. The floor of EVENT_RETENTION_DAYS is EVENT_DETAIL_RETENTION_DAYS (a
lower setting stops the start-up): a row is never deleted before its detail would have been emptied. An event
lives between EVENT_RETENTION_DAYS and about a month more (a month goes when its last day is old enough). The
5-year floor is the consent and access records' (their own tables): dropping event months never touches them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from equity_connect.db import privacy_officer_context
from pipeline.dlq import dlq_payloads_expire
from pipeline.jobs import RETENTION, JobReport, JobResult, job_run
from pipeline.models import WebhookDelivery
from pipeline.sms.services import sms_bodies_expire

# Staged rows of uploads that are finished (or gone); an upload being ingested keeps its rows whatever their age.
STAGING_EXPIRE_SQL = """
DELETE FROM leads_staging s
 WHERE s.created_at < %(before)s
   AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.id = s.upload_id AND u.status IN ('received', 'processing'))
"""

AUDIT_EXPIRE_SQL = """
SELECT lead_access_records_expire(%(access)s), lead_consent_audit_expire(%(consent)s),
       pipeline_events_expire_detail(%(events)s), dropped.partitions_dropped, dropped.events_deleted
  FROM pipeline_events_drop_partitions(%(event_rows)s) AS dropped
"""


def _before(days: int):
    return timezone.now() - timedelta(days=days)


def retention() -> JobReport:
    """Apply every retention period (module docstring); the event's data has the count of each part."""
    with connection.cursor() as cursor:
        cursor.execute(STAGING_EXPIRE_SQL, {"before": _before(settings.STAGING_RETENTION_DAYS)})
        staging = cursor.rowcount
    dlq = dlq_payloads_expire(before=_before(settings.DLQ_PAYLOAD_RETENTION_DAYS))
    deliveries, _ = WebhookDelivery.objects.filter(
        received_at__lt=_before(settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    ).delete()
    sms_bodies = sms_bodies_expire(before=_before(settings.SMS_BODY_RETENTION_DAYS))
    with privacy_officer_context(), connection.cursor() as cursor:
        cursor.execute(
            AUDIT_EXPIRE_SQL,
            {
                "access": settings.ACCESS_RECORD_RETENTION_DAYS,
                "consent": settings.CONSENT_RECORD_RETENTION_DAYS,
                "events": settings.EVENT_DETAIL_RETENTION_DAYS,
                "event_rows": settings.EVENT_RETENTION_DAYS,
            },
        )
        access, consent, events, partitions, events_deleted = cursor.fetchone()
    data = {
        "dlq_payloads_redacted": dlq,
        "staging_rows_deleted": staging,
        "webhook_deliveries_deleted": deliveries,
        "event_details_emptied": events,
        "event_partitions_dropped": partitions,
        "events_deleted": events_deleted,
        "access_records_deleted": access,
        "consent_records_deleted": consent,
        "sms_bodies_emptied": sms_bodies,
    }
    return JobReport(message="retention: " + ", ".join(f"{value} {key}" for key, value in data.items()), data=data)


def retention_run() -> JobResult:
    return job_run(RETENTION, retention)
