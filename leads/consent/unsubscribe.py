"""The unsubscribe link of every consent e-mail (`/unsubscribe?token=…`): it unsubscribes the address the
e-mail was sent to, on every lead that has it. The token names the lead and the sending (whose
`consent_link_sent` event recorded the address), never the address itself."""

from __future__ import annotations

import contextlib

from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_events
from equity_connect.models import PipelineEvent
from security.consent_tokens import ConsentTokenInvalid, unsubscribe_token_verify
from security.fields import decrypt_stored
from security.pii import EMAIL

from ..contact_indexes import indexes_of
from ..models import Lead
from ..statuses import CampaignStatus
from ..suppressions.rules import SuppressionInvalid, SuppressionKind, SuppressionReason
from ..suppressions.services import suppression_add
from .services import ConsentLinkError


def _unsubscribe_claims(token: str):
    try:
        return unsubscribe_token_verify(token)
    except ConsentTokenInvalid:
        raise ConsentLinkError("invalid") from None


def unsubscribe_token_check(*, token: str) -> None:
    """Raises ConsentLinkError("invalid") unless the unsubscribe token is genuine (the page's GET; no database)."""
    _unsubscribe_claims(token)


def email_unsubscribe(*, token: str) -> int:
    """Unsubscribe the address an e-mail was sent to: every lead with it becomes `unsubscribed` (a
    do-not-contact stays), each with an `unsubscribed` event, and the address goes on the suppression list.
    Returns how many leads changed (0 the second time). The address is the one the sending recorded; the
    lead's own when that record is missing."""
    claims = _unsubscribe_claims(token)
    with service_context():
        sent = (
            PipelineEvent.objects.filter(
                event_type="consent_link_sent",
                lead_id=claims.lead_id,
                status="success",
                event_data__send_id=str(claims.send_id),
            )
            .values_list("event_data__to", flat=True)
            .first()
        )
        if sent is None:
            sent = Lead.objects.filter(pk=claims.lead_id).values_list("email", flat=True).first()
        else:  # the sending recorded the address encrypted (leads/consent/services.py)
            sent = decrypt_stored(sent, EMAIL)
        address = (sent or "").strip().lower()
        if not address:
            return 0
        now, events = timezone.now(), []
        matching = Lead.objects.filter(email_bidx__in=indexes_of(address, EMAIL))
        for lead in matching.select_for_update().order_by("id"):
            if lead.campaign_status in (CampaignStatus.UNSUBSCRIBED, CampaignStatus.DO_NOT_CONTACT):
                continue
            Lead.objects.filter(pk=lead.pk).update(campaign_status=CampaignStatus.UNSUBSCRIBED, updated_at=now)
            data = {
                "via": "unsubscribe_link",
                "send_id": str(claims.send_id),
                "campaign_status": {"from": lead.campaign_status, "to": CampaignStatus.UNSUBSCRIBED},
            }
            events.append(("unsubscribed", {"lead_id": lead.pk, "broker_id": lead.assigned_broker_id, "data": data}))
        record_events(events)
        # On the suppression list too: every other lead with the address, and every future upload of it.
        # (An address the list cannot hold is left out: the leads' own status still stops them.)
        with contextlib.suppress(SuppressionInvalid):
            suppression_add(
                kind=SuppressionKind.EMAIL,
                value=address,
                reason=SuppressionReason.UNSUBSCRIBE,
                source="unsubscribe_link",
            )
    return len(events)
