"""A push to Instantly, both ways: the leads as Instantly's `leads[]` items, and what Instantly did with them
written back to `leads` (Instantly ids, skips, failed batches back to the queue and to the DLQ). The feeder
and the push retry both use these.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from equity_connect.events import record_events
from leads.models import Lead
from pipeline.dlq import dlq_record
from pipeline.models import DLQSource, PipelineDLQ
from security.models import Broker

from .instantly import ALREADY_IN_CAMPAIGN, InstantlyClient, PushResult


def instantly_payload(leads: list[Lead]) -> list[dict]:
    """The leads as Instantly's `leads[]` items (email required; our ids and the broker as custom variables)."""
    brokers = {}
    broker_ids = {lead.assigned_broker_id for lead in leads}
    if broker_ids:
        brokers = {b.id: b for b in Broker.objects.filter(id__in=broker_ids).only("id", "name", "email")}
    payload = []
    for lead in leads:
        broker = brokers.get(lead.assigned_broker_id)
        payload.append(
            {
                "email": lead.email,
                "first_name": lead.first_name or "",
                "last_name": lead.last_name or "",
                "phone": lead.phone or "",
                "custom_variables": {
                    "ec_lead_id": str(lead.id),
                    "broker_id": str(lead.assigned_broker_id) if lead.assigned_broker_id else "",
                    "broker_name": broker.name if broker else "",
                    "broker_email": broker.email if broker else "",
                    "property_address": lead.property_address or "",
                    "property_city": lead.property_city or "",
                },
            }
        )
    return payload


def push_results_apply(
    *,
    leads: list[Lead],
    result: PushResult,
    campaign_id: str,
    context: dict,
    dlq_row: PipelineDLQ | None = None,
    explored_ids: set | None = None,
) -> tuple[int, int, int, list[int]]:
    """Write what Instantly did to `leads` (in the order they were pushed). Returns
    (created, skipped, failed, new DLQ row ids). Failed batches go back to the queue and, unless this is
    a retry of `dlq_row` (which the caller updates), to a new DLQ row. `explored_ids`: the leads the feeder drew
    at random (their `campaign_added` event says `exploration: true`; the learned score's training reads it)."""
    explored_ids = explored_ids or set()
    created = result.created
    skipped = result.skipped
    events = []
    if created:
        now = timezone.now()
        changed = []
        for index, instantly_id in created.items():
            lead = leads[index]
            lead.instantly_lead_id, lead.updated_at = instantly_id, now
            changed.append(lead)
        Lead.objects.bulk_update(changed, ["instantly_lead_id", "updated_at"])
        for index, instantly_id in created.items():
            lead = leads[index]
            events.append(
                (
                    "campaign_added",
                    {
                        "lead_id": lead.id,
                        "broker_id": lead.assigned_broker_id,
                        "data": {
                            **context,
                            "instantly_lead_id": instantly_id,
                            "campaign_id": campaign_id,
                            "exploration": lead.id in explored_ids,
                        },
                    },
                )
            )
    if skipped:
        pause = [leads[index].id for index, reason in skipped.items() if reason != ALREADY_IN_CAMPAIGN]
        if pause:
            # Not in the campaign and not to be offered again automatically: a person decides (admin).
            Lead.objects.filter(id__in=pause).update(campaign_status="paused", updated_at=timezone.now())
        for index, reason in skipped.items():
            lead = leads[index]
            events.append(
                (
                    "campaign_skipped",
                    {
                        "lead_id": lead.id,
                        "broker_id": lead.assigned_broker_id,
                        "status": "failure",
                        "data": {**context, "reason": reason, "campaign_id": campaign_id},
                        "error_message": reason,
                    },
                )
            )
    failed_count, dlq_ids = 0, []
    for batch in result.failed_batches:
        lead_ids = [leads[index].id for index in batch.indexes]
        failed_count += len(lead_ids)
        leads_requeue(lead_ids)
        if dlq_row is None:
            dlq_ids.append(
                push_failure_dead_letter(
                    lead_ids=lead_ids,
                    error=batch.error,
                    attempts=batch.attempts,
                    campaign_id=campaign_id,
                    context=context,
                )
            )
    record_events(events)
    return len(created), len(skipped), failed_count, dlq_ids


def leads_requeue(lead_ids: list) -> int:
    """Back to the queue as never fed (the trigger stamps added_to_campaign_at again when re-fed)."""
    return Lead.objects.filter(id__in=lead_ids, campaign_status="active", instantly_lead_id__isnull=True).update(
        campaign_status="queued", added_to_campaign_at=None, updated_at=timezone.now()
    )


def push_failure_dead_letter(*, lead_ids: list, error: str, attempts: int, campaign_id: str, context: dict) -> int:
    row = dlq_record(
        source=DLQSource.INSTANTLY_PUSH,
        payload={"lead_ids": [str(lead_id) for lead_id in lead_ids], "campaign_id": campaign_id, **context},
        reason=f"Instantly did not accept a batch of {len(lead_ids)} leads after {attempts} attempts; "
        "the leads are back in the queue and the batch is retried automatically",
        error_detail=error,
        max_attempts=settings.DLQ_RETRY_MAX_ATTEMPTS,
        retry_after=timezone.now() + dt.timedelta(minutes=settings.DLQ_RETRY_BACKOFF_MINUTES),
    )
    return row.id


def instantly_sequences_stop(*, sequences: list[tuple[str, str]], reason: str, client=None) -> bool:
    """Take these leads (lead id, Instantly lead id) out of the campaign, so their sequence sends nothing
    more (a new owner arrived: the old owner's sequence must stop). Records `campaign_stopped` per lead;
    when Instantly cannot be reached after the client's retries, a DLQ review row asks a person to stop them
    in Instantly. Needs the service context. Returns whether Instantly confirmed."""
    client = client or InstantlyClient()
    reply = client.delete_leads([instantly_id for _, instantly_id in sequences])
    lead_ids = [lead_id for lead_id, _ in sequences]
    brokers = {
        str(key): broker
        for key, broker in Lead.objects.filter(id__in=lead_ids).values_list("id", "assigned_broker_id")
    }
    status = "success" if reply.ok else "failure"
    record_events(
        (
            "campaign_stopped",
            {
                "lead_id": lead_id,
                "broker_id": brokers.get(str(lead_id)),
                "status": status,
                "data": {"instantly_lead_id": instantly_id, "reason": reason, "dry_run": reply.dry_run},
                "error_message": reply.error or None,
            },
        )
        for lead_id, instantly_id in sequences
    )
    if not reply.ok:
        dlq_record(
            source=DLQSource.REVIEW,
            payload={"sequences": [list(pair) for pair in sequences], "reason": reason},
            reason=f"Instantly did not take {len(sequences)} lead(s) out of the campaign ({reason}): remove them"
            " in Instantly by hand, then discard this row",
            error_detail=reply.error,
        )
    return reply.ok
