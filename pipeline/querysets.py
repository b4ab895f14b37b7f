"""Query sets of the pipeline's models, with the few statements the ORM cannot say, each named here beside
its model: the replay guard's race-free claim, the job heartbeat's upsert, the feeder ledger's claim of a
business day, and the webhook deliveries' record-once insert."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection, models

# One of two concurrent identical uploads of a partner inserts; the other waits on the unique key and then sees
# the conflict. An entry older than the window is taken over (its upload is forgotten). The key is
# (partner, content) with NULLS NOT DISTINCT, so the uploads without a partner are one sender too.
REPLAY_GUARD_CLAIM_SQL = """
INSERT INTO ingest_replay_guard (content_sha256, partner_id, created_at)
VALUES (%(content_sha256)s, %(partner_id)s, now())
ON CONFLICT ON CONSTRAINT replay_guard_partner_content_uniq DO UPDATE
   SET created_at = now(), upload_id = NULL
 WHERE ingest_replay_guard.created_at < now() - make_interval(days => %(days)s)
RETURNING id
"""

JOB_HEARTBEAT_TOUCH_SQL = """
INSERT INTO job_heartbeats (name, last_seen_at, last_status, last_duration_ms)
VALUES (%(name)s, now(), %(status)s, %(duration_ms)s)
ON CONFLICT (name) DO UPDATE
   SET last_seen_at = EXCLUDED.last_seen_at, last_status = EXCLUDED.last_status,
       last_duration_ms = EXCLUDED.last_duration_ms
"""

# A business day's ledger row: a concurrent second run waits for the first transaction, then finds the row.
FEEDER_RUN_OPEN_SQL = """
INSERT INTO feeder_runs (business_date, status, dry_run, leads_claimed, leads_pushed, leads_skipped,
                         error_message, started_at)
VALUES (%(business_date)s, 'running', false, 0, 0, 0, '', now())
ON CONFLICT (business_date) WHERE NOT dry_run DO NOTHING
RETURNING id
"""

WEBHOOK_DELIVERY_RECORD_SQL = """
INSERT INTO webhook_deliveries (dedupe_hash, event_type, lead_email, payload, received_at)
VALUES (%(dedupe_hash)s, %(event_type)s, %(lead_email)s, %(payload)s::jsonb, now())
ON CONFLICT (dedupe_hash) DO NOTHING
RETURNING dedupe_hash
"""


def _fetchone(sql: str, params: dict):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


class ReplayGuardQuerySet(models.QuerySet):
    def claim(self, *, content_sha256: str, partner=None) -> int | None:
        """Claim `content_sha256` for a new upload of `partner` (None: no partner). Returns the guard's id, or
        None when the same partner sent the same content within REPLAY_GUARD_DAYS."""
        params = {
            "content_sha256": content_sha256,
            "partner_id": getattr(partner, "pk", None),
            "days": settings.REPLAY_GUARD_DAYS,
        }
        row = _fetchone(REPLAY_GUARD_CLAIM_SQL, params)
        return row[0] if row else None

    def of_sender(self, *, content_sha256: str, partner=None):
        """The guard of this content from this partner (None: the uploads without a partner)."""
        partner_id = getattr(partner, "pk", None)
        sender = {"partner_id": partner_id} if partner_id is not None else {"partner__isnull": True}
        return self.filter(content_sha256=content_sha256, **sender)

    def upload_id_for(self, *, content_sha256: str, partner=None):
        """The earlier upload this partner sent with this content (never another partner's)."""
        guards = self.of_sender(content_sha256=content_sha256, partner=partner)
        return guards.values_list("upload_id", flat=True).first()


class JobHeartbeatQuerySet(models.QuerySet):
    def touch(self, name: str, *, status: str = "", duration_ms: int | None = None) -> None:
        """Upsert the job's heartbeat row (last seen now)."""
        with connection.cursor() as cursor:
            cursor.execute(JOB_HEARTBEAT_TOUCH_SQL, {"name": name, "status": status, "duration_ms": duration_ms})


class FeederRunQuerySet(models.QuerySet):
    def open_day(self, business_date) -> int | None:
        """Open the day's ledger row and return its id; None when the day already has one."""
        row = _fetchone(FEEDER_RUN_OPEN_SQL, {"business_date": business_date})
        return row[0] if row else None


class WebhookDeliveryQuerySet(models.QuerySet):
    def record(self, *, dedupe_hash: str, event_type: str, lead_email: str, payload_json: str) -> bool:
        """Record a delivery once; False when the same delivery was recorded before. The address and the
        payload are stored encrypted (the model's fields, security/fields.py)."""
        params = {
            "dedupe_hash": dedupe_hash,
            "event_type": event_type,
            "lead_email": self.model._meta.get_field("lead_email").get_prep_value(lead_email),
            "payload": json.dumps(self.model._meta.get_field("payload").get_prep_value(json.loads(payload_json))),
        }
        return _fetchone(WEBHOOK_DELIVERY_RECORD_SQL, params) is not None
