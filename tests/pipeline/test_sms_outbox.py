"""The SMS outbox: a text is sent exactly once or shown to ops. A real sender process killed with SIGKILL after
Twilio took its text (or before), a read timeout, and a Twilio that cannot say — never a second text."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.models import SmsMessage
from pipeline.sms.feed import sms_feeder_run
from tests.factories import StaffUserFactory
from tests.pipeline import sms_support
from tests.pipeline.sms_support import SERVICE_SID, sms_lead
from tests.processes import app_env

fake_twilio = sms_support.fake_twilio

ROOT = Path(__file__).resolve().parents[2]
MONDAY_MORNING_LA = dt.datetime(2026, 1, 5, 17, 0, tzinfo=dt.UTC)  # 09:00 PST: the CA window is open
SENDER = (
    "import datetime as dt; from pipeline.sms.feed import sms_feeder_run; "
    "print(sms_feeder_run(now=dt.datetime(2026, 1, 5, 17, 0, tzinfo=dt.UTC)))"
)


def _sender_process(fake, tmp_path) -> subprocess.Popen:
    """`manage.py shell -c <one SMS feed run>` in a process of its own, against the test database and the fake."""
    env = app_env(
        tmp_path,
        TWILIO_API_URL=fake.url,
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID,
        TWILIO_FROM_NUMBER="",
        TWILIO_WEBHOOK_BASE_URL=sms_support.BASE_URL,
        TWILIO_MAX_ATTEMPTS="1",
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", SENDER],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _killed_sender(fake, tmp_path, step: str) -> None:
    fake.script(step)
    sender = _sender_process(fake, tmp_path)
    fake.kill_pid = sender.pid
    _, err = sender.communicate(timeout=120)
    assert sender.returncode == -9, err.decode()[-2000:]  # SIGKILL, by the fake, mid-send


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_sender_killed_after_twilio_took_the_text_is_reconciled_not_sent_again(fake_twilio, settings, tmp_path):
    lead = sms_lead(phone="+14155550201")

    _killed_sender(fake_twilio, tmp_path, "kill")  # Twilio accepted the text; the sender died before recording it

    assert fake_twilio.sends_to(lead.phone) == 1
    with service_context():
        [message] = SmsMessage.objects.filter(lead=lead)
        assert message.send_state == "sending" and message.twilio_sid is None  # committed before Twilio was asked
        assert message.idempotency_key
    settings.SMS_RECONCILE_AFTER_SECONDS = 0
    rerun = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))

    assert rerun.data["reconciled_sent"] == 1 and rerun.data["texted"] == 0, rerun.message
    [sent] = fake_twilio.sent()
    assert fake_twilio.sends_to(lead.phone) == 1  # one text at Twilio, not two
    [read] = fake_twilio.reads()  # the reconciliation asked Twilio, and it was recorded
    assert "To=%2B14155550201" in read["path"] and "DateSent%3E%3D=" in read["path"]
    with service_context():
        message.refresh_from_db()
        assert message.send_state == "sent" and message.twilio_sid == sent["sid"]
        assert Lead.objects.get(pk=lead.pk).campaign_status == "active"
        [event] = PipelineEvent.objects.filter(event_type="sms_sent", lead_id=lead.pk)
        assert event.event_data["reconciled"] is True
    assert sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=30)) is None  # nothing left to do
    assert fake_twilio.sends_to(lead.phone) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_sender_killed_before_twilio_took_the_text_sends_it_once_after_reconciling(fake_twilio, settings, tmp_path):
    lead = sms_lead(phone="+14155550202")

    _killed_sender(fake_twilio, tmp_path, "kill_first")  # the sender died; Twilio has nothing

    assert fake_twilio.sent() == []
    settings.SMS_RECONCILE_AFTER_SECONDS = 0
    rerun = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))

    assert rerun.data["reconciled_not_sent"] == 1 and rerun.data["texted"] == 1, rerun.message
    assert len(fake_twilio.sent()) == 1
    with service_context():
        states = sorted(SmsMessage.objects.filter(lead=lead).values_list("send_state", flat=True))
    assert states == ["not_sent", "sent"]


@pytest.mark.django_db
def test_a_read_timeout_is_left_sending_then_reconciled_with_twilio(fake_twilio, settings):
    settings.TWILIO_READ_TIMEOUT_SECONDS = 0.3
    lead = sms_lead(phone="+14155550203")
    fake_twilio.script("slow:1")  # Twilio takes the text after the client gave up

    first = sms_feeder_run(now=MONDAY_MORNING_LA)

    assert first.data["uncertain"] == 1 and first.status == "failure"
    fake_twilio.wait_answered(at_least=1)
    with service_context():
        assert SmsMessage.objects.get(lead=lead).send_state == "sending"
    # Too soon to ask: a run inside SMS_RECONCILE_AFTER_SECONDS neither sends nor reconciles it.
    settings.SMS_RECONCILE_AFTER_SECONDS = 3600
    sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))
    assert fake_twilio.reads() == [] and fake_twilio.sends_to(lead.phone) == 1
    settings.SMS_RECONCILE_AFTER_SECONDS = 0
    later = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=30))

    assert later.data["reconciled_sent"] == 1
    assert fake_twilio.sends_to(lead.phone) == 1 and len(fake_twilio.reads()) == 1
    with service_context():
        message = SmsMessage.objects.get(lead=lead)
        assert message.send_state == "sent" and message.twilio_sid == fake_twilio.sent()[0]["sid"]


@pytest.mark.django_db
def test_when_twilio_cannot_say_the_text_is_unknown_shown_to_ops_and_never_sent_again(client, fake_twilio, settings):
    settings.TWILIO_READ_TIMEOUT_SECONDS = 0.3
    lead = sms_lead(phone="+14155550204")
    fake_twilio.script("slow:1")
    sms_feeder_run(now=MONDAY_MORNING_LA)
    fake_twilio.wait_answered(at_least=1)
    fake_twilio.fail_reads = True
    settings.SMS_RECONCILE_AFTER_SECONDS = 0

    result = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))

    assert result.data["unknown"] == 1
    for minutes in (30, 45):
        sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=minutes))
    assert fake_twilio.sends_to(lead.phone) == 1  # never sent again
    assert len(fake_twilio.reads()) == 1  # and asked once: unknown is for a person now
    with service_context():
        message = SmsMessage.objects.get(lead=lead)
        assert message.send_state == "unknown" and "ops decide" in message.error
        assert PipelineEvent.objects.filter(event_type="sms_send_unknown", lead_id=lead.pk).count() == 1
    client.force_login(StaffUserFactory())
    listing = client.get("/admin/pipeline/smsmessage/?send_state__exact=unknown")
    assert listing.status_code == 200 and f"/admin/pipeline/smsmessage/{message.pk}/" in listing.content.decode()
    assert client.get(f"/admin/pipeline/smsmessage/{message.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_two_matching_messages_at_twilio_are_unknown_not_guessed(fake_twilio, settings):
    settings.TWILIO_READ_TIMEOUT_SECONDS = 0.3
    lead = sms_lead(phone="+14155550205")
    fake_twilio.script("slow:1")
    sms_feeder_run(now=MONDAY_MORNING_LA)
    fake_twilio.wait_answered(at_least=1)
    with service_context():
        body = SmsMessage.objects.get(lead=lead).body
    # The same words to the same number, sent by hand from Twilio's console meanwhile.
    from pipeline.sms.twilio import TwilioClient

    assert TwilioClient().send(to=lead.phone, body=body).ok
    settings.SMS_RECONCILE_AFTER_SECONDS = 0

    result = sms_feeder_run(now=MONDAY_MORNING_LA + dt.timedelta(minutes=15))

    assert result.data["unknown"] == 1 and result.data["reconciled_sent"] == 0
    with service_context():
        assert SmsMessage.objects.get(lead=lead).send_state == "unknown"
