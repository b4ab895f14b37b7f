"""A broker's notifications (leads/notifications.py): the trigger of migration 0018 adds one per reply,
appointment or consent of their lead; the job mails them in one e-mail per broker, at most one every 15
minutes, not when the broker switched it off; the portal's badge counts the unseen ones."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from equity_connect.db import broker_context, service_context
from equity_connect.events import record_event
from leads.models import BrokerNotification, BrokerPortalSettings
from leads.notifications import NOTIFIED_EVENTS, notifications_mail
from leads.preferences import broker_settings_update
from pipeline.tasks import broker_notifications_mail_task
from tests.factories import LeadFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]


def _event(event_type: str, lead, **data) -> None:
    with service_context():
        record_event(event_type, lead_id=lead.pk, broker_id=lead.assigned_broker_id, data=data)


def test_the_trigger_copies_exactly_the_notified_event_types():
    migration = importlib.import_module("pipeline.migrations.0027_sms_outbox_sequence_notifications")
    listed = re.search(r"NEW.event_type IN \(([^)]*)\)", migration.TRIGGER).group(1)
    assert {name.strip(" '") for name in listed.split(",")} == set(NOTIFIED_EVENTS)
    # And the trigger the database really has (on the partitioned parent, cloned onto each partition).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgname = 'trg_broker_notification_add' AND tgrelid = 'pipeline_events'::regclass"
        )
        [(definition,)] = cursor.fetchall()
    live = re.search(r"event_type\)::text = ANY \(\(?ARRAY\[([^\]]*)\]", definition)
    live_names = re.findall(r"'([a-z_]+)'", live.group(1)) if live else re.findall(r"'([a-z_]+)'", definition)
    assert set(live_names) == set(NOTIFIED_EVENTS), definition


def test_a_text_reply_notifies_the_broker_as_replied_by_text(broker_a, settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    ada = LeadFactory(assigned_broker=broker_a, first_name="Ada", last_name="Lovelace")
    _event("sms_replied", ada, reply_snippet="sealed", channel="sms")
    with service_context():
        [notification] = BrokerNotification.objects.filter(broker_id=broker_a.pk)
        assert notification.event_type == "sms_replied" and notification.lead_id == ada.pk
        mail.outbox.clear()
        notifications_mail(now=timezone.now())
    [message] = mail.outbox
    assert "Ada Lovelace replied by text" in message.subject + message.body


def test_two_events_in_the_window_make_one_mail_with_what_happened(broker_a, settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    ada = LeadFactory(assigned_broker=broker_a, first_name="ADA", last_name="LOVELACE", email="ada@example.net")
    bob = LeadFactory(assigned_broker=broker_a, first_name="Bob", last_name="Stone")
    _event("email_replied", ada, reply_snippet="Yes please call me")
    _event("appointment_booked", bob, outcome="appointment", appointment_at="2026-03-10T18:30:00+00:00")
    _event("lead_outcome", bob, outcome="no_answer")  # not a notification
    start = timezone.now()

    with service_context():
        counts = notifications_mail(now=start)
    assert counts["mails"] == 1 and counts["notifications"] == 2
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [broker_a.email]
    assert message.subject == "2 updates on your leads — Equity Connect"
    assert "Ada Lovelace replied to your e-mail" in message.body  # title case: stored ALL CAPS
    assert "Bob Stone booked an appointment" in message.body
    assert f"https://portal.example/portal/leads/{ada.pk}/" in message.body
    assert "https://portal.example/portal/settings/" in message.body
    assert "ada@example.net" not in message.body and "call me" not in message.body  # no contact data, no reply text

    # Within 15 minutes of that mail: a new event waits; after them, it goes alone.
    _event("consent_given", ada, channels=["email"])
    with service_context():
        assert notifications_mail(now=start + timedelta(minutes=5))["waiting"] == 1
    assert len(mail.outbox) == 1
    with service_context():
        assert notifications_mail(now=start + timedelta(minutes=15, seconds=1))["mails"] == 1
    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject == "Ada Lovelace gave consent to be contacted — Equity Connect"
    with service_context():
        assert notifications_mail(now=start + timedelta(hours=1))["mails"] == 0  # nothing new: no mail


def test_each_broker_gets_only_their_leads_and_a_switched_off_broker_none(broker_a, broker_b):
    _event("email_replied", LeadFactory(assigned_broker=broker_a, first_name="Ann", last_name="Own"))
    _event("email_replied", LeadFactory(assigned_broker=broker_b, first_name="Bea", last_name="Other"))
    with service_context():
        broker_settings_update(broker=broker_b, notify_by_email=False)
        counts = notifications_mail()
    assert counts["mails"] == 1 and counts["switched_off"] == 1
    assert [message.to for message in mail.outbox] == [[broker_a.email]]
    assert "Bea" not in mail.outbox[0].body


def test_the_scheduled_task_sends_them(broker_a):
    _event("consent_given", LeadFactory(assigned_broker=broker_a, first_name="Cy", last_name="Young"))
    assert "1 sent" in broker_notifications_mail_task()
    assert len(mail.outbox) == 1 and "Cy Young gave consent" in mail.outbox[0].body


def test_badge_counts_unseen_and_the_list_clears_it(client_for, broker_a, broker_b):
    lead = LeadFactory(assigned_broker=broker_a, first_name="Dee", last_name="Own")
    other = LeadFactory(assigned_broker=broker_b, first_name="Eve", last_name="Other")
    _event("email_replied", lead)
    _event("appointment_booked", lead)
    _event("email_replied", other)
    client = client_for(broker_a)
    page = client.get(reverse("portal:lead_list")).content.decode()
    assert re.search(r'id="notification-badge">.*?2<span class="visually-hidden"> new', page)

    listing = client.get(reverse("portal:notifications")).content.decode()
    assert "Dee Own</a> replied to your e-mail" in listing and "Eve" not in listing
    assert 'id="notification-badge"' not in client.get(reverse("portal:lead_list")).content.decode()
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT broker_id, seen_at IS NOT NULL FROM broker_notifications ORDER BY id")
        rows = cursor.fetchall()
    assert rows == [(broker_a.pk, True), (broker_a.pk, True), (broker_b.pk, False)]  # the other broker's untouched


def test_settings_page_switches_mails_off_for_this_broker_only(client_for, broker_a, broker_b):
    with service_context():
        broker_settings_update(broker=broker_b, notify_by_email=True, list_columns=["score"])
    client = client_for(broker_a)
    assert client.get(reverse("portal:settings")).status_code == 200
    response = client.post(reverse("portal:settings"), {})  # the box unticked
    assert response.status_code == 302
    with service_context():
        assert BrokerPortalSettings.objects.get(broker_id=broker_a.pk).notify_by_email is False
        other = BrokerPortalSettings.objects.get(broker_id=broker_b.pk)
    assert other.notify_by_email is True and other.list_columns == ["score"]


def test_rls_keeps_a_broker_to_their_own_rows(broker_a, broker_b):
    _event("email_replied", LeadFactory(assigned_broker=broker_b))
    with service_context():
        broker_settings_update(broker=broker_b, notify_by_email=True)
    with broker_context(broker_a.pk):
        assert not BrokerNotification.objects.exists()
        assert not BrokerPortalSettings.objects.exists()
        assert BrokerNotification.objects.update(seen_at=timezone.now()) == 0
    with pytest.raises(Exception, match="row-level security"), broker_context(broker_a.pk):
        BrokerPortalSettings.objects.create(broker_id=broker_b.pk, notify_by_email=False)


def test_a_mail_server_failure_keeps_the_batch_for_the_next_run(broker_a, settings):
    import socket

    with socket.socket() as probe:  # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    _event("email_replied", LeadFactory(assigned_broker=broker_a, first_name="Fay", last_name="Own"))
    with pytest.raises(Exception, match="1 failed"):
        broker_notifications_mail_task()
    with service_context():
        assert BrokerNotification.objects.filter(mailed_at__isnull=True).count() == 1
        assert not BrokerPortalSettings.objects.filter(notifications_mailed_at__isnull=False).exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert "1 sent" in broker_notifications_mail_task()
    assert len(mail.outbox) == 1
