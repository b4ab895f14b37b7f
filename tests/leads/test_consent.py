"""Consent links: signing, the public page, single use, and what a bad link changes (nothing)."""

from __future__ import annotations

import html
import io
import re
import threading
import urllib.parse
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.consent.services import consent_link_create
from leads.consent.texts import CURRENT_VERSION
from leads.contact_indexes import contact_indexes
from leads.models import CampaignStatus, ConsentToken, Lead, LeadConsentAudit
from security.consent_tokens import ConsentTokenInvalid, consent_token_sign, consent_token_verify
from tests.factories import BrokerFactory, LeadFactory
from tests.pg import blocked_by
from tests.pg import connect as second_connection
from tests.pipeline.ingest_helpers import csv_of, ingest
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

YES = {"choice": "consent", "channels": ["email"], "text_version": CURRENT_VERSION}
NO = {"choice": "refuse", "text_version": CURRENT_VERSION}


def _token(url: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]


def _new_link(lead) -> str:
    with service_context():
        return consent_link_create(lead=lead, broker=lead.assigned_broker_id)


def _state(lead):
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
        return {
            "consent": fresh.consent,
            "consented_at": fresh.consented_at,
            "status": fresh.campaign_status,
            "audit": LeadConsentAudit.objects.filter(lead_id=lead.pk).count(),
            "events": PipelineEvent.objects.filter(lead_id=lead.pk, event_type__startswith="consent_g").count(),
            "used": list(ConsentToken.objects.filter(lead_id=lead.pk).values_list("used_at", flat=True)),
        }


# --- the token itself --------------------------------------------------------------------------------


def test_token_round_trip_and_payload_has_no_pii():
    # Long, distinctive values: a short random name could turn up inside a random token by chance.
    lead = LeadFactory(
        first_name="Bartholomew",
        last_name="Quackenbush",
        email="bartholomew.q@example.net",
        phone="+14155550123",
        property_address="4321 Wisteria Lane",
    )
    signed = consent_token_sign(lead_id=lead.pk, broker_id=lead.assigned_broker_id)
    claims = consent_token_verify(signed.token)
    assert (claims.lead_id, claims.broker_id, claims.token_hash) == (
        lead.pk,
        lead.assigned_broker_id,
        signed.token_hash,
    )
    for pii in (lead.email, lead.phone, lead.first_name, lead.last_name, lead.property_address):
        assert pii.lower() not in signed.token.lower()
    assert signed.expires_at - timezone.now() > timedelta(days=6, hours=23)


def test_every_single_character_change_is_rejected():
    lead = LeadFactory()
    token = consent_token_sign(lead_id=lead.pk, broker_id=lead.assigned_broker_id).token
    for position, char in enumerate(token):
        for replacement in {"a" if char != "a" else "b", "0" if char != "0" else "1", char.swapcase()} - {char}:
            with pytest.raises(ConsentTokenInvalid):
                consent_token_verify(token[:position] + replacement + token[position + 1 :])
    for bad in ("", "x", token + "\n", token[:-1], token + "0", " " + token):
        with pytest.raises(ConsentTokenInvalid):
            consent_token_verify(bad)


def test_a_token_signed_with_another_secret_is_rejected(settings):
    lead = LeadFactory()
    settings.FORM_LINK_SECRET = "another-secret-entirely-0123456789"
    token = consent_token_sign(lead_id=lead.pk, broker_id=None).token
    settings.FORM_LINK_SECRET = "test-form-link-secret-0123456789abcdef"
    with pytest.raises(ConsentTokenInvalid):
        consent_token_verify(token)


# --- the public page ---------------------------------------------------------------------------------


def test_get_shows_details_then_post_records_consent_once(client):
    lead = LeadFactory(first_name="Martha", last_name="Keller")
    url = _new_link(lead)
    path = urllib.parse.urlsplit(url)
    page_url = f"{path.path}?{path.query}&utm_source=instantly&utm_campaign=fall"
    response = client.get(page_url)
    page = response.content.decode()
    assert response.status_code == 200
    for text in (
        "Martha Keller",
        lead.property_address,
        lead.email,
        escape(lead.assigned_broker.name),
        "give-consent",
        "refuse-consent",
        'name="viewport"',
        'class="public"',
    ):
        assert text in page
    assert _state(lead)["audit"] == 0  # showing changes nothing

    response = client.post(page_url, YES, HTTP_USER_AGENT="Mozilla/5.0 (test phone)", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
        audit = LeadConsentAudit.objects.get(lead_id=lead.pk)
        event = PipelineEvent.objects.get(lead_id=lead.pk, event_type="consent_given")
        token = ConsentToken.objects.get(lead_id=lead.pk)
    assert fresh.consent and fresh.consented_at and fresh.consent_method == "form"
    assert audit.consent and audit.method == "form" and audit.ip_address == "203.0.113.7"
    assert audit.user_agent == "Mozilla/5.0 (test phone)" and audit.token_hash == token.token_hash
    assert (audit.utm_source, audit.utm_campaign) == ("instantly", "fall")
    assert event.broker_id == lead.assigned_broker_id and token.used_at is not None

    before = _state(lead)
    for method in ("get", "post"):
        again = getattr(client, method)(page_url, NO if method == "post" else None)
        assert again.status_code == 409 and "already been used" in again.content.decode()
    assert _state(lead) == before


def test_do_not_contact_me_choice(client):
    lead = LeadFactory(contactable=True)
    url = _new_link(lead)
    response = client.post(url, NO)
    assert response.status_code == 200 and "will not contact you" in response.content.decode()
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
        audit = LeadConsentAudit.objects.get(lead_id=lead.pk)
        assert PipelineEvent.objects.filter(lead_id=lead.pk, event_type="consent_refused").count() == 1
    assert fresh.campaign_status == CampaignStatus.DO_NOT_CONTACT and not fresh.consent
    assert not audit.consent


@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_expired_and_missing_tokens_show_a_page_and_change_nothing(client, method):
    lead = LeadFactory()
    url = _new_link(lead)
    token = _token(url)
    forged = token[:40] + ("a" if token[40] != "a" else "b") + token[41:]
    unknown = consent_token_sign(lead_id=lead.pk, broker_id=lead.assigned_broker_id).token  # never stored
    before = _state(lead)
    for bad, status, words in (
        (forged, 400, "not valid"),
        (unknown, 400, "not valid"),
        ("", 400, "not valid"),
        ("garbage", 400, "not valid"),
    ):
        response = getattr(client, method)(
            f"/consent?token={urllib.parse.quote(bad)}", YES if method == "post" else None
        )
        assert response.status_code == status and words in response.content.decode()
    assert _state(lead) == before
    with service_context():
        ConsentToken.objects.filter(lead_id=lead.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = getattr(client, method)(url, YES if method == "post" else None)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert _state(lead) == before


def test_forged_post_does_not_spend_the_real_token(client):
    lead = LeadFactory()
    url = _new_link(lead)
    token = _token(url)
    client.post("/consent?token=" + token[:-1] + ("0" if token[-1] != "0" else "1"), YES)
    assert client.post(url, YES).status_code == 200
    assert _state(lead)["consent"] is True


def test_a_bad_choice_changes_nothing(client):
    lead = LeadFactory()
    url = _new_link(lead)
    assert client.post(url, {"choice": "maybe"}).status_code == 400
    assert _state(lead)["used"] == [None]


def test_management_command_prints_the_url():
    lead = LeadFactory()
    out = io.StringIO()
    call_command("consent_link", str(lead.pk), stdout=out)
    url = out.getvalue().strip()
    assert url.startswith("http://127.0.0.1:8000/consent?token=")
    assert consent_token_verify(_token(url)).lead_id == lead.pk
    with service_context():
        assert ConsentToken.objects.filter(lead_id=lead.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_record_consent_once():
    lead = LeadFactory()
    url = _new_link(lead)
    statuses = []

    def submit():
        from django.db import connection

        try:
            statuses.append(Client().post(url, YES).status_code)
        finally:
            connection.close()

    # A lock on the token's row holds both submissions where they spend it, so that they try at the same
    # moment, each having found the token unused.
    with second_connection(admin=True, autocommit=False) as holder:
        holder.execute("SELECT 1 FROM consent_tokens WHERE lead_id = %s FOR UPDATE", [lead.pk])
        threads = [threading.Thread(target=submit) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(blocked_by(holder.info.backend_pid)) == 2, message="both submissions at the token")
        holder.rollback()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 409]
    state = _state(lead)
    assert state["consent"] is True and state["audit"] == 1 and state["events"] == 1


def test_the_broker_sees_the_consent_on_the_lead_page(client, client_for, broker_a):
    lead = LeadFactory(assigned_broker=broker_a)
    url = _new_link(lead)
    Client().post(url, YES)
    page = client_for(broker_a).get(f"/portal/leads/{lead.pk}/").content.decode()
    assert "<strong>Given</strong>" in page and "Consent given" in page


def test_the_consent_post_needs_no_cookie(db):
    lead = LeadFactory()
    url = _new_link(lead)
    response = Client(enforce_csrf_checks=True).post(url, YES)
    assert response.status_code == 200 and _state(lead)["consent"] is True


@pytest.mark.parametrize("who", ["broker", "staff"])
def test_a_logged_in_session_cannot_answer_for_the_lead(client_for, broker_a, staff_user, who):
    lead = LeadFactory(assigned_broker=broker_a)
    url = _new_link(lead)
    client = client_for(broker_a if who == "broker" else staff_user)
    before = _state(lead)
    for response in (client.get(url), client.post(url, YES), client.post(url, NO)):
        page = response.content.decode()
        assert response.status_code == 403 and "signed in" in page and "Nothing has been recorded" in page
        assert "give-consent" not in page
    assert _state(lead) == before  # no consent, no audit row, no event, the link unspent
    client.logout()
    assert client.post(url, YES).status_code == 200  # the lead, not logged in, still can
    assert _state(lead)["consent"] is True


# --- per channel, and what the consent record keeps ----------------------------------------------------------


def test_the_lead_chooses_the_channels(client):
    lead = LeadFactory()
    url = _new_link(lead)
    page = client.get(url).content.decode()
    for channel in ("email", "sms", "phone"):
        assert f'id="channel-{channel}"' in page
    assert " checked" not in page  # nothing is ticked for the lead

    nothing_ticked = client.post(url, YES | {"channels": []})
    assert nothing_ticked.status_code == 400 and "Tick at least one way" in nothing_ticked.content.decode()
    assert _state(lead)["used"] == [None] and _state(lead)["consent"] is False  # and the link still works

    response = client.post(url, YES | {"channels": ["sms", "phone"]})
    assert response.status_code == 200 and "Text messages (SMS), Phone calls" in response.content.decode()
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
        audit = LeadConsentAudit.objects.get(lead_id=lead.pk)
        event = PipelineEvent.objects.get(lead_id=lead.pk, event_type="consent_given")
    assert (fresh.consent, fresh.consent_email, fresh.consent_sms, fresh.consent_phone) == (True, False, True, True)
    assert audit.channels == ["sms", "phone"] and event.event_data["channels"] == ["sms", "phone"]


def test_refusing_withdraws_every_channel(client):
    lead = LeadFactory(consent=True, consented_at=timezone.now(), consent_sms=True, consent_phone=True)
    client.post(_new_link(lead), NO | {"channels": ["email"]})
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
        audit = LeadConsentAudit.objects.get(lead_id=lead.pk)
    assert (fresh.consent, fresh.consent_email, fresh.consent_sms, fresh.consent_phone) == (False, False, False, False)
    assert fresh.campaign_status == CampaignStatus.DO_NOT_CONTACT and audit.channels == [] and not audit.consent


def test_the_record_keeps_the_text_and_version_shown_the_channels_the_client_ip_and_the_user_agent(client, settings):
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/8"]
    lead = LeadFactory(assigned_broker=BrokerFactory(name="Dana Whitfield"))
    url = _new_link(lead)
    page = client.get(url).content.decode()
    shown = re.search(r'<p class="small" id="consent-text" data-version="([^"]+)">(.*?)</p>', page, re.S)
    before = timezone.now()
    client.post(
        url,
        YES | {"channels": ["email", "phone"], "text_version": shown.group(1)},
        REMOTE_ADDR="10.0.0.5",  # our proxy
        HTTP_X_FORWARDED_FOR="198.51.100.9, 10.0.0.7",  # the client, then our other proxy
        HTTP_USER_AGENT="Mozilla/5.0 (her phone)",
    )
    with service_context():
        audit = LeadConsentAudit.objects.get(lead_id=lead.pk)
    assert audit.consent_text == html.unescape(shown.group(2)) and "Dana Whitfield" in audit.consent_text
    assert "in the ways you ticked above" in audit.consent_text
    assert audit.consent_text_version == shown.group(1) == CURRENT_VERSION
    assert audit.channels == ["email", "phone"] and audit.consent
    assert audit.ip_address == "198.51.100.9" and audit.user_agent == "Mozilla/5.0 (her phone)"
    assert before <= audit.created_at <= timezone.now()

    # A forwarded-for header written by someone who is not our proxy is not believed.
    other = LeadFactory()
    client.post(_new_link(other), YES, REMOTE_ADDR="203.0.113.50", HTTP_X_FORWARDED_FOR="192.0.2.1")
    with service_context():
        assert LeadConsentAudit.objects.get(lead_id=other.pk).ip_address == "203.0.113.50"


def test_an_answer_without_the_text_version_is_asked_again(client):
    lead = LeadFactory()
    url = _new_link(lead)
    for version in (None, "1999-01"):
        data = {key: value for key, value in (YES | {"text_version": version}).items() if value is not None}
        response = client.post(url, data)
        assert response.status_code == 400 and "give-consent" in response.content.decode()
    assert _state(lead)["used"] == [None] and _state(lead)["audit"] == 0


# --- a link is bound to the lead's broker, e-mail and phone -----------------------------------------------


@pytest.mark.parametrize("change", ["broker", "email", "phone", "merged"])
def test_a_link_dies_when_its_lead_changes_broker_email_or_phone(client, change):
    lead = LeadFactory(email="first@example.net", phone="+14155550100")
    url = _new_link(lead)
    with service_context():
        Lead.objects.filter(pk=lead.pk).update(first_name="Renamed", lead_score=91)  # other changes: still fine
    assert client.get(url).status_code == 200
    values = {
        "broker": {"assigned_broker": BrokerFactory()},
        "email": {"email": "second@example.net"},
        "phone": {"phone": "+14155550199"},
        "merged": {"merged_into": LeadFactory()},
    }[change]
    if change in ("email", "phone"):  # whoever writes an e-mail or phone writes its blind indexes too
        values |= contact_indexes(values.get("email", lead.email), values.get("phone", lead.phone))
    with service_context():
        Lead.objects.filter(pk=lead.pk).update(**values)
    before = _state(lead)
    for response in (client.get(url), client.post(url, YES), client.post(url, NO)):
        assert response.status_code == 400 and "not valid" in response.content.decode()
    assert _state(lead) == before and before["used"] == [None] and before["audit"] == 0


def test_a_link_dies_when_a_new_owner_arrives_by_ingestion(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    lead = LeadFactory(mak="MAK-OWNER-1", first_name="Olga", last_name="Old", email="olga@example.net")
    url = _new_link(lead)
    ingest(csv_of([{"mak": "MAK-OWNER-1", "first_name": "Nina", "last_name": "New", "email": "nina@example.net"}]))
    with service_context():
        assert Lead.objects.get(pk=lead.pk).email == "nina@example.net"
    before = _state(lead)
    response = client.post(url, YES)
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert _state(lead) == before and before["consent"] is False and before["audit"] == 0


def test_links_from_before_the_binding_are_invalid(client):
    lead = LeadFactory()
    url = _new_link(lead)
    with service_context():
        ConsentToken.objects.filter(lead_id=lead.pk).update(fingerprint="")  # as migration 0008 leaves them
    assert client.post(url, YES).status_code == 400 and _state(lead)["consent"] is False
