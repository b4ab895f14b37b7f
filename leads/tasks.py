"""django-q2 tasks of the leads app, thin like pipeline/tasks.py. They live here, not there, because leads
enqueues them by dotted name and never names the pipeline package above it."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from equity_connect.db import broker_context, service_context

from .consent.services import consent_link_deliver, consent_link_send
from .models import Lead
from .services import LeadError


def consent_link_deliver_task(lead_id: str, broker_id: str, send_id: str) -> str:
    """Make and e-mail the consent link a broker asked for (enqueued by `consent_link_send` on commit, or
    scheduled for the opening of the lead's contact window)."""
    with service_context(budget="job"):
        return consent_link_deliver(lead_id=lead_id, broker_id=broker_id, send_id=send_id)


def consent_links_bulk_task(broker_id: str, user_id: int | None, lead_ids: list[str]) -> str:
    """Ask for a consent link for each lead of a bulk action (enqueued by leads/workday/bulk.py on commit): each
    through `consent_link_send` in the broker's own context, as if they had clicked it on the lead's page (its
    contact window, daily limit and suppression checks apply; a lead it refuses is counted, not retried)."""
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    asked, refused = 0, 0
    for lead_id in lead_ids:
        with broker_context(broker_id):
            lead = Lead.objects.for_broker(broker_id).filter(pk=lead_id).first()
            if lead is None:
                refused += 1
                continue
            try:
                consent_link_send(lead=lead, broker=broker_id, user=user)
            except LeadError:
                refused += 1
            else:
                asked += 1
    return f"{asked} consent link(s) asked for, {refused} refused"
