from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from equity_connect.db import service_context
from leads.models import CampaignStatus, Lead
from security import crypto
from security.models import Broker, PartnerKey

pytestmark = pytest.mark.django_db


def seed(**options):
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_covers_both_brokers_and_every_status():
    first = seed(leads=400)
    second = seed(leads=400)
    assert "400 created this run" in first and "0 created this run" in second
    users = get_user_model().objects
    assert users.get(username="ops@example.com").is_staff
    assert users.get(username="broker1@example.com").check_password("demo-pass-123")
    with service_context():
        assert Broker.objects.filter(email__in=["broker1@example.com", "broker2@example.com"]).count() == 2
        per_broker = {b.email: b.leads.count() for b in Broker.objects.all()}
        statuses = set(Lead.objects.values_list("campaign_status", flat=True))
        key = PartnerKey.objects.get(label="demo")
    assert per_broker == {"broker1@example.com": 200, "broker2@example.com": 200}
    assert statuses == set(CampaignStatus.values)
    # the partner key's id and secret are printed; the secret is stored encrypted, not in plain text
    secret = crypto.decrypt(key.secret_ciphertext)
    assert f"key_id={key.key_id}" in first and f"secret={secret}" in first
    assert secret not in key.secret_ciphertext
    assert "already loaded" in seed(once=True)
