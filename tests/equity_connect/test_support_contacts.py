"""SUPPORT_CONTACTS: parsed, shown on the admin index, printed by the command, named at the end of alert mails,
and checked by `check --deploy`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from equity_connect.checks import support_contacts_are_set
from equity_connect.support import SupportContact, on_call_contact, support_contacts

CONTACTS = ["data=data-team@example.com", "on-call=+1 415 555 0100", "instantly=ops@example.com"]


def test_parsed_in_order_and_the_on_call_one_found(settings):
    settings.SUPPORT_CONTACTS = CONTACTS
    assert [str(contact) for contact in support_contacts()] == [
        "data: data-team@example.com",
        "on-call: +1 415 555 0100",
        "instantly: ops@example.com",
    ]
    assert on_call_contact() == SupportContact("on-call", "+1 415 555 0100")
    settings.SUPPORT_CONTACTS = CONTACTS[:1]
    assert on_call_contact() == SupportContact("data", "data-team@example.com")  # no on-call role: the first


def test_the_command_prints_them_and_refuses_a_malformed_entry(settings):
    settings.SUPPORT_CONTACTS = CONTACTS
    out = StringIO()
    call_command("support_contacts", stdout=out)
    assert "on-call    +1 415 555 0100  (on call" in out.getvalue()
    settings.SUPPORT_CONTACTS = ["nobody"]
    with pytest.raises(CommandError, match="'nobody' is not `role=address`"):
        call_command("support_contacts", stdout=StringIO())


def test_deploy_check_warns_when_empty_and_fails_when_malformed(settings):
    settings.SUPPORT_CONTACTS = []
    assert [message.id for message in support_contacts_are_set()] == ["equity_connect.W021"]
    settings.SUPPORT_CONTACTS = ["=x"]
    assert [message.id for message in support_contacts_are_set()] == ["equity_connect.E016"]
    settings.SUPPORT_CONTACTS = CONTACTS
    assert support_contacts_are_set() == []


@pytest.mark.django_db
def test_the_admin_index_shows_them(admin_client, settings):
    settings.SUPPORT_CONTACTS = CONTACTS
    page = admin_client.get("/admin/").content.decode()
    assert 'id="support-contacts"' in page
    assert '<th scope="row">on-call</th><td>+1 415 555 0100</td>' in page
    assert 'href="mailto:data-team@example.com"' in page
    settings.SUPPORT_CONTACTS = []
    assert "No support contacts configured" in admin_client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_every_alert_mail_ends_with_the_on_call_contact(settings):
    from equity_connect.db import service_context
    from pipeline.models import Alert
    from pipeline.monitoring.notify import alert_notify

    settings.ALERT_EMAILS = ["ops@example.com"]
    settings.ALERT_WEBHOOK_URL = ""
    settings.SUPPORT_CONTACTS = CONTACTS
    with service_context():
        alert = Alert.objects.create(rule="dlq_depth", severity="critical", state="firing", message="DLQ depth 150")
        assert alert_notify(alert=alert, change="opened", title="DLQ depth")["email"] is True
    (message,) = mail.outbox
    assert message.body.endswith("\n-- \nOn call: on-call: +1 415 555 0100\n")
