"""The consent e-mail: the link, who it is from, how to stop further e-mails, and our postal address (the
last two are what CAN-SPAM asks of every commercial e-mail). Plain text: it reads the same everywhere."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string

from ..models import Lead


def consent_link_message(*, lead: Lead, consent_url: str, unsubscribe_url: str) -> EmailMessage:
    """The e-mail to the lead's own address. `List-Unsubscribe` (with one-click POST, RFC 8058) lets mail
    clients offer their own unsubscribe button, which posts to the same page."""
    broker = lead.assigned_broker
    context = {
        "lead": lead,
        "broker": broker,
        "consent_url": consent_url,
        "unsubscribe_url": unsubscribe_url,
        "postal_address": settings.SENDER_POSTAL_ADDRESS.strip(),
        "ttl_days": settings.CONSENT_TOKEN_TTL_DAYS,
    }
    # One line whatever a name holds: a line break in a header is refused by Django.
    subject = " ".join(render_to_string("consent/email/link_subject.txt", context).split())
    return EmailMessage(
        subject=subject,
        body=render_to_string("consent/email/link_body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[lead.email],
        reply_to=[broker.email] if broker is not None and broker.email else None,
        headers={"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
