"""The lead's timeline (read through `leads.selectors`): its `pipeline_events`, each with its label and the
phrases a person reads of it (leads/display.py `event_details`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from equity_connect.models import PipelineEvent
from security.fields import open_notes

from .display import broker_zone, event_details
from .models import Lead


@dataclass(frozen=True)
class TimelineEntry:
    event_type: str
    status: str
    created_at: datetime
    data: dict
    error_message: str | None
    details: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return EVENT_LABELS.get(self.event_type, self.event_type.replace("_", " ").capitalize())


EVENT_LABELS = {
    "lead_created": "Lead created",
    "lead_merged": "Merged with new data",
    "lead_verified": "Contact verified",
    "consent_link_created": "Consent link created (by staff)",
    "consent_link_requested": "Consent link requested",
    "consent_link_sent": "Consent link e-mailed to the lead",
    "consent_given": "Consent given",
    "consent_refused": "Lead asked not to be contacted",
    "lead_queued": "Queued for campaign",
    "campaign_added": "Added to email campaign",
    "email_replied": "Replied",
    "email_bounced": "Email bounced",
    "unsubscribed": "Unsubscribed",
    "appointment_booked": "Appointment booked",
    "lead_do_not_contact": "Marked do-not-contact",
    "lead_outcome": "Outcome recorded",
    "lead_not_interested": "Not interested",
    "lead_wrong_person": "Wrong person",
    "lead_suppression_changed": "Suppression marks changed",
    "lead_owner_changed": "Assigned to another broker",
    "campaign_stopped": "Campaign stopped",
    "follow_up_added": "Follow-up added",
    "follow_up_done": "Follow-up done",
    "lead_reassigned": "Reassigned to another broker",
    "lead_contact_changed": "Contact details changed",
    "sms_sent": "Texted",
    "sms_send_unknown": "Text may or may not have been sent: ops check it",
    "sms_replied": "Replied by text",
    "sms_opted_out": "Opted out of texts (STOP)",
    "sms_opted_in": "Opted back in to texts (START)",
    "sms_possible_opt_out": "Text reply may be an opt-out: in review",
    "sms_undelivered": "Text not delivered",
}


def _event_detail(value) -> dict:
    """An event's detail as a dict with its notes opened. A detail stored as a JSON string (a document encoded
    twice) is decoded first, or every note, outcome and appointment on the timeline would read as empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return open_notes(value) if isinstance(value, dict) else {}


def lead_timeline(*, lead: Lead, zone: ZoneInfo | None = None, limit: int = 200) -> list[TimelineEntry]:
    """The lead's `pipeline_events`, newest first (RLS limits a broker to events carrying their id), each with
    the phrases a person reads of it (`display.event_details`: times in `zone`, the broker's)."""
    zone = zone or broker_zone(None)
    events = PipelineEvent.objects.filter(lead_id=lead.pk).order_by("-created_at", "-id")[:limit]
    entries = []
    for event in events:
        data = _event_detail(event.event_data)
        entries.append(
            TimelineEntry(
                event_type=event.event_type,
                status=event.status,
                created_at=event.created_at,
                data=data,
                error_message=event.error_message,
                details=tuple(event_details(event.event_type, data, zone)),
            )
        )
    return entries
