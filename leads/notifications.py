"""What a broker is told about: a lead of theirs replied (by e-mail or text), booked an appointment or gave consent.

A trigger on `pipeline_events` adds a `broker_notifications` row for each such event (migration 0018), whoever
recorded it. The portal shows the broker's unseen count as a badge and lists them (`/portal/notifications/`);
the batch job (`notifications_mail`, every 5 minutes: pipeline/tasks.py) e-mails each broker who has new ones
and whose switch is on (leads/preferences.py) one message with all of them, at most one every
NOTIFICATION_MAIL_INTERVAL, so a burst of replies makes one e-mail. The e-mail names the lead and what happened,
with a link to the lead's page: no e-mail address, phone or reply text leaves in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Count, Min
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from equity_connect.events import record_event
from security.models import Broker

from .display import absolute_time, broker_zone, title_if_shouting
from .models import BrokerNotification, BrokerPortalSettings, Lead

logger = logging.getLogger(__name__)

# The event types the notification trigger copies (pipeline migration 0026; a test compares them).
NOTIFIED_EVENTS = {
    "email_replied": "replied to your e-mail",
    "sms_replied": "replied by text",
    "appointment_booked": "booked an appointment",
    "consent_given": "gave consent to be contacted",
}
NOTIFICATION_MAIL_INTERVAL = timedelta(minutes=15)
MAIL_MAX_ITEMS = 100  # more than this in one batch: the mail says how many more, the portal lists them all


@dataclass(frozen=True)
class NotificationItem:
    id: int
    lead_id: object
    lead_name: str
    event_type: str
    what: str
    created_at: datetime
    seen: bool


def _items(rows, names: dict) -> list[NotificationItem]:
    return [
        NotificationItem(
            id=row.id,
            lead_id=row.lead_id,
            lead_name=names.get(row.lead_id) or "A lead",
            event_type=row.event_type,
            what=NOTIFIED_EVENTS.get(row.event_type, row.event_type.replace("_", " ")),
            created_at=row.created_at,
            seen=row.seen_at is not None,
        )
        for row in rows
    ]


def _lead_names(lead_ids) -> dict:
    return {
        lead_id: title_if_shouting(" ".join(part for part in (first, last) if part)) or "(no name)"
        for lead_id, first, last in Lead.objects.filter(pk__in=set(lead_ids)).values_list(
            "id", "first_name", "last_name"
        )
    }


def notifications_unseen_count(*, broker) -> int:
    """The portal's badge: the broker's notifications not seen yet."""
    return BrokerNotification.objects.filter(broker_id=broker.pk, seen_at__isnull=True).count()


def notifications_recent(*, broker, limit: int = 50) -> list[NotificationItem]:
    """The broker's latest notifications, newest first, each with its lead's name (read through RLS: a lead no
    longer theirs reads as "A lead")."""
    rows = list(BrokerNotification.objects.filter(broker_id=broker.pk).order_by("-created_at", "-id")[:limit])
    return _items(rows, _lead_names(row.lead_id for row in rows))


def notifications_mark_seen(*, broker) -> int:
    """Mark every notification of the broker seen (opening the list does). Returns how many."""
    return BrokerNotification.objects.filter(broker_id=broker.pk, seen_at__isnull=True).update(seen_at=timezone.now())


def notification_message(*, broker: Broker, items: list[NotificationItem], more: int = 0) -> EmailMessage:
    """The one e-mail of a batch to the broker's own address."""
    zone = broker_zone(broker)
    base = settings.PORTAL_BASE_URL.rstrip("/")
    context = {
        "broker": broker,
        "items": [
            {
                "lead_name": item.lead_name,
                "what": item.what,
                "when": absolute_time(item.created_at, zone),
                "url": base + reverse("portal:lead_detail", kwargs={"lead_id": item.lead_id}),
            }
            for item in items
        ],
        "more": more,
        "count": len(items) + more,
        "notifications_url": base + reverse("portal:notifications"),
        "settings_url": base + reverse("portal:settings"),
    }
    subject = " ".join(render_to_string("portal/email/notifications_subject.txt", context).split())
    return EmailMessage(
        subject=subject,
        body=render_to_string("portal/email/notifications_body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[broker.email],
    )


def notifications_mail(*, now: datetime | None = None) -> dict[str, int]:
    """E-mail each broker their notifications not mailed yet, one message per broker, at most one every
    NOTIFICATION_MAIL_INTERVAL (a broker mailed more recently waits for the next run). A broker who switched
    e-mails off, or is inactive, gets none: their rows are marked handled (still listed in the portal). Each
    broker's batch is its own savepoint: a mail that fails leaves that broker's rows for the next run. Records
    `notifications_mailed` per mail. Needs the service context (the job's). Returns counts."""
    now = now or timezone.now()
    counts = {"mails": 0, "notifications": 0, "waiting": 0, "switched_off": 0, "failed": 0}
    pending = (
        BrokerNotification.objects.filter(mailed_at__isnull=True)
        .values("broker_id")
        .annotate(count=Count("id"), first=Min("created_at"))
    )
    switches = {
        row.broker_id: row
        for row in BrokerPortalSettings.objects.filter(broker_id__in=[entry["broker_id"] for entry in pending])
    }
    for entry in pending:
        broker_id = entry["broker_id"]
        broker = Broker.objects.filter(pk=broker_id).first()
        preference = switches.get(broker_id)
        unmailed = BrokerNotification.objects.filter(broker_id=broker_id, mailed_at__isnull=True)
        if broker is None or not broker.active or (preference is not None and not preference.notify_by_email):
            counts["switched_off"] += unmailed.update(mailed_at=now)
            continue
        last = preference.notifications_mailed_at if preference is not None else None
        if last is not None and now - last < NOTIFICATION_MAIL_INTERVAL:
            counts["waiting"] += entry["count"]
            continue
        rows = list(unmailed.order_by("created_at", "id"))
        shown = rows[:MAIL_MAX_ITEMS]
        items = _items(shown, _lead_names(row.lead_id for row in shown))
        try:
            with transaction.atomic():
                BrokerNotification.objects.filter(pk__in=[row.pk for row in rows]).update(mailed_at=now)
                BrokerPortalSettings.objects.update_or_create(
                    broker_id=broker_id, defaults={"notifications_mailed_at": now}
                )
                record_event("notifications_mailed", broker_id=broker_id, data={"notifications": len(rows)})
                notification_message(broker=broker, items=items, more=len(rows) - len(shown)).send()
        except Exception:  # a mail server's failure: this broker's batch waits for the next run
            logger.exception("notification mail to broker %s failed", broker_id)
            counts["failed"] += 1
            continue
        counts["mails"] += 1
        counts["notifications"] += len(rows)
    return counts
