"""Read paths of a broker's working day: their follow-ups, saved views, which leads have an appointment booked,
and "My day". Scoped by the broker like leads/selectors.py; row-level security is the second wall."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..models import Lead
from ..statuses import NEVER_CONTACT_STATUSES, CampaignStatus
from .models import FollowUp, SavedView

# A lead shows as "Appointment booked" when the latest of these events about it is an `appointment_booked` (a
# later outcome, e.g. "no answer" at the appointment, ends it) and it has not converted or left the campaign.
OUTCOME_EVENTS = ("appointment_booked", "lead_outcome")
APPOINTMENT_ENDED_STATUSES = (*NEVER_CONTACT_STATUSES, CampaignStatus.CONVERTED)
# How far back My day looks for booked appointments (an appointment is booked ahead, seldom this far).
APPOINTMENT_LOOKBACK = timedelta(days=180)
# My day's "new replies": replies since the start of yesterday, the broker's calendar.
REPLY_DAYS = 2
MY_DAY_ROWS = 200

_LATEST_OUTCOMES = """
SELECT DISTINCT ON (lead_id) lead_id, event_type, event_data->>'appointment_at'
  FROM pipeline_events
 WHERE lead_id = ANY(%s::uuid[]) AND event_type = ANY(%s::text[])
 ORDER BY lead_id, created_at DESC, id DESC
"""


def lead_follow_ups(*, lead: Lead, limit: int = 50) -> list[FollowUp]:
    """The lead's follow-ups (RLS: the calling broker's), open ones first by due date, then the done ones."""
    open_ = list(FollowUp.objects.filter(lead_id=lead.pk, done_at__isnull=True).order_by("due_date", "id")[:limit])
    done = list(FollowUp.objects.filter(lead_id=lead.pk, done_at__isnull=False).order_by("-done_at")[:limit])
    return open_ + done


def saved_views(*, broker) -> list[SavedView]:
    return list(SavedView.objects.filter(broker_id=getattr(broker, "pk", broker)).order_by("name", "id"))


def saved_view_get(*, broker, view_id) -> SavedView:
    """One of the broker's views; SavedView.DoesNotExist for any other (or an id that is not a number)."""
    try:
        view_id = int(view_id)
    except (TypeError, ValueError):
        raise SavedView.DoesNotExist from None
    return SavedView.objects.get(pk=view_id, broker_id=getattr(broker, "pk", broker))


def saved_view_default(*, broker) -> SavedView | None:
    return SavedView.objects.filter(broker_id=getattr(broker, "pk", broker), is_default=True).first()


def appointments_booked(*, leads) -> dict:
    """{lead id: the appointment's time (or None when unreadable)} for those of `leads` whose latest outcome event
    is an `appointment_booked` and which have not converted or left the campaign since. One query for a page."""
    candidates = [lead.pk for lead in leads if lead.campaign_status not in APPOINTMENT_ENDED_STATUSES]
    if not candidates:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_LATEST_OUTCOMES, [[str(pk) for pk in candidates], list(OUTCOME_EVENTS)])
        rows = cursor.fetchall()
    return {lead_id: parse_datetime(at or "") for lead_id, kind, at in rows if kind == "appointment_booked"}


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in `zone`."""
    start = datetime.combine(day, time.min, zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, zone)


@dataclass
class MyDay:
    today: date
    follow_ups: list  # FollowUp, due today or overdue, open, with their lead
    replies: list  # Lead
    appointments: list  # (appointment time, Lead), today

    @property
    def empty(self) -> bool:
        return not (self.follow_ups or self.replies or self.appointments)


def my_day(*, broker, zone: ZoneInfo, now: datetime | None = None) -> MyDay:
    """The built-in "My day" view, in the broker's zone: open follow-ups due today or overdue, the leads that
    replied since the start of yesterday, and the appointments booked for today."""
    now = now or timezone.now()
    today = now.astimezone(zone).date()
    start, end = day_bounds(today, zone)
    broker_id = getattr(broker, "pk", broker)
    follow_ups = list(
        FollowUp.objects.filter(broker_id=broker_id, done_at__isnull=True, due_date__lte=today, lead__merged_into=None)
        .select_related("lead")
        .order_by("due_date", "id")[:MY_DAY_ROWS]
    )
    replies = list(
        Lead.objects.for_broker(broker_id)
        .live()
        .filter(last_reply_at__gte=day_bounds(today - timedelta(days=REPLY_DAYS - 1), zone)[0])
        .order_by("-last_reply_at", "-id")[:MY_DAY_ROWS]
    )
    appointments = _appointments_between(broker_id=broker_id, start=start, end=end, now=now)
    return MyDay(today=today, follow_ups=follow_ups, replies=replies, appointments=appointments)


def _appointments_between(*, broker_id, start: datetime, end: datetime, now: datetime) -> list:
    """(time, lead) of the broker's leads whose current appointment (`appointments_booked`) falls in [start, end)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT lead_id FROM pipeline_events"
            " WHERE event_type = 'appointment_booked' AND broker_id = %s AND created_at >= %s AND lead_id IS NOT NULL"
            " AND (event_data->>'appointment_at') IS NOT NULL",
            [str(broker_id), now - APPOINTMENT_LOOKBACK],
        )
        lead_ids = [row[0] for row in cursor.fetchall()]
    if not lead_ids:
        return []
    leads = list(Lead.objects.for_broker(broker_id).live().filter(pk__in=lead_ids))
    booked = appointments_booked(leads=leads)
    rows = [(booked[lead.pk], lead) for lead in leads if booked.get(lead.pk) and start <= booked[lead.pk] < end]
    return sorted(rows, key=lambda row: (row[0], str(row[1].pk)))[:MY_DAY_ROWS]
