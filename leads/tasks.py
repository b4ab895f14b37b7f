"""django-q2 tasks of the leads app, thin like pipeline/tasks.py. They live here, not there, because leads
enqueues them by dotted name and never names the pipeline package above it."""

from __future__ import annotations

from equity_connect.db import service_context

from .consent.services import consent_link_deliver


def consent_link_deliver_task(lead_id: str, broker_id: str, send_id: str) -> str:
    """Make and e-mail the consent link a broker asked for (enqueued by `consent_link_send` on commit, or
    scheduled for the opening of the lead's contact window)."""
    with service_context(budget="job"):
        return consent_link_deliver(lead_id=lead_id, broker_id=broker_id, send_id=send_id)
