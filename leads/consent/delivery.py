"""When a consent e-mail goes, and how its task is queued: at once inside the lead's contact window, else once at
the window's opening (a django-q2 schedule, which the cluster turns into the task when its time has passed).

Instantly's campaign schedule decides when campaign e-mails land; this is for the e-mails we send ourselves.
They follow the lead's window on the channel CONSENT_EMAIL_WINDOW names: by default the quiet hours of text
messages, because an e-mail, like a text, sounds on the lead's phone.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from ..compliance.contact_windows import next_contact_window

DELIVER_TASK = "leads.tasks.consent_link_deliver_task"


def consent_mail_opening(lead, at: datetime) -> datetime | None:
    """None when a consent e-mail may go to the lead at `at`, else the moment it may (the next opening of the
    lead's contact window). Raises NoContactWindow when it never may."""
    opening = next_contact_window(lead, settings.CONSENT_EMAIL_WINDOW, at)
    return opening if opening > at else None


def consent_link_delivery_enqueue(args: tuple[str, str, str], *, at: datetime | None = None) -> None:
    """Queue the task that mails a consent link ((lead, broker, send) ids): now, or once at `at`. The schedule
    is named after the send, so scheduling the same send again replaces it."""
    name = f"consent link {args[2]}"
    if at is None:
        async_task(DELIVER_TASK, *args, task_name=name, group="consent")
        return
    with transaction.atomic():
        Schedule.objects.filter(name=name).delete()
        schedule(
            DELIVER_TASK,
            *args,
            name=name,
            schedule_type=Schedule.ONCE,
            next_run=at,
            q_options={"task_name": name, "group": "consent"},
        )
