"""`person_erase`: a person's data removed or irreversibly redacted everywhere, at Instantly too.

In this order, so that a failure part-way leaves a state a second run completes (every step finds the person by
their e-mail and phone again, never by what an earlier step removed):

1. Instantly: each of their leads with an Instantly id is deleted from the workspace (`DELETE /api/v2/leads/{id}`;
   a 404 means already gone). A failure stops here, before anything local changed: nothing is lost, run again.
2. The stored upload files: every cell of their rows blanked, in place (files.py).
3. One transaction (service_role, and privacy_officer for the audit trails):
   - consent records: kept as proof, address and browser removed, lead id and token hash hashed
     (`lead_consent_audit_erase`); access records about their leads: lead id hashed, reason and detail emptied
     (`lead_access_records_erase`); events about them: lead id hashed, detail redacted (`pipeline_events_erase`)
     — the SECURITY DEFINER functions of leads 0013 and pipeline 0015, the only way to change those tables;
   - DLQ rows: payload redacted, every mention in the reason removed; the row, its line and status stay;
   - staged rows, inbound Instantly deliveries and texts (`sms_messages`) about them: deleted;
   - their leads: deleted (with their consent links and possible-duplicate pairs). Deleted rather than kept as
     tombstones with PII nulled: a tombstone keeps the property address and valuations that identify the person
     as surely as their name, and nothing needs the row once the records that must stay (consent proof, access
     records, events) carry the hashed id;
   - an `erasure` suppression entry (blind indexes only), so a later row of theirs is rejected as "erased
     person", and their other suppression entries lose their readable value;
   - an access record (`erase`, no lead: their ids are gone) and a `person_erased` event with the counts.
4. The contactable-leads view is refreshed, so its copy of their address goes too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import connection

from equity_connect.db import privacy_officer_context, service_context
from equity_connect.events import record_event
from leads.access import access_record
from leads.models import Lead
from leads.suppressions.rules import SuppressionKind
from leads.suppressions.services import suppression_person_erase
from pipeline.campaigns.contactable import contactable_leads_refresh_run
from pipeline.campaigns.instantly import InstantlyClient
from pipeline.dlq import dlq_person_redact
from pipeline.models import LeadStaging
from security import pii

from .files import person_files_blank
from .person import Person, PrivacyError, person_deliveries, person_row_ids, person_texts

logger = logging.getLogger(__name__)

AUDIT_ERASE_SQL = """
SELECT lead_consent_audit_erase(%(lead_ids)s::uuid[]),
       lead_access_records_erase(%(lead_ids)s::uuid[], %(needles)s::text[]),
       pipeline_events_erase(%(lead_ids)s::uuid[], %(needles)s::text[])
"""


@dataclass
class ErasureResult:
    counts: dict[str, int] = field(default_factory=dict)
    contactable_view_refreshed: bool = True

    @property
    def summary(self) -> str:
        return ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in self.counts.items())


def _erasure_suppress(email_indexes: list[str], phone_indexes: list[str]) -> int:
    """Keep the person out for good: one `erasure` suppression entry per contact kind holding only its blind
    indexes (every key version's), binding every channel, so the ingestion rejects a later row of theirs with the
    reason "erased person" (leads/suppressions). Their other entries (an unsubscribe, a bounce) keep binding but
    lose the encrypted value and the label that could be read back. Returns the entries added."""
    added = 0
    for kind, indexes in ((SuppressionKind.EMAIL, email_indexes), (SuppressionKind.PHONE, phone_indexes)):
        if indexes:
            added += int(suppression_person_erase(kind=kind, indexes=indexes).created)
    return added


def person_erase(
    *, person: Person, request=None, actor=None, instantly: InstantlyClient | None = None
) -> ErasureResult:
    """Erase everything about `person` (module docstring: what, in which order). Raises PrivacyError when
    Instantly refuses the deletion (nothing is changed then). Records an access record and a `person_erased`
    event with the counts; neither holds the person's e-mail or phone."""
    with service_context():
        instantly_ids = sorted(
            {value for value in person.leads().values_list("instantly_lead_id", flat=True) if value}
        )
    result = ErasureResult()
    result.counts["instantly_leads"] = _instantly_delete(instantly_ids, instantly or InstantlyClient())
    with service_context():
        result.counts["upload_file_rows_blanked"] = sum(len(rows.lines) for rows in person_files_blank(person))
    with service_context(budget="job"):
        lead_ids = [str(lead_id) for lead_id in person.leads().values_list("id", flat=True)]
        with connection.cursor() as cursor:
            rows = person_row_ids(cursor, person, lead_ids)
        with privacy_officer_context(), connection.cursor() as cursor:
            cursor.execute(AUDIT_ERASE_SQL, {"lead_ids": lead_ids, "needles": person.needles})
            consent, access, events = cursor.fetchone()
        result.counts.update(
            consent_records_redacted=consent,
            access_records_redacted=access,
            events_redacted=events,
            dlq_rows_redacted=dlq_person_redact(ids=rows["dlq"], needles=person.needles),
            staging_rows_deleted=LeadStaging.objects.filter(id__in=rows["staging"])
            .delete()[1]
            .get(LeadStaging._meta.label, 0),
            webhook_deliveries_deleted=person_deliveries(person, lead_ids).delete()[0],
            # Texts to and from them (their number, their words): by their leads, or by their number.
            sms_messages_deleted=person_texts(person, lead_ids).delete()[0],
            leads_deleted=Lead.objects.filter(id__in=lead_ids).delete()[1].get(Lead._meta.label, 0),
        )
        codec = pii.codec()
        result.counts["suppression_entries_added"] = _erasure_suppress(
            codec.blind_indexes(person.email, pii.EMAIL), codec.blind_indexes(person.phone, pii.PHONE)
        )
        access_record(
            request=request,
            actor=actor,
            action="erase",
            via="privacy.erase",
            filters={"by": person.label},
            row_count=sum(result.counts.values()),
            detail={"counts": result.counts},
        )
        record_event("person_erased", data={"by": person.label, "counts": result.counts})
    refresh = contactable_leads_refresh_run()
    result.contactable_view_refreshed = refresh.status == "success"
    if not result.contactable_view_refreshed:
        logger.warning("privacy erase: the contactable-leads view was not refreshed (%s)", refresh.status)
    return result


def _instantly_delete(instantly_ids: list[str], client: InstantlyClient) -> int:
    deleted = 0
    for instantly_id in instantly_ids:
        reply = client.delete_lead(instantly_id)
        if reply.ok or reply.status_code == 404:
            deleted += 0 if reply.dry_run else 1
            continue
        # Not the reply's text: it may quote the lead. What Instantly already deleted stays deleted.
        answer = f"HTTP {reply.status_code}" if reply.status_code else "no answer"
        raise PrivacyError(
            f"Instantly did not delete the person's lead ({answer}): nothing was erased in our records; "
            "try again later"
        )
    return deleted
