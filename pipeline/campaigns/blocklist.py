"""The Instantly side of the suppression list, once per entry: an entry that binds e-mail puts its address
(or domain) on Instantly's block list, and stops the running sequences of the leads it binds (they leave the
campaign: pipeline/campaigns/pushes.py `instantly_sequences_stop`).

The list's services (leads/suppressions/services.py) never call out: an entry is born with
`instantly_synced_at` empty, and this job, every minute, takes the entries not yet synced (`FOR UPDATE SKIP
LOCKED`, so two runs never take one entry), does their Instantly side and stamps them. Never twice for one
entry: the stamp; nor twice for one address: an address already blocked through another entry is not sent
again, and a lead whose sequence was stopped has no Instantly id left to stop. An entry Instantly did not
take stays unsynced and is tried again at the next run. An erased person's entry holds no value: nothing to
send (the privacy erase deletes the person at Instantly itself).
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.models import Lead
from leads.suppressions.models import Suppression
from leads.suppressions.rules import SuppressionKind
from leads.suppressions.services import INDEX_KIND
from leads.suppressions.sql import ENTRY_TARGETS
from pipeline.jobs import SUPPRESSION_SYNC, JobReport, JobResult, job_run
from security.pii import PiiUnavailable, codec

from .instantly import InstantlyClient
from .pushes import instantly_sequences_stop

SYNC_BATCH = 200


def _campaign_leads(entry: Suppression) -> list[tuple[str, str]]:
    """(lead id, Instantly lead id) of the leads the entry binds that are in an Instantly campaign."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.id, l.instantly_lead_id FROM leads l WHERE l.id IN ({ENTRY_TARGETS[entry.kind]})"
            " AND l.instantly_lead_id IS NOT NULL ORDER BY l.id",
            {"indexes": list(entry.value_indexes)},
        )
        return [(str(lead_id), instantly_id) for lead_id, instantly_id in cursor.fetchall()]


def _block(entry: Suppression, client: InstantlyClient) -> bool:
    """Put the entry's address or domain on Instantly's block list, unless another entry already did."""
    if entry.kind not in (SuppressionKind.EMAIL, SuppressionKind.EMAIL_DOMAIN) or not entry.value_encrypted:
        return True
    done_before = (
        Suppression.objects.filter(
            kind=entry.kind, value_indexes__overlap=entry.value_indexes, channels__contains=["email"]
        )
        .exclude(pk=entry.pk)
        .exclude(instantly_synced_at__isnull=True)
        .exists()
    )
    if done_before:
        return True
    try:
        value = codec().decrypt(entry.value_encrypted, INDEX_KIND[entry.kind])
    except PiiUnavailable:
        return True  # no key for it any more: nothing we can send
    reply = client.block_list_add(value)
    record_event(
        "instantly_blocked",
        status="success" if reply.ok else "failure",
        error_message=reply.error or None,
        data={"suppression_id": entry.pk, "kind": entry.kind, "reason": entry.reason, "dry_run": reply.dry_run},
    )
    return reply.ok


def suppressions_instantly_sync(*, client: InstantlyClient | None = None, limit: int = SYNC_BATCH) -> JobReport:
    """Do the Instantly side of up to `limit` entries not yet synced (needs the service context). Changes: the
    entries' `instantly_synced_at`; the stopped leads' `instantly_lead_id` (cleared: the id is on their
    `campaign_stopped` event). Records `instantly_blocked` per address sent and `campaign_stopped` per lead."""
    client = client or InstantlyClient()
    entries = list(
        Suppression.objects.active()
        .filter(instantly_synced_at__isnull=True)
        .order_by("id")
        .select_for_update(skip_locked=True)[:limit]
    )
    synced = blocked_failed = stopped = 0
    for entry in entries:
        if "email" in entry.channels:
            if not _block(entry, client):
                blocked_failed += 1
                continue  # tried again at the next run
            sequences = _campaign_leads(entry)
            if sequences:
                instantly_sequences_stop(sequences=sequences, reason=f"suppressed ({entry.reason})", client=client)
                # Stopped, or a DLQ review row asks a person to: either way not stopped a second time.
                Lead.objects.filter(id__in=[lead_id for lead_id, _ in sequences]).update(
                    instantly_lead_id=None, updated_at=timezone.now()
                )
                stopped += len(sequences)
        entry.instantly_synced_at = timezone.now()
        entry.save(update_fields=["instantly_synced_at"])
        synced += 1
    message = f"synced {synced} suppression entries with Instantly; {stopped} sequences stopped"
    if blocked_failed:
        message += f"; {blocked_failed} not taken by Instantly (tried again at the next run)"
    return JobReport(
        message=message,
        data={"synced": synced, "sequences_stopped": stopped, "block_failed": blocked_failed},
        status="failure" if blocked_failed and not synced else "success",
    )


def suppressions_instantly_sync_run(*, client: InstantlyClient | None = None) -> JobResult | None:
    """The sync as a job (lock, event, heartbeat) — only when an entry waits, so an idle minute records nothing."""
    with service_context():
        waiting = Suppression.objects.active().filter(instantly_synced_at__isnull=True).exists()
    if not waiting:
        return None
    return job_run(SUPPRESSION_SYNC, lambda: suppressions_instantly_sync(client=client))
