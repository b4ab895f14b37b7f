"""Must-show 1 of issue 13, end to end: an unsubscribe on one lead (through the real Instantly webhook or the
real unsubscribe link) suppresses every lead with that e-mail, now and in the next upload (real ingest), and the
real feeder never sends it to the fake Instantly — even when a lead's mark is missing, since the feeder reads
the list itself at send time. The Instantly side (block list, stopped sequence) happens once per entry."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead, Suppression
from pipeline.campaigns.blocklist import suppressions_instantly_sync_run
from pipeline.campaigns.feeder import campaign_feeder_run
from security.consent_tokens import unsubscribe_token_sign
from tests.factories import BrokerFactory
from tests.pipeline import jobs_support
from tests.pipeline.ingest_helpers import assert_invariant, csv_of, ingest
from tests.pipeline.jobs_support import mv_refresh

pytestmark = pytest.mark.django_db
fake_instantly = jobs_support.fake_instantly

MONDAY = dt.date(2026, 1, 5)
SECRET = "test-webhook-secret-0123456789abcdef"  # settings/test.py
SHARED = "martha.keller@example.net"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def row(mak: str, email: str, phone: str = "") -> dict:
    return {"Address": f"{mak[-1]} Elm Street", "City": "Albany", "State": "NY", "Zip": "12207", "MAK": mak,
            "First Name": "Martha", "Last Name": "Keller", "Email": email, "Phone": phone}  # fmt: skip


def make_feedable(broker) -> None:
    """Every lead consented to e-mail, verified, assigned and queued (what a broker would have done)."""
    with service_context():
        Lead.objects.update(
            assigned_broker=broker,
            consent=True,
            consent_email=True,
            consented_at=timezone.now(),
            email_verified=True,
            campaign_status="queued",
            added_to_campaign_at=None,
        )


def lead(mak: str) -> Lead:
    with service_context():
        return Lead.objects.get(mak=mak)


def unsubscribe_via_webhook(client, target: Lead) -> None:
    body = {"timestamp": "2026-01-06T17:04:05Z", "event_type": "lead_unsubscribed", "lead_email": SHARED.upper(),
            "campaign_id": jobs_support.CAMPAIGN_ID}  # fmt: skip
    response = client.post(
        "/api/v1/webhooks/instantly", data=json.dumps(body), content_type="application/json",
        HTTP_X_WEBHOOK_SECRET=SECRET,
    )  # fmt: skip
    assert response.status_code == 200, response.content


def unsubscribe_via_link(client, target: Lead) -> None:
    token = unsubscribe_token_sign(lead_id=target.pk, send_id=uuid.uuid4())
    response = client.post(f"/unsubscribe?token={token}")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("unsubscribe", [unsubscribe_via_webhook, unsubscribe_via_link], ids=["webhook", "link"])
def test_an_unsubscribe_suppresses_every_lead_with_the_email_now_and_in_the_next_upload(
    client, fake_instantly, unsubscribe
):
    broker = BrokerFactory()
    first = ingest(
        csv_of([row("SUP-1", SHARED), row("SUP-2", "Martha.Keller@Example.NET"), row("SUP-3", "other@example.net")])
    )
    assert_invariant(first) and first.leads_created == 3

    unsubscribe(client, lead("SUP-1"))

    # Now: every lead with the address is marked for e-mail (and only e-mail), the other one is not.
    assert lead("SUP-1").suppressed_channels == {"email": ["unsubscribe"]}
    assert lead("SUP-2").suppressed_channels == {"email": ["unsubscribe"]}
    assert lead("SUP-3").suppressed_channels == {}
    with service_context():
        (entry,) = Suppression.objects.all()
    assert entry.kind == "email" and entry.reason == "unsubscribe" and entry.channels == ["email"]
    assert SHARED not in json.dumps([entry.value_indexes, entry.value_encrypted, entry.label])  # no plain text

    # The next upload: a new property with the address (spelt differently) is marked as it is created.
    second = ingest(csv_of([row("SUP-4", " MARTHA.KELLER@example.net"), row("SUP-5", "fresh@example.net")]))
    assert_invariant(second) and second.leads_created == 2
    assert lead("SUP-4").suppressed_channels == {"email": ["unsubscribe"]}
    assert lead("SUP-5").suppressed_channels == {}
    with service_context():
        (done,) = PipelineEvent.objects.filter(event_type="dedupe_success", upload_id=second.pk)
    assert done.event_data["leads_suppressed"] == 1

    # The feeder never sends it: every lead queued and consented, the shared address is not in any request,
    # even for a lead whose mark is gone (the feeder reads the list itself at send time).
    make_feedable(broker)
    with service_context():
        Lead.objects.filter(mak="SUP-4").update(suppressed_channels={})  # only the list stops it now
    mv_refresh()
    fed = campaign_feeder_run(business_date=MONDAY)
    assert fed.status == "success", fed.message
    sent = fake_instantly.lead_adds_received()
    assert set(sent) == {"other@example.net", "fresh@example.net"}
    assert SHARED not in sent


def test_a_new_suppression_is_blocked_at_instantly_and_stops_the_sequence_once(client, fake_instantly):
    broker = BrokerFactory()
    ingest(csv_of([row("SYN-1", SHARED), row("SYN-2", SHARED)]))
    make_feedable(broker)
    mv_refresh()
    assert campaign_feeder_run(business_date=MONDAY).data["fed"] == 1  # one address, one lead fed (the other skipped)
    fed = [found for found in (lead("SYN-1"), lead("SYN-2")) if found.instantly_lead_id]
    assert len(fed) == 1
    instantly_id = fed[0].instantly_lead_id

    unsubscribe_via_webhook(client, fed[0])
    unsubscribe_via_webhook(client, fed[0])  # the same delivery again: a duplicate, nothing new
    first = suppressions_instantly_sync_run()
    second = suppressions_instantly_sync_run()

    assert first.status == "success" and first.data == {"synced": 1, "sequences_stopped": 1, "block_failed": 0}
    assert second is None  # nothing left to sync
    assert fake_instantly.block_list_values() == [SHARED]
    assert fake_instantly.deleted_ids() == [instantly_id]
    with service_context():
        assert Suppression.objects.get().instantly_synced_at is not None
        (stopped,) = PipelineEvent.objects.filter(event_type="campaign_stopped")
    assert stopped.event_data["instantly_lead_id"] == instantly_id

    # A second entry for the same address (a later bounce) neither blocks it again nor stops anything again.
    body = {"timestamp": "2026-01-07T09:00:00Z", "event_type": "email_bounced", "lead_email": SHARED}
    response = client.post("/api/v1/webhooks/instantly", data=json.dumps(body), content_type="application/json",
                           HTTP_X_WEBHOOK_SECRET=SECRET)  # fmt: skip
    assert response.status_code == 200
    assert suppressions_instantly_sync_run().data["synced"] == 1
    assert fake_instantly.block_list_values() == [SHARED]
    assert fake_instantly.deleted_ids() == [instantly_id]
    assert lead("SYN-1").suppressed_channels == {"email": ["bounce", "unsubscribe"]}
