"""Shared set-up of the SMS tests: the fake Twilio as a fixture, SMS-only leads, signed webhook posts."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.utils import timezone

from leads.models import CampaignStatus
from security.twilio_signature import twilio_signature
from tests.factories import LeadFactory
from tests.fakes.twilio import FakeTwilio

BASE_URL = "https://ec.example.com"
WEBHOOK = "/api/v1/webhooks/twilio"
SERVICE_SID = "MG" + "2" * 32


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio() as fake:
        settings.TWILIO_API_URL = fake.url
        settings.TWILIO_ACCOUNT_SID = fake.account_sid
        settings.TWILIO_AUTH_TOKEN = fake.auth_token
        settings.TWILIO_MESSAGING_SERVICE_SID = SERVICE_SID
        settings.TWILIO_FROM_NUMBER = ""
        settings.TWILIO_WEBHOOK_BASE_URL = BASE_URL
        settings.TWILIO_MAX_ATTEMPTS = 2
        settings.TWILIO_READ_TIMEOUT_SECONDS = 5.0
        yield fake


def sms_lead(**fields):
    """A queued, never-fed lead that consented to texts only, with a verified phone (e-mail cannot reach it)."""
    values = {
        "consent": True,
        "consent_email": False,
        "consent_sms": True,
        "consented_at": timezone.now(),
        "consent_method": "form",
        "email_verified": False,
        "phone_verified": True,
        "campaign_status": CampaignStatus.QUEUED,
    }
    values.update(fields)
    return LeadFactory(**values)


TOKEN = "test-twilio-token"


def twilio_post(client, params: dict | list, *, token: str = TOKEN, signature: str | None = "sign"):
    """POST `params` form-encoded to the webhook as Twilio does, signed with `token` (signature=None: unsigned)."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = twilio_signature(auth_token=token, url=BASE_URL + WEBHOOK, params=pairs)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    form = "application/x-www-form-urlencoded"
    return client.post(WEBHOOK, data=urlencode(pairs), content_type=form, headers=headers)


def inbound(phone: str, body: str, sid: str) -> dict:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": phone,
        "To": "+18005550100",
        "Body": body,
        "NumMedia": "0",
        "SmsStatus": "received",
    }


def sid(n: int) -> str:
    return "SM" + f"{n:032x}"
