"""Consent links are e-mailed to the lead, never shown to a broker: the portal's action, the task that mails
the link (from django-q2's queue, run as the cluster would), suppression, the per-broker limit, and the
unsubscribe link every such e-mail carries. Through the test client, with the real middleware."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.consent.texts import CURRENT_VERSION
from leads.contact_indexes import contact_indexes
from leads.models import CampaignStatus, ConsentToken, Lead, LeadConsentAudit
from security.fields import decrypt_stored
from security.pii import EMAIL
from tests.factories import LeadFactory, backdate_events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

YES = {"choice": "consent", "channels": ["email"], "text_version": CURRENT_VERSION}
SENT = "A consent link was e-mailed to the lead"


def _send_url(lead) -> str:
    return reverse("portal:lead_consent_link", kwargs={"lead_id": lead.pk})


def _queued() -> list[dict]:
    """The consent-mail tasks in django-q2's queue (the ORM broker's table)."""
    return [q.task for q in OrmQ.objects.order_by("id") if q.task["func"] == "leads.tasks.consent_link_deliver_task"]


def _run_queued() -> list[str]:
    """Run every queued consent-mail task as the cluster would: its function by dotted name, with its args."""
    results = [import_string(task["func"])(*task["args"], **task["kwargs"]) for task in _queued()]
    OrmQ.objects.all().delete()
    return results


def _ask(client, lead, capture, **data):
    with capture(execute=True):
        return client.post(_send_url(lead), data, follow=True)


def _events(lead, event_type) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(lead_id=lead.pk, event_type=event_type).order_by("id"))


def _links(body: str) -> dict[str, str]:
    found = dict(re.findall(r"(http://\S+/(consent|unsubscribe)\?token=\S+)", body))
    return {kind: url for url, kind in found.items()}


def _path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _status(lead) -> str:
    with service_context():
        return Lead.objects.get(pk=lead.pk).campaign_status


def test_the_link_is_emailed_to_the_lead_by_a_task_and_never_shown_to_the_broker(
    client_for, broker_a, django_capture_on_commit_callbacks
):
    lead = LeadFactory(assigned_broker=broker_a, first_name="Martha", email="martha.keller@example.net")
    client = client_for(broker_a)
    response = _ask(client, lead, django_capture_on_commit_callbacks)
    page = response.content.decode()
    assert response.status_code == 200 and SENT in page
    assert "/consent?token=" not in page and "consent_link" not in response.context
    with service_context():
        assert not ConsentToken.objects.filter(lead=lead).exists()  # no link exists until the task makes it
    assert mail.outbox == []  # not sent in the request
    (asked,) = _events(lead, "consent_link_requested")
    assert asked.broker_id == broker_a.pk and asked.event_data["user"] == broker_a.user.get_username()
    assert asked.event_data["user_id"] == broker_a.user.pk

    assert _run_queued() == ["sent"]
    (message,) = mail.outbox
    assert message.to == ["martha.keller@example.net"] and message.reply_to == [broker_a.email]
    links = _links(message.body)
    assert set(links) == {"consent", "unsubscribe"}
    assert "100 Test Street, Suite 1, San Diego, CA 92101" in message.body  # the sender's postal address
    assert message.extra_headers["List-Unsubscribe"] == f"<{links['unsubscribe']}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for url in links.values():  # no personal data in either link
        for pii in (lead.email, "martha", "keller", "%40"):
            assert pii not in url.lower()
    (sent,) = _events(lead, "consent_link_sent")
    # the address it went to, encrypted (events are no place for personal data)
    assert sent.status == "success" and decrypt_stored(sent.event_data["to"], EMAIL) == lead.email
    assert lead.email not in json.dumps(sent.event_data)
    assert sent.event_data["send_id"] == asked.event_data["send_id"]
    assert "Consent link e-mailed to the lead" in client.get(f"/portal/leads/{lead.pk}/").content.decode()

    assert _run_queued() == []  # one e-mail per request
    client.logout()
    assert client.post(_path(links["consent"]), YES).status_code == 200  # the lead answers from the e-mail
    with service_context():
        assert Lead.objects.get(pk=lead.pk).consent_email


def test_the_task_delivered_twice_sends_one_email(client_for, broker_a, django_capture_on_commit_callbacks):
    lead = LeadFactory(assigned_broker=broker_a)
    _ask(client_for(broker_a), lead, django_capture_on_commit_callbacks)
    (task,) = _queued()
    run = import_string(task["func"])
    assert [run(*task["args"]), run(*task["args"])] == ["sent", "already done"]
    assert len(mail.outbox) == 1


def test_the_broker_cannot_choose_the_address(client_for, broker_a, django_capture_on_commit_callbacks):
    lead = LeadFactory(assigned_broker=broker_a, email="owner@example.net")
    _ask(client_for(broker_a), lead, django_capture_on_commit_callbacks, email="broker@evil.example", to="x@y.z")
    _run_queued()
    assert [message.to for message in mail.outbox] == [["owner@example.net"]]


@pytest.mark.parametrize(
    "status", [CampaignStatus.UNSUBSCRIBED, CampaignStatus.BOUNCED, CampaignStatus.DO_NOT_CONTACT]
)
@pytest.mark.parametrize("where", ["this lead", "another broker's lead with the same e-mail"])
def test_no_link_to_an_address_that_is_unsubscribed_bounced_or_do_not_contact(
    client_for, broker_a, broker_b, django_capture_on_commit_callbacks, status, where
):
    lead = LeadFactory(assigned_broker=broker_a, email="shared@example.net")
    if where == "this lead":
        with service_context():
            Lead.objects.filter(pk=lead.pk).update(campaign_status=status)
    else:
        LeadFactory(assigned_broker=broker_b, email="shared@example.net", campaign_status=status)
    response = _ask(client_for(broker_a), lead, django_capture_on_commit_callbacks)
    page = response.content.decode()
    assert response.status_code == 200 and SENT not in page
    assert "unsubscribed, bounced or marked do-not-contact: no consent link was sent" in page
    assert _queued() == [] and _events(lead, "consent_link_requested") == [] and mail.outbox == []


def test_the_task_checks_again_before_it_sends(client_for, broker_a, broker_b, django_capture_on_commit_callbacks):
    suppressed, moved = LeadFactory(assigned_broker=broker_a), LeadFactory(assigned_broker=broker_a)
    client = client_for(broker_a)
    for lead in (suppressed, moved):
        _ask(client, lead, django_capture_on_commit_callbacks)
    # Before the cluster runs the tasks: the address bounces on another lead, the other lead changes broker.
    LeadFactory(assigned_broker=broker_b, email=suppressed.email, campaign_status=CampaignStatus.BOUNCED)
    with service_context():
        Lead.objects.filter(pk=moved.pk).update(assigned_broker=broker_b)
    assert [result.startswith("not sent") for result in _run_queued()] == [True, True]
    assert mail.outbox == []
    for lead in (suppressed, moved):
        (event,) = _events(lead, "consent_link_sent")
        assert event.status == "failure" and event.event_data["reason"]
        with service_context():
            assert not ConsentToken.objects.filter(lead=lead).exists()


def test_a_broker_may_send_so_many_links_a_day(
    client_for, broker_a, broker_b, settings, django_capture_on_commit_callbacks
):
    settings.CONSENT_LINKS_PER_BROKER_PER_DAY = 2
    leads = LeadFactory.create_batch(3, assigned_broker=broker_a)
    client = client_for(broker_a)
    pages = [_ask(client, lead, django_capture_on_commit_callbacks).content.decode() for lead in leads]
    assert [SENT in page for page in pages] == [True, True, False]
    assert "You have sent 2 consent links in the last 24 hours" in pages[2]
    assert len(_queued()) == 2 and _events(leads[2], "consent_link_requested") == []

    # Another broker has their own allowance; and a day later the first broker may send again.
    other = client_for(broker_b)
    assert (
        SENT in _ask(other, LeadFactory(assigned_broker=broker_b), django_capture_on_commit_callbacks).content.decode()
    )
    with service_context():
        backdate_events(
            PipelineEvent.objects.filter(broker_id=broker_a.pk, event_type="consent_link_requested"),
            timezone.now() - timedelta(hours=24, minutes=1),
        )
    client = client_for(broker_a)
    assert SENT in _ask(client, leads[2], django_capture_on_commit_callbacks).content.decode()


def test_without_the_senders_postal_address_nothing_is_sent(
    client_for, broker_a, settings, django_capture_on_commit_callbacks
):
    settings.SENDER_POSTAL_ADDRESS = ""
    lead = LeadFactory(assigned_broker=broker_a)
    page = _ask(client_for(broker_a), lead, django_capture_on_commit_callbacks).content.decode()
    assert "SENDER_POSTAL_ADDRESS" in page and SENT not in page and _queued() == []


# --- the unsubscribe link ---------------------------------------------------------------------------------


def _mailed_links(client, lead, capture) -> dict[str, str]:
    _ask(client, lead, capture)
    assert _run_queued() == ["sent"]
    return _links(mail.outbox[-1].body)


def test_the_unsubscribe_link_unsubscribes_every_lead_with_that_address(
    client_for, broker_a, broker_b, django_capture_on_commit_callbacks
):
    lead = LeadFactory(assigned_broker=broker_a, email="shared@example.net", campaign_status=CampaignStatus.QUEUED)
    same_address = LeadFactory(assigned_broker=broker_b, email="shared@example.net")
    other_address = LeadFactory(assigned_broker=broker_a, email="someone.else@example.net")
    url = _path(_mailed_links(client_for(broker_a), lead, django_capture_on_commit_callbacks)["unsubscribe"])
    refused = LeadFactory(assigned_broker=broker_b, email="shared@example.net", campaign_status="do_not_contact")
    anonymous = Client(enforce_csrf_checks=True)  # a mail client's one-click POST carries no cookie

    page = anonymous.get(url)
    assert page.status_code == 200 and "confirm-unsubscribe" in page.content.decode()
    assert "shared@example.net" not in page.content.decode()
    assert _status(lead) == CampaignStatus.QUEUED  # showing the page changes nothing

    done = anonymous.post(url, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    assert (_status(lead), _status(same_address)) == (CampaignStatus.UNSUBSCRIBED, CampaignStatus.UNSUBSCRIBED)
    assert (_status(refused), _status(other_address)) == (CampaignStatus.DO_NOT_CONTACT, CampaignStatus.NEW)
    for unsubscribed, broker in ((lead, broker_a), (same_address, broker_b)):
        (event,) = _events(unsubscribed, "unsubscribed")
        assert event.broker_id == broker.pk and event.event_data["via"] == "unsubscribe_link"
    assert anonymous.post(url).status_code == 200  # again: nothing more to do, nothing more recorded
    assert len(_events(lead, "unsubscribed")) == 1 and _events(refused, "unsubscribed") == []

    # The address is now suppressed: no broker can have another consent link sent to it.
    page = _ask(client_for(broker_b), same_address, django_capture_on_commit_callbacks).content.decode()
    assert "no consent link was sent" in page


def test_unsubscribe_follows_the_address_the_email_went_to(client_for, broker_a, django_capture_on_commit_callbacks):
    lead = LeadFactory(assigned_broker=broker_a, email="old.owner@example.net")
    url = _path(_mailed_links(client_for(broker_a), lead, django_capture_on_commit_callbacks)["unsubscribe"])
    elsewhere = LeadFactory(email="old.owner@example.net")
    with service_context():  # e.g. a new owner arrived on the lead since
        Lead.objects.filter(pk=lead.pk).update(
            email="new.owner@example.net", **contact_indexes("new.owner@example.net", lead.phone)
        )
    assert Client().post(url).status_code == 200
    assert (_status(elsewhere), _status(lead)) == (CampaignStatus.UNSUBSCRIBED, CampaignStatus.NEW)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_bad_unsubscribe_token_changes_nothing(client_for, broker_a, django_capture_on_commit_callbacks, method):
    lead = LeadFactory(assigned_broker=broker_a)
    url = _path(_mailed_links(client_for(broker_a), lead, django_capture_on_commit_callbacks)["unsubscribe"])
    consent_url = _path(_links(mail.outbox[-1].body)["consent"])
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    consent_token = urllib.parse.parse_qs(urllib.parse.urlsplit(consent_url).query)["token"][0]
    for bad in (forged, "", "garbage", consent_token, token + "\n"):
        response = getattr(Client(), method)("/unsubscribe?" + urllib.parse.urlencode({"token": bad}))
        assert response.status_code == 400 and "not valid" in response.content.decode()
    assert _status(lead) == CampaignStatus.NEW and _events(lead, "unsubscribed") == []
    with service_context():
        assert not LeadConsentAudit.objects.filter(lead_id=lead.pk).exists()
