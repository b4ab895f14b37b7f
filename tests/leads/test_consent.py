"""Consent links: signing, the public page, single use, and what a bad link changes (nothing)."""

from __future__ import annotations

import io
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
from leads.models import CampaignStatus, ConsentToken, Lead, LeadConsentAudit
from leads.services import consent_link_create
from security.consent_tokens import ConsentTokenInvalid, consent_token_sign, consent_token_verify
from tests.factories import LeadFactory
from tests.pg import blocked_by
from tests.pg import connect as second_connection
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]


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

    response = client.post(
        page_url, {"choice": "consent"}, HTTP_USER_AGENT="Mozilla/5.0 (test phone)", REMOTE_ADDR="203.0.113.7"
    )
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
        again = getattr(client, method)(page_url, {"choice": "refuse"} if method == "post" else None)
        assert again.status_code == 409 and "already been used" in again.content.decode()
    assert _state(lead) == before


def test_do_not_contact_me_choice(client):
    lead = LeadFactory(contactable=True)
    url = _new_link(lead)
    response = client.post(url, {"choice": "refuse"})
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
            f"/consent?token={urllib.parse.quote(bad)}", {"choice": "consent"} if method == "post" else None
        )
        assert response.status_code == status and words in response.content.decode()
    assert _state(lead) == before
    with service_context():
        ConsentToken.objects.filter(lead_id=lead.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = getattr(client, method)(url, {"choice": "consent"} if method == "post" else None)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert _state(lead) == before


def test_forged_post_does_not_spend_the_real_token(client):
    lead = LeadFactory()
    url = _new_link(lead)
    token = _token(url)
    client.post("/consent?token=" + token[:-1] + ("0" if token[-1] != "0" else "1"), {"choice": "consent"})
    assert client.post(url, {"choice": "consent"}).status_code == 200
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
            statuses.append(Client().post(url, {"choice": "consent"}).status_code)
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
    Client().post(url, {"choice": "consent"})
    page = client_for(broker_a).get(f"/portal/leads/{lead.pk}/").content.decode()
    assert "<strong>Given</strong>" in page and "Consent given" in page


def test_the_consent_post_needs_no_cookie(db):
    lead = LeadFactory()
    url = _new_link(lead)
    response = Client(enforce_csrf_checks=True).post(url, {"choice": "consent"})
    assert response.status_code == 200 and _state(lead)["consent"] is True


@pytest.mark.parametrize("who", ["broker", "staff"])
def test_the_consent_page_also_works_inside_a_logged_in_session(client_for, broker_a, staff_user, who):
    lead = LeadFactory(assigned_broker=broker_a)
    url = _new_link(lead)
    client = client_for(broker_a if who == "broker" else staff_user)
    assert client.get(url).status_code == 200
    assert client.post(url, {"choice": "consent"}).status_code == 200
    assert _state(lead)["consent"] is True
