"""`person_export`: every record we hold about a person, as one JSON document, and a consent proof per lead.

The document lists the person's leads (every column), the events about those leads or that mention them, their
consent records, their DLQ rows (theirs by lead, or holding their e-mail or phone), their staged rows, the access
records about their leads (who saw them: the kind of user, the page, when; not the staff member's address or
browser), the inbound Instantly deliveries about them, and the rows of the stored upload files that hold them.
A consent proof is per lead: the lead's contact details and consent state, and every consent record of the lead
and of the leads merged into it (text shown, version, channels, method, time, address and browser, campaign).

The export itself is recorded: an access record (`export`, via `privacy.export`, the person's leads) and a
`person_exported` event with the counts; neither holds the e-mail or phone asked for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from leads.access import access_record
from leads.columns import ADDRESS, CONTACT
from leads.models import LeadAccessRecord, LeadConsentAudit
from pipeline.models import LeadStaging, PipelineDLQ

from .files import person_file_rows
from .person import Person, person_deliveries, person_row_ids, person_texts

EVENTS_SQL = """
SELECT id FROM pipeline_events
 WHERE lead_id = ANY(%(lead_ids)s::uuid[])
    OR privacy_mentions(event_data::text, %(needles)s) OR privacy_mentions(error_message, %(needles)s)
 ORDER BY created_at, id
"""
ACCESS_FIELDS = ("id", "created_at", "action", "via", "lead_id", "row_count", "broker_id", "filters")
CONSENT_FIELDS = (
    "id",
    "lead_id",
    "created_at",
    "consent",
    "channels",
    "consent_text",
    "consent_text_version",
    "method",
    "ip_address",
    "user_agent",
    "token_hash",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
PROOF_LEAD_FIELDS = (*CONTACT, *ADDRESS)  # who and where, as the lead holds them
PROOF_CONSENT_FIELDS = (
    "consent",
    "consent_email",
    "consent_sms",
    "consent_phone",
    "consented_at",
    "consent_method",
    "do_not_contact_reason",
    "campaign_status",
)


@dataclass
class PersonExport:
    document: dict
    consent_proofs: dict[str, dict]  # lead id -> its consent proof

    @property
    def counts(self) -> dict[str, int]:
        return {key: len(value) for key, value in self.document["records"].items()}

    def files(self) -> dict[str, bytes]:
        """File name -> content: the document and one consent proof per lead."""
        stamp = self.document["generated_at"][:19].replace(":", "").replace("-", "")
        files = {f"privacy-export-{stamp}.json": _dumps(self.document)}
        for lead_id, proof in self.consent_proofs.items():
            files[f"consent-proof-{lead_id}.json"] = _dumps(proof)
        return files


def _dumps(value) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder, indent=2, sort_keys=True, ensure_ascii=False).encode()


def _plain(rows) -> list[dict]:
    """Rows as JSON-ready dicts (uuids, dates and decimals as text)."""
    return json.loads(json.dumps(list(rows), cls=DjangoJSONEncoder))


def person_export(*, person: Person, request=None, actor=None) -> PersonExport:
    """Collect every record about `person` (read only) and record the export (access record + event)."""
    with service_context():
        leads = list(person.leads().values())
        lead_ids = [str(lead["id"]) for lead in leads]
        with connection.cursor() as cursor:
            ids = person_row_ids(cursor, person, lead_ids)
            cursor.execute(EVENTS_SQL, {"lead_ids": lead_ids, "needles": person.needles})
            event_ids = [event_id for (event_id,) in cursor.fetchall()]
        records = {
            "leads": _plain(leads),
            "events": _plain(PipelineEvent.objects.filter(id__in=event_ids).order_by("created_at", "id").values()),
            "consent_records": _plain(
                LeadConsentAudit.objects.filter(lead_id__in=lead_ids).order_by("created_at", "id").values()
            ),
            "dlq_rows": _plain(PipelineDLQ.objects.filter(id__in=ids["dlq"]).order_by("id").values()),
            "staging_rows": _plain(LeadStaging.objects.filter(id__in=ids["staging"]).order_by("id").values()),
            "access_records": _plain(
                LeadAccessRecord.objects.filter(lead_id__in=lead_ids)
                .order_by("created_at", "id")
                .values(*ACCESS_FIELDS)
            ),
            "webhook_deliveries": _plain(person_deliveries(person, lead_ids).order_by("received_at").values()),
            "text_messages": _plain(
                person_texts(person, lead_ids)
                .order_by("created_at", "id")
                .values("created_at", "direction", "kind", "lead_id", "phone", "body", "status", "review")
            ),
            "upload_file_rows": [asdict(rows) for rows in person_file_rows(person)],
        }
        proofs = {str(lead["id"]): _consent_proof(lead) for lead in leads}
        generated_at = timezone.now().isoformat()
        document = {
            "generated_at": generated_at,
            "about": {"email": person.email, "phone": person.phone},
            "records": records,
        }
        export = PersonExport(document=document, consent_proofs=proofs)
        access_record(
            request=request,
            actor=actor,
            action="export",
            via="privacy.export",
            lead_ids=lead_ids or None,
            filters={"by": person.label},
            row_count=sum(export.counts.values()),
            detail={"counts": export.counts},
        )
        record_event("person_exported", data={"by": person.label, "counts": export.counts})
    return export


def _consent_proof(lead: dict) -> dict:
    family = RawSQL("SELECT lead_merge_family(%s)", (lead["id"],))
    records = LeadConsentAudit.objects.filter(lead_id__in=family).order_by("created_at", "id").values(*CONSENT_FIELDS)
    return {
        "lead_id": str(lead["id"]),
        "generated_at": timezone.now().isoformat(),
        "contact": _plain([{field: lead[field] for field in PROOF_LEAD_FIELDS}])[0],
        "consent_state": _plain([{field: lead[field] for field in PROOF_CONSENT_FIELDS}])[0],
        "consent_records": _plain(records),
    }
