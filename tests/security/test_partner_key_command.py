"""`manage.py partner_key create|list|revoke|reencrypt`."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from equity_connect.db import service_context
from security.models import PartnerKey
from security.services import partner_key_secret
from tests.factories import BrokerFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("partner_key", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_list_revoke_reencrypt():
    broker = BrokerFactory()
    output = run("create", "Acme Leads", "--broker", str(broker.pk), "--secret", "s" * 40)
    lines = dict(line.split("=", 1) for line in output.splitlines())
    assert lines["secret"] == "s" * 40
    with service_context():
        key = PartnerKey.objects.get(key_id=lines["key_id"])
        assert key.default_broker_id == broker.pk and key.secret_ciphertext != "s" * 40
        assert partner_key_secret(key=key) == "s" * 40
    listing = run("list")
    assert lines["key_id"] in listing and "s" * 40 not in listing and broker.email in listing
    assert "revoked" in run("revoke", lines["key_id"])
    with pytest.raises(CommandError):
        run("revoke", lines["key_id"])
    with pytest.raises(CommandError):
        run("create", "Acme Leads", "--secret", "short")
    assert "re-encrypted 1" in run("reencrypt")
    random_secret = dict(line.split("=", 1) for line in run("create", "Other").splitlines())["secret"]
    assert len(random_secret) == 64


def test_create_with_allowed_brokers_and_v1():
    default, extra = BrokerFactory(), BrokerFactory()
    plain = dict(line.split("=", 1) for line in run("create", "Acme Leads", "--broker", extra.email).splitlines())
    output = run("create", "Old Signer", "--broker", str(default.pk), "--allow-broker", extra.email, "--allow-v1")
    lines = dict(line.split("=", 1) for line in output.splitlines())
    with service_context():
        key = PartnerKey.objects.get(key_id=lines["key_id"])
        assert key.allow_v1 is True and list(key.allowed_brokers.all()) == [extra]
        assert PartnerKey.objects.get(key_id=plain["key_id"]).allow_v1 is False  # off unless asked for
    listing = {line.split("\t")[0]: line for line in run("list").splitlines()}
    assert f"allowed_brokers={extra.email}" in listing[lines["key_id"]] and "v1=allowed" in listing[lines["key_id"]]
    assert "allowed_brokers=-" in listing[plain["key_id"]] and "v1=refused" in listing[plain["key_id"]]
    with pytest.raises(CommandError, match="no broker"):
        run("create", "Other", "--allow-broker", "nobody@example.com")
