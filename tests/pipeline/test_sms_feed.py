"""The SMS feed: who may be texted (consent, verified mobile, suppression), quiet hours per channel, the daily
cap, and the feed limit shared with e-mail (or not, when SMS has its own)."""

from __future__ import annotations

import datetime as dt

import pytest

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.compliance.contact_windows import contact_window_open
from leads.models import Lead
from leads.suppressions.rules import SuppressionKind, SuppressionReason
from leads.suppressions.services import suppression_add
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.models import SmsMessage
from pipeline.sms.feed import first_message_text, sms_feeder_run
from pipeline.sms.twilio import TwilioClient
from tests.factories import BrokerFactory
from tests.pipeline import jobs_support, sms_support
from tests.pipeline.jobs_support import mv_refresh, queued_leads
from tests.pipeline.sms_support import SERVICE_SID, sms_lead

fake_twilio = sms_support.fake_twilio
fake_instantly = jobs_support.fake_instantly

MONDAY = dt.date(2026, 1, 5)
MONDAY_MORNING_LA = dt.datetime(2026, 1, 5, 17, 0, tzinfo=dt.UTC)  # 09:00 PST: the CA window (08-21) is open
MONDAY_NIGHT_LA = dt.datetime(2026, 1, 6, 6, 30, tzinfo=dt.UTC)  # 22:30 PST Monday: closed


def texted_numbers(fake) -> list[str]:
    return sorted(message["To"] for message in fake.sent())


@pytest.mark.django_db
def test_only_leads_with_sms_consent_and_a_verified_mobile_not_suppressed_are_texted(fake_twilio):
    broker = BrokerFactory(name="Dana Broker")
    ok = sms_lead(assigned_broker=broker, phone="+14155550101", first_name="Ada", property_address="12 Oak St")
    sms_lead(assigned_broker=broker, phone="+14155550102", consent_sms=False, consent_phone=True)  # no SMS consent
    sms_lead(assigned_broker=broker, phone="+14155550103", phone_verified=False, email_verified=True)  # unverified
    sms_lead(assigned_broker=broker, phone="+14155550104", melissa_payload={"line_type": "Landline"})
    dnc = sms_lead(assigned_broker=broker, phone="+14155550105")
    # E-mail can reach this one: the e-mail feed's, not texted.
    sms_lead(assigned_broker=broker, phone="+14155550106", consent_email=True, email_verified=True)
    with service_context():
        suppression_add(
            kind=SuppressionKind.PHONE, value=dnc.phone, reason=SuppressionReason.DNC_REGISTRY, source="test"
        )

    result = sms_feeder_run(now=MONDAY_MORNING_LA)

    assert result.status == "success", result.message
    assert result.data["texted"] == 1
    assert texted_numbers(fake_twilio) == ["+14155550101"]
    [sent] = fake_twilio.sent()
    assert sent["MessagingServiceSid"] == SERVICE_SID
    assert sent["StatusCallback"] == "https://ec.example.com/api/v1/webhooks/twilio"
    assert sent["Body"].startswith("Hi Ada, this is Dana Broker about your home on 12 Oak St.")
    with service_context():
        lead = Lead.objects.get(pk=ok.pk)
        assert lead.campaign_status == "active" and lead.added_to_campaign_at is not None
        message = SmsMessage.objects.get(lead=ok)
        assert message.twilio_sid == sent["sid"] and message.status == "queued"
        assert message.business_date == MONDAY
        assert PipelineEvent.objects.filter(event_type="sms_sent", lead_id=ok.pk).count() == 1

    # A second run texts nobody again: every request the fake ever got is the one above.
    again = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))
    assert again is None  # nobody waits: nothing runs, nothing is recorded
    assert len(fake_twilio.requests) == 1


@pytest.mark.django_db
def test_a_text_due_at_night_waits_for_the_morning_while_email_has_no_quiet_hours(fake_twilio):
    lead = sms_lead(phone="+14155550111")  # California

    night = sms_feeder_run(now=MONDAY_NIGHT_LA)

    assert night.data["texted"] == 0 and night.data["waiting_for_window"] == 1
    assert fake_twilio.requests == []
    with service_context():
        # Quiet hours are per channel: texts wait, e-mail has no window (no e-mail rows in the table).
        assert contact_window_open(lead, "email", MONDAY_NIGHT_LA)
        assert not contact_window_open(lead, "sms", MONDAY_NIGHT_LA)

    morning = sms_feeder_run(now=MONDAY_NIGHT_LA + dt.timedelta(hours=10))  # 08:30 PST Tuesday
    assert morning.data["texted"] == 1
    assert texted_numbers(fake_twilio) == ["+14155550111"]


@pytest.mark.django_db
def test_the_sms_daily_cap_holds_whatever_the_feed_limit(fake_twilio, settings):
    settings.FEEDER_DAILY_LIMIT = 100
    settings.SMS_DAILY_CAP = 2
    for n in range(4):
        sms_lead(phone=f"+1415555012{n}", lead_score=90 - n)

    first = sms_feeder_run(now=MONDAY_MORNING_LA)
    second = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))

    assert first.data["texted"] == 2
    assert second.status == "skipped" and "used up" in second.message
    assert texted_numbers(fake_twilio) == ["+14155550120", "+14155550121"]  # the best scores
    tuesday = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(days=1))
    assert tuesday.data["texted"] == 2
    assert len(fake_twilio.requests) == 4


@pytest.mark.django_db
def test_the_daily_limit_is_shared_by_sms_and_email_unless_sms_has_its_own(fake_twilio, fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 5
    settings.FEEDER_SMS_DAILY_LIMIT = None
    settings.SMS_DAILY_CAP = 100
    for n in range(3):
        sms_lead(phone=f"+1415555013{n}")
    queued_leads(10)
    mv_refresh()

    texts = sms_feeder_run(now=MONDAY_MORNING_LA)  # 09:00 Monday, before... or after: order does not matter
    emails = campaign_feeder_run(business_date=MONDAY)

    assert texts.data["texted"] == 3
    assert emails.data["limit"] == 2 and emails.data["fed"] == 2  # 5 shared, 3 already texted
    # The other order on Tuesday: e-mail first takes the whole limit, SMS then has none.
    for n in range(3):
        sms_lead(phone=f"+1415555014{n}")
    tuesday_emails = campaign_feeder_run(business_date=MONDAY + dt.timedelta(days=1))
    tuesday_texts = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(days=1))
    assert tuesday_emails.data["fed"] == 5
    assert tuesday_texts.status == "skipped"
    assert len(fake_twilio.sent()) == 3


@pytest.mark.django_db
def test_a_per_channel_sms_limit_is_apart_from_the_email_limit(fake_twilio, fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 5
    settings.FEEDER_SMS_DAILY_LIMIT = 2
    for n in range(3):
        sms_lead(phone=f"+1415555015{n}")
    queued_leads(10)
    mv_refresh()

    texts = sms_feeder_run(now=MONDAY_MORNING_LA)
    emails = campaign_feeder_run(business_date=MONDAY)

    assert texts.data["texted"] == 2
    assert emails.data["fed"] == 5  # SMS does not eat into the e-mail limit


@pytest.mark.django_db
def test_twilio_refusal_is_final_and_a_transient_failure_is_offered_again(fake_twilio):
    refused = sms_lead(phone="+14155550161", lead_score=90)
    later = sms_lead(phone="+14155550162", lead_score=80)
    fake_twilio.opted_out.add(refused.phone)
    fake_twilio.script("ok", "503", "503")  # the refused one is answered "ok"-step then 21610; the next 503 twice

    first = sms_feeder_run(now=MONDAY_MORNING_LA)

    assert first.data["refused"] == 1 and first.data["not_sent"] == 1
    with service_context():
        assert SmsMessage.objects.get(lead=refused).status == "failed"
        assert SmsMessage.objects.get(lead=later).status == "not_sent"
        assert Lead.objects.get(pk=later.pk).campaign_status == "queued"
    second = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))
    assert second.data["texted"] == 1
    assert fake_twilio.sends_to(refused.phone) == 1  # never asked again
    assert fake_twilio.sends_to(later.phone) == 3


@pytest.mark.django_db
def test_without_credentials_the_feed_is_a_dry_run(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    sms_lead(phone="+14155550171")
    result = sms_feeder_run(now=MONDAY_MORNING_LA)
    assert result.data["would_text"] == 1 and result.data["texted"] == 0
    with service_context():
        assert not SmsMessage.objects.exists()


def test_the_first_message_template_never_raises(settings):
    settings.SMS_FIRST_MESSAGE_TEMPLATE = "Hi {first_name} {unknown} {0} {"

    class Lead_:
        first_name, property_address, property_city, assigned_broker = "Ada", "", "", None

    assert first_message_text(Lead_()) == "Hi {first_name} {unknown} {0} {"
    settings.SMS_FIRST_MESSAGE_TEMPLATE = "Hi {first_name}, {broker_name} {unknown}"
    assert first_message_text(Lead_()) == "Hi Ada, your local advisor {unknown}"


def test_the_client_retries_transient_failures_and_not_a_refusal(fake_twilio_client_env=None):
    from tests.fakes.twilio import FakeTwilio

    with FakeTwilio() as fake:
        client = TwilioClient(
            api_url=fake.url,
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number="+18005550100",
            status_callback="",
            max_attempts=3,
            sleep=lambda seconds: None,
        )
        fake.script("429", "500")
        ok = client.send(to="+14155550181", body="hello")
        refused = client.send(to="not-a-number", body="hello")
        wrong = TwilioClient(
            api_url=fake.url, account_sid=fake.account_sid, auth_token="wrong", from_number="+18005550100"
        ).send(to="+14155550181", body="x")
    assert ok.ok and ok.attempts == 3 and ok.sid.startswith("SM")
    assert not refused.ok and refused.final and refused.error_code == 21211 and refused.attempts == 1
    assert not wrong.ok and wrong.status_code == 401
    assert fake.sends_to("+14155550181") == 4
