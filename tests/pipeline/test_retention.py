"""The daily retention job: rows of various ages, each part's count in the job's event, and the 5-year floor of
consent and access records (refused at start-up and by the database functions)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import LeadAccessRecord, LeadConsentAudit
from pipeline.models import LeadStaging, PipelineDLQ, SmsMessage, WebhookDelivery
from pipeline.tasks import retention_task
from security.pii import PHONE, codec
from tests import pg
from tests.factories import (
    LeadAccessRecordFactory,
    LeadFactory,
    LeadStagingFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    UploadFactory,
    WebhookDeliveryFactory,
    backdate_events,
)
from tests.pipeline.ingest_helpers import ROOT

pytestmark = pytest.mark.django_db


def days_ago(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def consent_record(lead, *, age_days: int) -> int:
    """A consent record created `age_days` ago (INSERT may name created_at; nobody may change it later)."""
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO lead_consent_audit (lead_id, consent, channels, consent_text, consent_text_version, method,"
            " ip_address, user_agent, token_hash, utm_source, utm_medium, utm_campaign, utm_term, utm_content,"
            " created_at) VALUES (%s, true, '{email}', 'text', 'v', 'form', '192.0.2.1', 'ua', '', '', '', '', '',"
            " '', %s) RETURNING id",
            [lead.pk, days_ago(age_days)],
        )
        return cursor.fetchone()[0]


def test_the_retention_job_removes_what_is_past_each_period_and_counts_it():
    lead = LeadFactory()
    done, running = UploadFactory(status="done"), UploadFactory(status="processing")
    old_dlq = PipelineDLQFactory(line_number=7, payload={"email": "old@example.com"}, reason="no dedupe key")
    new_dlq = PipelineDLQFactory(payload={"email": "new@example.com"})
    old_staged, old_running, new_staged = (
        LeadStagingFactory(upload=done),
        LeadStagingFactory(upload=running),
        LeadStagingFactory(upload=done),
    )
    old_delivery, new_delivery = WebhookDeliveryFactory(), WebhookDeliveryFactory()
    old_event = PipelineEventFactory(event_type="lead_created", event_data={"email": "old@example.com"})
    new_event = PipelineEventFactory(event_type="lead_created", event_data={"email": "new@example.com"})
    LeadAccessRecordFactory(created_at=days_ago(1827))
    kept_access = LeadAccessRecordFactory(created_at=days_ago(1800))
    consent_record(lead, age_days=2560)
    kept_consent = consent_record(lead, age_days=2000)
    with service_context():
        PipelineDLQ.objects.filter(pk=old_dlq.pk).update(created_at=days_ago(91))
        LeadStaging.objects.filter(pk__in=[old_staged.pk, old_running.pk]).update(created_at=days_ago(8))
        WebhookDelivery.objects.filter(pk=old_delivery.pk).update(received_at=days_ago(91))
        backdate_events(PipelineEvent.objects.filter(pk=old_event.pk), days_ago(366))

    message = retention_task()

    assert message == (
        "retention: 1 dlq_payloads_redacted, 1 staging_rows_deleted, 1 webhook_deliveries_deleted, "
        "1 event_details_emptied, 0 event_partitions_dropped, 0 events_deleted, 1 access_records_deleted, "
        "1 consent_records_deleted, 0 sms_bodies_emptied"
    )
    with service_context():
        old_dlq.refresh_from_db()
        assert (old_dlq.payload, old_dlq.reason, old_dlq.line_number) == (
            {"_redacted": "retention"},
            "no dedupe key",
            7,
        )
        assert PipelineDLQ.objects.get(pk=new_dlq.pk).payload == {"email": "new@example.com"}
        assert set(LeadStaging.objects.values_list("pk", flat=True)) == {old_running.pk, new_staged.pk}
        assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [new_delivery.pk]
        assert PipelineEvent.objects.get(pk=old_event.pk).event_data == {}
        assert PipelineEvent.objects.get(pk=new_event.pk).event_data == {"email": "new@example.com"}
        assert list(LeadAccessRecord.objects.values_list("pk", flat=True)) == [kept_access.pk]
        assert list(LeadConsentAudit.objects.values_list("pk", flat=True)) == [kept_consent]
        run = PipelineEvent.objects.filter(event_type="job_run", event_data__job="retention").get()
        assert run.event_data["consent_records_deleted"] == 1 and run.event_data["dlq_payloads_redacted"] == 1

    assert retention_task().startswith("retention: 0 dlq_payloads_redacted, 0 staging_rows_deleted")  # idempotent


def test_a_retention_setting_below_the_floor_fails_in_the_database_too(settings):
    lead = LeadFactory()
    consent_record(lead, age_days=1000)
    settings.CONSENT_RECORD_RETENTION_DAYS = 365  # past the start-up check (tests change settings at will)

    with pytest.raises(Exception, match=r"retention: FAILED: .*kept at least 1826 days"):
        retention_task()
    with service_context():
        assert LeadConsentAudit.objects.count() == 1


@pytest.mark.parametrize("setting", ["ACCESS_RECORD_RETENTION_DAYS", "CONSENT_RECORD_RETENTION_DAYS"])
def test_a_retention_setting_below_five_years_stops_the_start_up(setting):
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test", setting: "1825"},
        capture_output=True,
        text=True,
    )
    assert started.returncode != 0
    assert f"{setting} is 1825: consent and access records are kept at least 1826 days" in started.stderr


def month_start(months_from_now: int) -> dt.date:
    today = timezone.now().astimezone(dt.UTC).date()
    year, month = divmod(today.year * 12 + today.month - 1 + months_from_now, 12)
    return dt.date(year, month + 1, 1)


@pytest.fixture
def old_months():
    """Partitions for the months 20 and 12 months ago (created by the owner, as the migration made the first
    ones); whatever of them is left is dropped afterwards (a transactional test commits them)."""
    names = [f"pipeline_events_{month_start(offset):%Y_%m}" for offset in (-20, -12)]
    with pg.connect(admin=True) as owner:
        for offset in (-20, -12):
            owner.execute("SELECT pipeline_events_partition_create(%s)", [month_start(offset)])
    yield names
    with pg.connect(admin=True) as owner:
        for name in names:
            owner.execute(f"DROP TABLE IF EXISTS {name}")


def event_at(when: dt.datetime) -> int:
    event = PipelineEventFactory(event_type="lead_created")
    with service_context():
        backdate_events(PipelineEvent.objects.filter(pk=event.pk), when)
    return event.pk


@pytest.mark.django_db(transaction=True)
def test_the_retention_job_drops_the_months_older_than_the_event_retention(old_months, settings):
    settings.EVENT_RETENTION_DAYS = 400
    dropped, kept = old_months
    in_dropped = [
        event_at(timezone.make_aware(dt.datetime.combine(month_start(-20), dt.time(hour)), dt.UTC)) for hour in (1, 2)
    ]
    in_kept = event_at(timezone.make_aware(dt.datetime.combine(month_start(-12), dt.time(3)), dt.UTC))
    old_in_default = event_at(days_ago(500))  # no month partition for it: in the DEFAULT partition
    recent_in_default = event_at(days_ago(300))
    recent = event_at(timezone.now())

    message = retention_task()

    assert "1 event_partitions_dropped, 3 events_deleted" in message
    with service_context():
        remaining = set(PipelineEvent.objects.filter(event_type="lead_created").values_list("pk", flat=True))
        run = PipelineEvent.objects.get(event_type="job_run", event_data__job="retention")
    assert remaining == {in_kept, recent_in_default, recent}
    assert not set(in_dropped) & remaining and old_in_default not in remaining
    assert (run.event_data["event_partitions_dropped"], run.event_data["events_deleted"]) == (1, 3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s), to_regclass(%s)::text", [dropped, kept])
        assert cursor.fetchone() == (None, kept)
    assert "0 event_partitions_dropped, 0 events_deleted" in retention_task()


def test_the_event_partitions_drop_refuses_to_keep_less_than_a_day(settings):
    settings.EVENT_RETENTION_DAYS = 0  # past the start-up check (tests change settings at will)

    with pytest.raises(Exception, match=r"retention: FAILED: .*keep at least 1 day"):
        retention_task()


def test_an_event_retention_below_the_detail_retention_stops_the_start_up():
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            **__import__("os").environ,
            "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test",
            "EVENT_DETAIL_RETENTION_DAYS": "400",
            "EVENT_RETENTION_DAYS": "399",
        },
        capture_output=True,
        text=True,
    )
    assert started.returncode != 0
    assert "EVENT_RETENTION_DAYS is 399: events are kept at least as long as their detail" in started.stderr


def test_the_retention_job_empties_text_bodies_older_than_their_period(settings):
    settings.SMS_BODY_RETENTION_DAYS = 30
    lead = LeadFactory()
    old_sent, old_reply, new_reply = (
        _text(lead, "outbound", "first", "Hi Ada, this is Dana", "SM" + "1" * 32),
        _text(lead, "inbound", "reply", "Yes, call me at 5, my code is 1234", "SM" + "2" * 32),
        _text(lead, "inbound", "reply", "Thanks", "SM" + "3" * 32),
    )
    with service_context():
        SmsMessage.objects.filter(pk__in=[old_sent.pk, old_reply.pk]).update(created_at=days_ago(31))
        stored = _stored_body(old_reply.pk)
        assert stored and "1234" not in stored  # encrypted at rest before, too

    retention_task()

    with service_context():
        old_reply.refresh_from_db()
        assert old_reply.body == "" and old_reply.body_erased_at is not None
        assert old_reply.twilio_sid == "SM" + "2" * 32 and old_reply.status == "received"  # the row stays
        assert SmsMessage.objects.get(pk=old_sent.pk).body == ""
        assert SmsMessage.objects.get(pk=new_reply.pk).body == "Thanks"
        assert "1234" not in (_stored_body(old_reply.pk) or "")
        run = PipelineEvent.objects.filter(event_type="job_run", event_data__job="retention").get()
        assert run.event_data["sms_bodies_emptied"] == 2
    assert retention_task().endswith("0 sms_bodies_emptied")  # once only


def _text(lead, direction: str, kind: str, body: str, sid: str) -> SmsMessage:
    with service_context():
        return SmsMessage.objects.create(
            direction=direction,
            kind=kind,
            lead=lead,
            phone="+14155550401",
            phone_bidx=codec().blind_index("+14155550401", PHONE),
            body=body,
            twilio_sid=sid,
            status="received" if direction == "inbound" else "queued",
        )


def _stored_body(message_id: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM sms_messages WHERE id = %s", [message_id])
        return cursor.fetchone()[0]
