"""`POST /api/v1/webhooks/instantly`, through the whole middleware stack (Django's test client)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading

import pytest
from django.db import connection
from django.test import Client

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.models import PipelineDLQ, WebhookDelivery
from security.fields import open_notes
from tests.factories import LeadFactory
from tests.pg import blocked_by
from tests.pg import connect as second_connection
from tests.pipeline import jobs_support
from tests.pipeline.jobs_support import CAMPAIGN_ID, mv_refresh
from tests.waiting import wait_for

fake_instantly = jobs_support.fake_instantly

URL = "/api/v1/webhooks/instantly"
SECRET = "test-webhook-secret-0123456789abcdef"  # settings/test.py


def delivery(event_type: str, email: str, **extra) -> dict:
    return {
        "timestamp": "2026-01-06T17:04:05.000Z",
        "event_type": event_type,
        "workspace": "ws-1",
        "campaign_id": CAMPAIGN_ID,
        "campaign_name": "Seniors Q1",
        "lead_email": email,
        "step": 2,
        "variant": 1,
        **extra,
    }


def post(client, payload, secret=SECRET, header="HTTP_X_WEBHOOK_SECRET"):
    headers = {header: secret} if secret is not None else {}
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post(URL, data=body, content_type="application/json", **headers)


def lead_state(lead) -> Lead:
    with service_context():
        return Lead.objects.get(pk=lead.pk)


def events(event_type=None) -> list[PipelineEvent]:
    with service_context():
        found = PipelineEvent.objects.order_by("id")
        return list(found.filter(event_type=event_type) if event_type else found)


@pytest.fixture
def fed_lead(db):
    return LeadFactory(
        contactable=True, email="maria@example.net", campaign_status="active", instantly_lead_id="inst-1"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("secret", "header"),
    [
        (None, "HTTP_X_WEBHOOK_SECRET"),
        ("wrong", "HTTP_X_WEBHOOK_SECRET"),
        ("", "HTTP_X_WEBHOOK_SECRET"),
        (SECRET[:-1], "HTTP_X_WEBHOOK_SECRET"),
        (SECRET, "HTTP_X_OTHER_HEADER"),
    ],
)
def test_a_missing_or_wrong_secret_is_401_and_changes_nothing(client, fed_lead, secret, header):
    response = post(client, delivery("lead_unsubscribed", fed_lead.email), secret=secret, header=header)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert lead_state(fed_lead).campaign_status == "active"
    with service_context():
        assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_with_no_secret_configured_every_delivery_is_refused(client, fed_lead, settings):
    settings.INSTANTLY_WEBHOOK_SECRET = ""
    assert post(client, delivery("lead_unsubscribed", fed_lead.email), secret="").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event_type", "status_after", "event_name"),
    [
        ("reply_received", "replied", "email_replied"),
        ("email_bounced", "bounced", "email_bounced"),
        ("lead_unsubscribed", "unsubscribed", "unsubscribed"),
        ("lead_meeting_booked", "active", "appointment_booked"),
        ("lead_not_interested", "active", "lead_not_interested"),
        ("lead_wrong_person", "active", "lead_wrong_person"),
    ],
)
def test_each_mapped_event_changes_the_lead_and_writes_its_event(
    client, fed_lead, event_type, status_after, event_name
):
    payload = delivery(event_type, "Maria@Example.net", reply_text_snippet="Yes, call me", reply_html="<p>Yes</p>")

    response = post(client, payload)

    assert response.status_code == 200
    assert response.json()["status"] == "applied" and response.json()["leads"] == 1
    lead = lead_state(fed_lead)
    assert lead.campaign_status == status_after
    recorded = events(event_name)
    assert len(recorded) == 1
    assert recorded[0].lead_id == fed_lead.pk and recorded[0].broker_id == fed_lead.assigned_broker_id
    assert recorded[0].event_data["campaign_id"] == CAMPAIGN_ID and recorded[0].event_data["step"] == 2
    if event_type == "reply_received":
        assert lead.last_reply_at == dt.datetime(2026, 1, 6, 17, 4, 5, tzinfo=dt.UTC)
        assert lead.current_sequence_step == 2
        assert "Yes, call me" not in str(recorded[0].event_data)  # the lead's words are sealed in the event …
        assert open_notes(recorded[0].event_data)["reply_snippet"] == "Yes, call me"  # … and opened to read
    with service_context():
        stored = WebhookDelivery.objects.get()
    assert stored.lead_id == fed_lead.pk and "reply_html" not in stored.payload


@pytest.mark.django_db
def test_the_same_delivery_twice_changes_nothing_the_second_time(client, fed_lead):
    payload = delivery("reply_received", fed_lead.email)
    assert post(client, payload).json()["status"] == "applied"
    with service_context():
        Lead.objects.filter(pk=fed_lead.pk).update(campaign_status="converted")  # a broker moved it on since

    again = post(client, payload)

    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert lead_state(fed_lead).campaign_status == "converted"
    assert len(events("email_replied")) == 1
    with service_context():
        [stored_key] = WebhookDelivery.objects.values_list("dedupe_hash", flat=True)
    # The key is keyed (an unkeyed hash of the address and campaign could be reversed by guessing addresses).
    plain = [payload["event_type"], fed_lead.email, CAMPAIGN_ID, payload["timestamp"], "2"]
    assert stored_key != hashlib.sha256(json.dumps(plain, separators=(",", ":")).encode()).hexdigest()
    assert len(stored_key) == 64
    # A later step's reply is a different delivery.
    assert post(client, {**payload, "step": 3}).json()["status"] == "applied"


@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_twice_at_once_is_applied_once():
    # Instantly retries a delivery it thinks was lost; both copies arrive together on two connections. A
    # lock on the deliveries table holds both where they record the delivery, so that they record it at once.
    lead = LeadFactory(contactable=True, email="twice@example.net", campaign_status="active")
    payload = delivery("lead_unsubscribed", lead.email)
    answers = []

    def deliver():
        try:
            answers.append(post(Client(), payload).json()["status"])
        finally:
            connection.close()

    with second_connection(admin=True, autocommit=False) as holder:
        holder.execute("LOCK TABLE webhook_deliveries IN EXCLUSIVE MODE")
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(blocked_by(holder.info.backend_pid)) == 2, message="both deliveries waiting")
        holder.rollback()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers) == ["applied", "duplicate"]
    assert lead_state(lead).campaign_status == "unsubscribed"
    assert len(events("unsubscribed")) == 1
    with service_context():
        assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_an_unknown_lead_email_is_2xx_and_a_dlq_row(client, fed_lead):
    payload = delivery("reply_received", "stranger@example.org")

    first, second = post(client, payload), post(client, payload)

    assert first.status_code == 200 and first.json()["status"] == "dead_lettered"
    assert second.json()["status"] == "duplicate"
    with service_context():
        row = PipelineDLQ.objects.get()
    # the address is in the (encrypted) payload, never in the reason, which ops read unmasked in lists
    assert row.source == "webhook" and "stranger@example.org" not in row.reason
    assert row.payload["event_type"] == "reply_received" and row.payload["lead_email"] == "stranger@example.org"
    assert events("email_replied") == []


@pytest.mark.django_db
def test_an_unknown_event_type_is_2xx_and_a_dlq_row(client, fed_lead):
    response = post(client, delivery("lead_teleported", fed_lead.email))

    assert response.status_code == 200 and response.json()["status"] == "dead_lettered"
    with service_context():
        row = PipelineDLQ.objects.get()
    assert row.source == "webhook" and "lead_teleported" in row.reason
    assert lead_state(fed_lead).campaign_status == "active"


@pytest.mark.django_db
def test_known_events_we_do_not_use_are_acknowledged_without_a_dlq_row(client, fed_lead):
    response = post(client, delivery("email_opened", fed_lead.email))

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    with service_context():
        assert not PipelineDLQ.objects.exists()


@pytest.mark.django_db
def test_a_reply_never_lifts_an_unsubscribe(client, fed_lead):
    post(client, delivery("lead_unsubscribed", fed_lead.email))
    post(client, delivery("reply_received", fed_lead.email, timestamp="2026-01-07T10:00:00Z"))
    post(client, delivery("email_bounced", fed_lead.email))

    lead = lead_state(fed_lead)
    assert lead.campaign_status == "unsubscribed" and lead.last_reply_at is not None


@pytest.mark.django_db
def test_a_bounce_or_unsubscribe_applies_to_every_lead_with_that_address(client, fed_lead):
    other = LeadFactory(contactable=True, email=fed_lead.email)  # the same person, another property

    response = post(client, delivery("lead_unsubscribed", fed_lead.email))

    assert response.json()["leads"] == 2
    assert lead_state(other).campaign_status == "unsubscribed"


@pytest.mark.django_db
def test_bad_requests(client):
    assert post(client, b"not json").status_code == 400
    assert post(client, {"lead_email": "x@example.net"}).status_code == 400
    assert client.get(URL, HTTP_X_WEBHOOK_SECRET=SECRET).status_code == 405


@pytest.mark.django_db
def test_an_unsubscribed_lead_is_never_fed_again(client, fake_instantly):
    queued = LeadFactory(contactable=True, email="queued@example.net", lead_score=99)
    mv_refresh()  # the view still lists it as queued...

    response = post(client, delivery("lead_unsubscribed", queued.email))
    first = campaign_feeder_run(business_date=dt.date(2026, 1, 6))  # ...the live re-check does not
    mv_refresh()
    second = campaign_feeder_run(business_date=dt.date(2026, 1, 7))

    assert response.json()["status"] == "applied"
    assert first.data["fed"] == 0 and second.data["fed"] == 0
    assert lead_state(queued).campaign_status == "unsubscribed"
    assert fake_instantly.requests == []  # nothing at all was sent to Instantly
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM mv_contactable_leads WHERE id = %s", [queued.pk])
        assert cursor.fetchone()[0] == 0


# Input a retry can never fix is a 4xx (a 5xx makes Instantly retry it forever); over real HTTP.
def live_post(live_server, body: bytes, **headers):
    import requests

    return requests.post(
        f"{live_server.url}{URL}",
        data=body,
        headers={"Content-Type": "application/json", "X-Webhook-Secret": SECRET, **headers},
        timeout=30,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"timestamp": "2026-01-06T17:04:05"}, 200, None),  # no offset: taken as UTC
        ({"timestamp": "2026-13-45T99:04:05Z"}, 400, "timestamp"),
        ({"timestamp": "yesterday"}, 400, "timestamp"),
        ({"timestamp": 1767719045}, 400, "timestamp"),
        ({"step": 10**30}, 400, "step"),
        ({"step": "9" * 5000}, 400, "step"),
        ({"step": -1}, 400, "step"),
        ({"step": "two"}, 400, "step"),
        ({"step": 2.5}, 400, "step"),
        ({"step": True}, 400, "step"),
        ({"lead_email": "maria\u0000@example.net"}, 400, "NUL"),
        ({"custom_variables": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}, 400, "nested"),
    ],
)
def test_input_that_can_never_succeed_is_4xx_and_changes_nothing(live_server, change, status, says):
    lead = LeadFactory(contactable=True, email="maria@example.net", campaign_status="active")

    response = live_post(live_server, json.dumps(delivery("reply_received", lead.email, **change)).encode())

    assert response.status_code == status, response.text
    if says:
        assert says in response.json()["error"]
        assert lead_state(lead).campaign_status == "active"
        with service_context():
            assert WebhookDelivery.objects.count() == 0 and PipelineDLQ.objects.count() == 0
    else:
        assert lead_state(lead).last_reply_at == dt.datetime(2026, 1, 6, 17, 4, 5, tzinfo=dt.UTC)


@pytest.mark.django_db(transaction=True)
def test_json_nested_past_the_parser_limit_is_400(live_server):
    body = b'{"event_type": "reply_received", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"

    response = live_post(live_server, body)

    assert response.status_code == 400 and "nested" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_a_body_over_the_limit_is_413_before_it_is_read(live_server, settings):
    settings.INSTANTLY_WEBHOOK_MAX_BYTES = 10_000
    big = json.dumps(delivery("reply_received", "maria@example.net", reply_html="x" * 20_000)).encode()

    refused = live_post(live_server, big)
    stranger = live_post(live_server, big, **{"X-Webhook-Secret": "wrong"})

    assert refused.status_code == 413 and "10000 bytes" in refused.json()["error"]
    assert stranger.status_code == 401  # the secret is checked first: a stranger learns nothing
    with service_context():
        assert WebhookDelivery.objects.count() == 0
