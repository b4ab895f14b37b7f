"""`POST /api/v1/webhooks/twilio`: Twilio's signature (valid, tampered, missing), STOP and START through the
suppression list, replies on the timeline, the review of replies that read like an opt-out, delivery statuses,
and no 5xx for any input."""

from __future__ import annotations

import datetime as dt

import pytest

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from leads.suppressions.models import Suppression
from leads.suppressions.rules import SuppressionKind, SuppressionReason
from leads.suppressions.services import suppression_add
from leads.timeline import lead_timeline
from pipeline.models import SmsMessage
from pipeline.monitoring.dashboard import campaign_outcomes
from pipeline.sms.feed import sms_feeder_run
from pipeline.sms.services import sms_review_close
from security.fields import looks_encrypted
from security.twilio_signature import twilio_signature, twilio_signature_valid
from tests.factories import BrokerFactory, StaffUserFactory
from tests.pipeline import sms_support
from tests.pipeline.sms_support import inbound, sid, sms_lead, twilio_post

fake_twilio = sms_support.fake_twilio
PHONE = "+14155550201"
MORNING = dt.datetime(2026, 1, 5, 17, 0, tzinfo=dt.UTC)


def test_the_signature_matches_twilios_documented_example():
    # Twilio's security documentation: auth token 12345, this URL and these parameters sign to this value.
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(auth_token="12345", url=url, params=params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature(auth_token="12345", url=url, params=list(reversed(params))) == (
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="  # sorted by name: the order sent does not matter
    )
    assert not twilio_signature_valid(
        auth_token="12345", url=url + "&x=1", params=params, provided="0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert not twilio_signature_valid(auth_token="", url=url, params=params, provided="0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("valid", 200),
        ("missing", 403),
        ("tampered body", 403),
        ("wrong token", 403),
        ("other url", 403),
        ("garbage header", 403),
    ],
)
def test_signature_table(client, fake_twilio, settings, case, expected):
    sms_lead(phone=PHONE)
    params = inbound(PHONE, "Sounds good, call me", sid(1))
    if case == "valid":
        response = twilio_post(client, params)
    elif case == "missing":
        response = twilio_post(client, params, signature=None)
    elif case == "tampered body":
        good = twilio_signature(
            auth_token=fake_twilio.auth_token,
            url=sms_support.BASE_URL + sms_support.WEBHOOK,
            params=list(params.items()),
        )
        response = twilio_post(client, {**params, "Body": "STOP"}, signature=good)
    elif case == "wrong token":
        response = twilio_post(client, params, token="another-token")
    elif case == "other url":
        settings.TWILIO_WEBHOOK_BASE_URL = "https://attacker.example.com"
        response = twilio_post(client, params)
    else:
        response = twilio_post(client, params, signature="\u00e9\u00e9 not base64 at all")
    assert response.status_code == expected
    with service_context():
        assert SmsMessage.objects.count() == (1 if expected == 200 else 0)
        assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_no_auth_token_refuses_every_request(client, fake_twilio, settings):
    params = inbound(PHONE, "STOP", sid(2))
    signed_with_empty = twilio_post(client, params, token="")
    settings.TWILIO_AUTH_TOKEN = ""
    assert twilio_post(client, params, token="").status_code == 403
    assert signed_with_empty.status_code == 403
    with service_context():
        assert not Suppression.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "word", ["STOP", " stop ", "StopAll", "unsubscribe", "CANCEL", "end", "Quit", "revoke", "OPTOUT"]
)
def test_an_opt_out_word_suppresses_every_lead_with_that_number_for_texts(client, fake_twilio, word):
    first = sms_lead(phone=PHONE, assigned_broker=BrokerFactory())
    second = sms_lead(phone=PHONE, assigned_broker=BrokerFactory())  # another broker's lead, same number
    other = sms_lead(phone="+14155550299")

    response = twilio_post(client, inbound(PHONE, word, sid(3)))

    assert response.status_code == 200 and b"<Response>" in response.content
    with service_context():
        [entry] = Suppression.objects.active()
        assert (entry.kind, entry.reason, entry.channels) == ("phone", "sms_opt_out", ["sms"])
        marks = dict(Lead.objects.values_list("id", "suppressed_channels"))
        assert marks[first.pk] == {"sms": ["sms_opt_out"]} and marks[second.pk] == {"sms": ["sms_opt_out"]}
        assert marks[other.pk] == {}
        assert PipelineEvent.objects.filter(event_type="sms_opted_out").count() == 2
    # The feed then texts only the other lead.
    sms_feeder_run(now=MORNING)
    assert [message["To"] for message in fake_twilio.sent()] == ["+14155550299"]


@pytest.mark.django_db
def test_start_resubscribes_only_when_no_other_reason_holds(client, fake_twilio):
    lead = sms_lead(phone=PHONE)
    listed = sms_lead(phone="+14155550202")
    with service_context():
        suppression_add(
            kind=SuppressionKind.PHONE, value=listed.phone, reason=SuppressionReason.DNC_REGISTRY, source="test"
        )
    assert twilio_post(client, inbound(PHONE, "STOP", sid(10))).status_code == 200
    assert twilio_post(client, inbound(listed.phone, "STOP", sid(11))).status_code == 200

    assert twilio_post(client, inbound(PHONE, "start", sid(12))).status_code == 200
    assert twilio_post(client, inbound(listed.phone, "START", sid(13))).status_code == 200

    with service_context():
        assert Lead.objects.get(pk=lead.pk).suppressed_channels == {}
        # The DNC entry is never removed by START: the number stays suppressed for texts.
        assert Lead.objects.get(pk=listed.pk).suppressed_channels == {
            "sms": ["dnc_registry"],
            "phone": ["dnc_registry"],
        }
        assert list(Suppression.objects.active().values_list("reason", flat=True)) == ["dnc_registry"]
        assert Suppression.objects.filter(reason="sms_opt_out", removed_at__isnull=False).count() == 2
        started = {e.lead_id: e.event_data for e in PipelineEvent.objects.filter(event_type="sms_opted_in")}
        assert started[lead.pk]["still_suppressed_for_sms"] is False
        assert started[listed.pk]["still_suppressed_for_sms"] is True


@pytest.mark.django_db
def test_a_reply_goes_on_the_timeline_sealed_and_marks_the_lead_replied(client, fake_twilio):
    lead = sms_lead(phone=PHONE)
    sms_feeder_run(now=MORNING)

    response = twilio_post(client, inbound(PHONE, "Yes please, call me after 3", sid(20)))
    again = twilio_post(client, inbound(PHONE, "Yes please, call me after 3", sid(20)))  # Twilio's retry

    assert response.status_code == 200 and again.status_code == 200
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
        assert fresh.campaign_status == "replied" and fresh.last_reply_at is not None
        [event] = PipelineEvent.objects.filter(event_type="sms_replied")
        assert event.broker_id == lead.assigned_broker_id  # what the broker notifications read
        assert looks_encrypted(event.event_data["reply_snippet"])  # sealed like an e-mail reply
        entries = [e for e in lead_timeline(lead=fresh) if e.event_type == "sms_replied"]
        assert entries and "“Yes please, call me after 3”" in entries[0].details
        assert SmsMessage.objects.filter(direction="inbound").count() == 1
        assert not Suppression.objects.exists()
        assert not SmsMessage.objects.filter(review="pending").exists()
        # The dashboard's funnel counts the text as fed and the reply as replied.
        outcomes = campaign_outcomes(since=MORNING - dt.timedelta(days=400))
        assert (outcomes["fed"], outcomes["replied"]) == (1, 1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text", ["Please stop texting me", "remove me from your list", "Wrong number", "don't text me again"]
)
def test_a_reply_that_reads_like_an_opt_out_goes_to_review_not_silently(client, fake_twilio, text):
    lead = sms_lead(phone=PHONE)

    assert twilio_post(client, inbound(PHONE, text, sid(30))).status_code == 200

    with service_context():
        [message] = SmsMessage.objects.filter(review="pending")
        assert not Suppression.objects.exists()  # a person decides
        assert PipelineEvent.objects.filter(event_type="sms_possible_opt_out", lead_id=lead.pk).count() == 1
        sms_review_close(message=message, opt_out=True, user=StaffUserFactory())
        assert Lead.objects.get(pk=lead.pk).suppressed_channels == {"sms": ["sms_opt_out"]}
        assert SmsMessage.objects.get(pk=message.pk).review == "opted_out"


@pytest.mark.django_db
def test_the_review_queue_in_the_admin_opts_a_number_out(client, fake_twilio):
    sms_lead(phone=PHONE)
    twilio_post(client, inbound(PHONE, "please stop", sid(31)))
    staff = StaffUserFactory()
    client.force_login(staff)
    with service_context():
        message = SmsMessage.objects.get(review="pending")
    listing = client.get("/admin/pipeline/smsmessage/?review__exact=pending")
    assert listing.status_code == 200 and f"/admin/pipeline/smsmessage/{message.pk}/" in listing.content.decode()
    response = client.post(
        "/admin/pipeline/smsmessage/",
        {"action": "review_opt_out", "_selected_action": [message.pk], "index": 0},
    )
    assert response.status_code == 302
    with service_context():
        assert Suppression.objects.filter(reason="sms_opt_out").count() == 1


@pytest.mark.django_db
def test_status_callbacks_move_forward_only_and_a_carrier_opt_out_suppresses(client, fake_twilio):
    lead = sms_lead(phone=PHONE)
    sms_feeder_run(now=MORNING)
    [sent] = fake_twilio.sent()

    def status(value, code=""):
        params = {"MessageSid": sent["sid"], "MessageStatus": value, "AccountSid": fake_twilio.account_sid}
        if code:
            params["ErrorCode"] = code
        return twilio_post(client, params).status_code

    assert status("delivered") == 200
    assert status("sent") == 200  # late: ignored
    with service_context():
        assert SmsMessage.objects.get(twilio_sid=sent["sid"]).status == "delivered"
    other = sms_lead(phone="+14155550203")
    sms_feeder_run(now=MORNING + dt.timedelta(minutes=15))
    second = next(m for m in fake_twilio.sent() if m["To"] == other.phone)
    sent = second
    assert status("undelivered", "21610") == 200
    with service_context():
        assert Lead.objects.get(pk=other.pk).suppressed_channels == {"sms": ["sms_opt_out"]}
        assert Lead.objects.get(pk=lead.pk).suppressed_channels == {}
        assert PipelineEvent.objects.filter(event_type="sms_undelivered", lead_id=other.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "raw", "expected"),
    [
        ({"From": PHONE, "Body": "hi"}, None, 400),  # no MessageSid
        ({"MessageSid": "nonsense", "From": PHONE, "Body": "hi"}, None, 400),
        ({"MessageSid": sid(40), "From": "not a phone", "Body": "hi"}, None, 400),
        ({"MessageSid": sid(41), "From": PHONE, "Body": "nul \x00 inside"}, None, 200),
        ({"MessageSid": sid(42), "From": PHONE, "Body": "x" * 5000}, None, 200),
        ({"MessageSid": sid(43), "MessageStatus": "delivered"}, None, 200),  # unknown message: ignored
        ({"MessageSid": sid(44), "MessageStatus": "delivered", "ErrorCode": "9" * 40}, None, 200),
        ({}, None, 400),
        (None, b"\xff\xfe not utf-8 &&&===", 403),
        (None, b"a=" + b"x" * 70000, 413),
    ],
)
def test_no_input_gives_a_5xx(client, fake_twilio, params, raw, expected):
    if raw is not None:
        response = client.post(
            sms_support.WEBHOOK,
            data=raw,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": "x"},
        )
    else:
        response = twilio_post(client, params)
    assert response.status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("multipart/form-data; boundary=", b"--\r\nbroken"),
        ("multipart/form-data", b"no boundary at all"),
        ("application/json", b'{"MessageSid": "x"}'),
        ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 5000)),  # more fields than Django reads
    ],
)
def test_odd_bodies_are_4xx(client, fake_twilio, content_type, raw):
    response = client.post(
        sms_support.WEBHOOK, data=raw, content_type=content_type, headers={"X-Twilio-Signature": "x"}
    )
    assert 400 <= response.status_code < 500


@pytest.mark.django_db
def test_an_unknown_number_can_still_opt_out(client, fake_twilio):
    assert twilio_post(client, inbound("+14155550999", "STOP", sid(50))).status_code == 200
    lead = sms_lead(phone="+14155550999")  # uploaded later: bound at once
    with service_context():
        assert Suppression.objects.filter(reason="sms_opt_out").count() == 1
        Lead.objects.filter(pk=lead.pk).update(suppressed_channels={})  # the marks a new upload would compute
    sms_feeder_run(now=MORNING)
    assert fake_twilio.sent() == []  # the feed reads the list itself at send time


@pytest.mark.django_db
def test_a_persons_texts_are_exported_and_erased(client, fake_twilio, tmp_path):
    import json

    from django.core.management import call_command

    lead = sms_lead(phone=PHONE)
    sms_feeder_run(now=MORNING)
    twilio_post(client, inbound(PHONE, "Call me on Friday", sid(60)))
    other = sms_lead(phone="+14155550298")
    twilio_post(client, inbound(other.phone, "Hello", sid(61)))

    call_command("privacy", "export", "--phone", PHONE, "--output", str(tmp_path / "out"))
    [document] = [
        json.loads(path.read_text())
        for path in (tmp_path / "out").iterdir()
        if path.name.startswith("privacy-export-")
    ]
    texts = document["records"]["text_messages"]
    assert [(text["direction"], text["phone"]) for text in texts] == [("outbound", PHONE), ("inbound", PHONE)]
    assert texts[1]["body"] == "Call me on Friday"

    call_command("privacy", "erase", "--phone", PHONE, "--yes")

    with service_context():
        assert not Lead.objects.filter(pk=lead.pk).exists()
        assert list(SmsMessage.objects.values_list("twilio_sid", flat=True)) == [sid(61)]
