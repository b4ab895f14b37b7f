"""Why a lead may or may not be contacted, channel by channel, in words a broker reads on the lead's page: the
lead's status, their consent for the channel, the suppression list's marks (`leads.suppressed_channels`) and
whether the contact point is verified. A read only: the feeder and the consent mail keep their own checks."""

from __future__ import annotations

from dataclasses import dataclass

from .display import CHANNEL_WORDS
from .models import Lead
from .statuses import CampaignStatus

CHANNELS = ("email", "sms", "phone")
# Statuses that close each channel: an unsubscribe or a bounce is about the e-mail address only.
STATUS_CLOSES = {
    CampaignStatus.DO_NOT_CONTACT: CHANNELS,
    CampaignStatus.UNSUBSCRIBED: ("email",),
    CampaignStatus.BOUNCED: ("email",),
}
STATUS_WORDS = {
    CampaignStatus.DO_NOT_CONTACT: "the lead is marked do-not-contact",
    CampaignStatus.UNSUBSCRIBED: "the lead unsubscribed from our e-mails",
    CampaignStatus.BOUNCED: "e-mails to the lead's address bounced",
}
REASON_WORDS = {
    "unsubscribe": "the address is on the suppression list: its owner unsubscribed",
    "bounce": "the address is on the suppression list: it bounced",
    "complaint": "on the suppression list: a spam complaint",
    "dnc_registry": "the number is on the Do Not Call registry",
    "litigator": "the number is on the litigator list",
    "customer_request": "on the suppression list: the person asked not to be contacted",
    "manual": "on the suppression list (added by staff)",
    "erasure": "on the suppression list: the person's data was erased at their request",
}


def _sentence(words: str) -> str:
    return words[:1].upper() + words[1:] + "."


@dataclass(frozen=True)
class ChannelState:
    channel: str
    label: str
    contactable: bool
    reasons: tuple[str, ...]


def lead_contactability(*, lead: Lead) -> list[ChannelState]:
    """Per channel (e-mail, text messages, phone calls): whether the lead may be contacted on it, and every reason
    it may not (an empty tuple when it may)."""
    states = []
    marks = lead.suppressed_channels if isinstance(lead.suppressed_channels, dict) else {}
    for channel in CHANNELS:
        reasons = []
        if channel in STATUS_CLOSES.get(lead.campaign_status, ()):
            reasons.append(_sentence(STATUS_WORDS[lead.campaign_status]))
        for reason in marks.get(channel) or ():
            reasons.append(_sentence(REASON_WORDS.get(reason, f"on the suppression list ({reason})")))
        point = lead.email if channel == "email" else lead.phone
        if not (point or "").strip():
            reasons.append("No e-mail address." if channel == "email" else "No phone number.")
        elif getattr(lead, "email_unconfirmed" if channel == "email" else "phone_unconfirmed", False):
            reasons.append(
                ("The e-mail address" if channel == "email" else "The phone number")
                + " was typed in the portal and is not confirmed yet (a partner file or a verification confirms it)."
            )
        elif not (lead.email_verified if channel == "email" else lead.phone_verified):
            reasons.append(
                "The e-mail address is not verified." if channel == "email" else "The phone number is not verified."
            )
        if not getattr(lead, f"consent_{channel}"):
            reasons.append(f"No consent to {CHANNEL_WORDS[channel]} (a consent link asks for it).")
        states.append(
            ChannelState(
                channel=channel,
                label=CHANNEL_WORDS[channel].capitalize(),
                contactable=not reasons,
                reasons=tuple(reasons),
            )
        )
    return states


def channel_closed(*, lead: Lead, channel: str) -> bool:
    """Whether the broker must not use the channel at all (status or suppression), whatever the consent: the
    page then shows the address or number without its mailto:/tel: link."""
    marks = lead.suppressed_channels if isinstance(lead.suppressed_channels, dict) else {}
    return channel in STATUS_CLOSES.get(lead.campaign_status, ()) or bool(marks.get(channel))
