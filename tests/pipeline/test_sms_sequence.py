"""The SMS sequence (pipeline/sms/sequence.py): follow-ups after the first text, only to leads that have not
answered and may still be texted, within the contact window and the daily cap; a reply or a STOP ends it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings

from equity_connect.db import service_context
from leads.models import Lead
from leads.suppressions.rules import SuppressionKind, SuppressionReason
from leads.suppressions.services import suppression_add
from pipeline.models import SmsMessage
from pipeline.sms.feed import sms_feeder_run
from tests.pipeline import sms_support
from tests.pipeline.sms_support import inbound, sid, sms_lead, twilio_post

fake_twilio = sms_support.fake_twilio

MONDAY_MORNING_LA = dt.datetime(2026, 1, 5, 17, 0, tzinfo=dt.UTC)  # 09:00 PST
SEQUENCE = [
    {"after_days": 3, "template": "Step one for {first_name}. Reply STOP to opt out."},
    {"after_days": 4, "template": "Step two for {first_name}. Reply STOP to opt out."},
]


@pytest.fixture
def sequence(settings):
    settings.SMS_SEQUENCE = SEQUENCE
    settings.SMS_DAILY_CAP = 100


def day(n: int, hours: float = 0) -> dt.datetime:
    return MONDAY_MORNING_LA + dt.timedelta(days=n, hours=hours)


def bodies_to(fake, number: str) -> list[str]:
    return [message["Body"] for message in fake.sent() if message["To"] == number]


def test_the_default_sequence_has_two_follow_ups():
    steps = django_settings.SMS_SEQUENCE
    assert len(steps) == 2 and all(step["after_days"] >= 1 and "STOP" in step["template"] for step in steps)


@pytest.mark.django_db
def test_the_follow_ups_go_when_due_and_the_sequence_ends_after_its_last_step(fake_twilio, sequence):
    lead = sms_lead(phone="+14155550301", first_name="Ada")

    sms_feeder_run(now=day(0))
    assert sms_feeder_run(now=day(2)) is None  # not due yet: nothing runs
    third = sms_feeder_run(now=day(3))
    assert third.data["queued_follow_ups"] == 1 and third.data["texted"] == 1
    assert sms_feeder_run(now=day(5)) is None  # step two is 4 days after step one
    sms_feeder_run(now=day(7))
    for later in (8, 20):
        assert sms_feeder_run(now=day(later)) is None

    texts = bodies_to(fake_twilio, lead.phone)
    assert len(texts) == 3
    assert texts[1] == "Step one for Ada. Reply STOP to opt out."
    assert texts[2] == "Step two for Ada. Reply STOP to opt out."
    with service_context():
        steps = list(SmsMessage.objects.filter(lead=lead).order_by("step").values_list("kind", "step", "send_state"))
        assert steps == [("first", 0, "sent"), ("followup", 1, "sent"), ("followup", 2, "sent")]
        assert Lead.objects.get(pk=lead.pk).campaign_status == "active"


@pytest.mark.django_db
@pytest.mark.parametrize("answer", ["Yes, please call me tomorrow", "STOP"])
def test_a_reply_or_a_stop_ends_the_sequence(client, fake_twilio, sequence, answer):
    lead = sms_lead(phone="+14155550302")
    sms_feeder_run(now=day(0))
    twilio_post(client, inbound(lead.phone, answer, sid(302)))

    assert sms_feeder_run(now=day(3)) is None  # nothing due: the sequence has ended
    sms_feeder_run(now=day(10))
    assert len(bodies_to(fake_twilio, lead.phone)) == 1


@pytest.mark.django_db
def test_no_follow_up_without_consent_or_when_suppressed(fake_twilio, sequence):
    withdrawn = sms_lead(phone="+14155550303")
    suppressed = sms_lead(phone="+14155550304")
    still = sms_lead(phone="+14155550305")
    sms_feeder_run(now=day(0))
    with service_context():
        Lead.objects.filter(pk=withdrawn.pk).update(consent_sms=False)
        suppression_add(
            kind=SuppressionKind.PHONE, value=suppressed.phone, reason=SuppressionReason.DNC_REGISTRY, source="test"
        )

    sms_feeder_run(now=day(3))

    assert len(bodies_to(fake_twilio, withdrawn.phone)) == 1
    assert len(bodies_to(fake_twilio, suppressed.phone)) == 1
    assert len(bodies_to(fake_twilio, still.phone)) == 2
    with service_context():  # not even queued: the sequence itself stops, not only the outbox's last check
        assert not SmsMessage.objects.filter(lead__in=[withdrawn, suppressed], step=1).exists()


@pytest.mark.django_db
def test_a_follow_up_waits_for_the_contact_window_and_the_daily_cap(fake_twilio, sequence, settings):
    first = sms_lead(phone="+14155550306", lead_score=90)
    second = sms_lead(phone="+14155550307", lead_score=80)
    sms_feeder_run(now=day(0))

    assert sms_feeder_run(now=day(3, hours=13.5)) is None  # 22:30 PST: closed for texts, nothing may go
    settings.SMS_DAILY_CAP = 1
    morning = sms_feeder_run(now=day(4))  # Friday 09:00: open, but room for one text only
    assert morning.data["queued_follow_ups"] == 1
    assert sms_feeder_run(now=day(4, hours=1)).status == "skipped"  # the cap is used up for the day
    sms_feeder_run(now=day(5))

    assert len(bodies_to(fake_twilio, first.phone)) == 2
    assert len(bodies_to(fake_twilio, second.phone)) == 2
