"""A consent e-mail waits for the lead's contact window (leads/consent/delivery.py): asked for at night, the request
is recorded at once and the task is scheduled in django-q2 for the window's opening; nothing is sent before, the
mail goes after. The moments are passed in, so nobody waits for a morning; what cannot take a moment (the portal's
request, django-q2's scheduler) is tested against a window closed all day today."""

from __future__ import annotations

import ast
import html
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule
from django_q.scheduler import scheduler

from equity_connect.db import broker_context, service_context
from equity_connect.models import PipelineEvent
from leads.compliance.zones import zones_of
from leads.consent.delivery import DELIVER_TASK
from leads.consent.services import consent_link_deliver, consent_link_send
from leads.models import ConsentToken, ContactWindow
from tests.equity_connect.test_settings import django_setting
from tests.factories import LeadFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("contact_windows", "axes_clean")]

NIGHT = datetime(2026, 1, 15, 3, tzinfo=UTC)  # Wednesday 14 January, 22:00 in New York
MORNING = datetime(2026, 1, 15, 13, tzinfo=UTC)  # Thursday 15 January, 08:00 in New York


@pytest.fixture(autouse=True)
def quiet_hours(settings):
    settings.CONSENT_EMAIL_WINDOW = "sms"


def _ask(lead, broker, capture, at=None):
    with capture(execute=True), broker_context(broker.pk):
        return consent_link_send(lead=lead, broker=broker, at=at)


def _schedules() -> list[Schedule]:
    return list(Schedule.objects.filter(func=DELIVER_TASK).order_by("id"))


def _queued() -> list[dict]:
    return [q.task for q in OrmQ.objects.order_by("id") if q.task["func"] == DELIVER_TASK]


def _deliver(schedule: Schedule, now: datetime) -> str:
    lead_id, broker_id, send_id = ast.literal_eval(schedule.args)
    with service_context():
        return consent_link_deliver(lead_id=lead_id, broker_id=broker_id, send_id=send_id, now=now)


def _events(lead, event_type) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(lead_id=lead.pk, event_type=event_type))


def test_a_link_asked_for_at_night_is_sent_when_the_window_opens(
    broker_a, client_for, django_capture_on_commit_callbacks
):
    lead = LeadFactory(assigned_broker=broker_a, property_state="NY")
    assert _ask(lead, broker_a, django_capture_on_commit_callbacks, at=NIGHT) == MORNING

    # The request is recorded now (it counts towards today's limit); the task waits in django-q2's schedule.
    (asked,) = _events(lead, "consent_link_requested")
    assert timezone.now() - asked.created_at < timedelta(minutes=1)
    assert asked.event_data["waits_until"] == MORNING.isoformat().replace("+00:00", "Z")
    assert asked.event_data["waits_until_local"] == "Thu 15 Jan 08:00 EST"
    (scheduled,) = _schedules()
    send_id = asked.event_data["send_id"]
    assert (scheduled.name, scheduled.schedule_type, scheduled.next_run) == (
        f"consent link {send_id}",
        Schedule.ONCE,
        MORNING,
    )
    assert ast.literal_eval(scheduled.args) == (str(lead.pk), str(broker_a.pk), send_id)
    assert _queued() == [] and mail.outbox == []
    page = client_for(broker_a).get(reverse("portal:lead_detail", kwargs={"lead_id": lead.pk})).content.decode()
    page = html.unescape(page)  # the timeline's phrases are escaped text (an apostrophe is &#x27;)
    assert "to be e-mailed when the lead's contact window opens (Thu 15 Jan 08:00 EST)" in page

    # Run before the opening (a clock that runs early): nothing is sent, the schedule stays for the opening.
    assert _deliver(scheduled, MORNING - timedelta(minutes=1)).startswith("waiting for the lead's contact window")
    assert mail.outbox == [] and _events(lead, "consent_link_sent") == []
    with service_context():
        assert not ConsentToken.objects.filter(lead=lead).exists()
    assert [(s.name, s.next_run) for s in _schedules()] == [(f"consent link {send_id}", MORNING)]

    # At the opening it is sent.
    assert _deliver(scheduled, MORNING) == "sent"
    (message,) = mail.outbox
    assert message.to == [lead.email]
    (sent,) = _events(lead, "consent_link_sent")
    assert sent.status == "success" and sent.event_data["send_id"] == send_id


def test_a_task_that_runs_after_the_window_closed_waits_for_the_next_opening(
    broker_a, django_capture_on_commit_callbacks
):
    lead = LeadFactory(assigned_broker=broker_a, property_state="NY")
    assert _ask(lead, broker_a, django_capture_on_commit_callbacks, at=MORNING) is None  # open: queued at once
    (task,) = _queued()
    assert _schedules() == []
    late = MORNING + timedelta(hours=13, minutes=30)  # 21:30 in New York: the queue ran late
    with service_context():
        assert import_string(task["func"])  # the task as the cluster would find it
        result = consent_link_deliver(
            lead_id=task["args"][0], broker_id=task["args"][1], send_id=task["args"][2], now=late
        )
    assert result.startswith("waiting") and mail.outbox == []
    (scheduled,) = _schedules()
    assert scheduled.next_run == MORNING + timedelta(days=1)
    assert _deliver(scheduled, MORNING + timedelta(days=1)) == "sent" and len(mail.outbox) == 1


def test_an_absentee_owner_gets_it_in_their_own_evening(broker_a, client_for, django_capture_on_commit_callbacks):
    # 22:00 in New York, where the property is, is 19:00 in California, where the owner lives.
    lead = LeadFactory(
        assigned_broker=broker_a,
        property_state="NY",
        mailing_address="200 Oak St",
        mailing_city="Los Angeles",
        mailing_state="CA",
        mailing_zip="90001",
    )
    assert _ask(lead, broker_a, django_capture_on_commit_callbacks, at=NIGHT) is None
    assert len(_queued()) == 1 and _schedules() == []
    page = client_for(broker_a).get(reverse("portal:lead_detail", kwargs={"lead_id": lead.pk})).content.decode()
    assert "<dt>Mailing address</dt><dd>200 Oak St<br>Los Angeles CA 90001</dd>" in page


def test_the_setting_chooses_whose_quiet_hours_consent_emails_keep(
    broker_a, settings, django_capture_on_commit_callbacks
):
    lead = LeadFactory(assigned_broker=broker_a, property_state="NY")
    settings.CONSENT_EMAIL_WINDOW = "email"  # the table's e-mail rows: none, so at once
    assert _ask(lead, broker_a, django_capture_on_commit_callbacks, at=NIGHT) is None
    settings.CONSENT_EMAIL_WINDOW = "phone"
    with service_context():
        ContactWindow.objects.filter(state="NY", channel="phone").update(start=time(10))
    nine = MORNING + timedelta(hours=1)  # 09:00 in New York: texts may go, calls not before 10:00
    assert _ask(lead, broker_a, django_capture_on_commit_callbacks, at=nine) == MORNING + timedelta(hours=2)
    assert [s.next_run for s in _schedules()] == [MORNING + timedelta(hours=2)] and len(_queued()) == 1


@pytest.mark.django_db(transaction=True)  # django-q2's scheduler closes a connection that is inside a transaction
def test_asked_for_in_the_portal_while_closed_django_q2_runs_it_only_when_due(broker_a, client_for):
    lead = LeadFactory(assigned_broker=broker_a, property_state="NY")
    new_york = zones_of("NY")[0]
    today = timezone.now().astimezone(new_york).date()
    with service_context():  # closed all day today (in New York), open tomorrow from 08:00
        ContactWindow.objects.filter(state="NY", channel="sms").update(
            days=[day for day in range(7) if day != today.weekday()]
        )
    response = client_for(broker_a).post(reverse("portal:lead_consent_link", kwargs={"lead_id": lead.pk}), follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "contact window is closed now: a consent link will be e-mailed to the lead" in page
    tomorrow_morning = datetime.combine(today + timedelta(days=1), time(8), tzinfo=new_york)
    (scheduled,) = _schedules()
    assert scheduled.next_run == tomorrow_morning

    scheduler(broker=get_broker())  # the cluster's scheduler: not due yet, nothing queued
    assert _queued() == [] and mail.outbox == []
    Schedule.objects.filter(pk=scheduled.pk).update(next_run=timezone.now() - timedelta(seconds=1))  # time passes
    scheduler(broker=get_broker())
    (task,) = _queued()
    assert not Schedule.objects.filter(pk=scheduled.pk).exists()  # a one-off schedule is gone once it fired
    lead_id, broker_id, send_id = task["args"]
    with service_context():
        assert (
            consent_link_deliver(lead_id=lead_id, broker_id=broker_id, send_id=send_id, now=tomorrow_morning) == "sent"
        )
    assert len(mail.outbox) == 1


def test_consent_email_window_setting():
    assert django_setting("CONSENT_EMAIL_WINDOW", {}).stdout.strip() == "sms"
    assert django_setting("CONSENT_EMAIL_WINDOW", {"CONSENT_EMAIL_WINDOW": "phone"}).stdout.strip() == "phone"
    refused = django_setting("CONSENT_EMAIL_WINDOW", {"CONSENT_EMAIL_WINDOW": "fax"})
    assert refused.returncode != 0 and "CONSENT_EMAIL_WINDOW must be one of" in refused.stderr
