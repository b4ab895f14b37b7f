"""Who saw what (leads/access.py): the portal's lead page and export write one access record each, through the
real middleware; the records are append-only for every role but the owner, outlive their lead, and row-level
security lets a broker add only records naming themselves and read none."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.db import ProgrammingError, connection, transaction
from django.urls import reverse

from equity_connect.db import broker_context, service_context
from leads.models import LeadAccessRecord
from tests.factories import BrokerFactory, LeadAccessRecordFactory, LeadFactory, StaffUserFactory
from tests.pg import connect

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

BROWSER = "Mozilla/5.0 (pytest) access-records"


def records(**filters) -> list[LeadAccessRecord]:
    with service_context():
        return list(LeadAccessRecord.objects.filter(**filters).order_by("id"))


def test_a_broker_opening_a_lead_writes_one_view_record(client, broker_a, lead_a):
    client.force_login(broker_a.user)
    response = client.get(
        reverse("portal:lead_detail", args=[lead_a.pk]), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.7"
    )
    assert response.status_code == 200
    [record] = records(lead_id=lead_a.pk)
    assert (record.action, record.via, record.user_id, record.broker_id) == (
        "view",
        "portal.lead_detail",
        broker_a.user.pk,
        broker_a.pk,
    )
    assert (record.ip_address, record.user_agent, record.username) == ("203.0.113.7", BROWSER, broker_a.user.username)


def test_another_brokers_lead_is_a_404_and_records_nothing(client, broker_a, lead_b):
    client.force_login(broker_a.user)
    assert client.get(reverse("portal:lead_detail", args=[lead_b.pk])).status_code == 404
    assert records() == []


def test_the_client_address_comes_through_our_proxies(client, settings, broker_a, lead_a):
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/8"]
    client.force_login(broker_a.user)
    client.get(
        reverse("portal:lead_detail", args=[lead_a.pk]),
        REMOTE_ADDR="10.1.2.3",
        HTTP_X_FORWARDED_FOR="198.51.100.9, 10.1.2.4",
    )
    assert [record.ip_address for record in records()] == ["198.51.100.9"]


def test_the_portal_export_writes_one_record_with_its_filters_and_row_count(client, broker_a, lead_a):
    LeadFactory(assigned_broker=broker_a, email_verified=True)
    LeadFactory(assigned_broker=broker_a, email_verified=True)
    LeadFactory(assigned_broker=BrokerFactory(), email_verified=True)
    client.force_login(broker_a.user)
    response = client.get(reverse("portal:lead_export"), {"email_verified": "yes"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert len(body.strip().splitlines()) == 3  # the header and two leads
    [record] = records()
    assert (record.action, record.via, record.lead_id, record.row_count) == ("export", "portal.lead_export", None, 2)
    assert record.broker_id == broker_a.pk and record.filters["email_verified"] is True


def test_a_record_outlives_its_lead(client, broker_a, lead_a):
    client.force_login(broker_a.user)
    client.get(reverse("portal:lead_detail", args=[lead_a.pk]))
    staff = StaffUserFactory()
    client.force_login(staff)
    assert client.post(reverse("admin:leads_lead_delete", args=[lead_a.pk]), {"post": "yes"}).status_code == 302
    kept = records(lead_id=lead_a.pk)
    assert [(record.action, record.user_id) for record in kept] == [
        ("view", broker_a.user.pk),
        ("change", staff.pk),
    ]
    assert kept[1].detail == {"deleted": True}


# --- append-only, in SQL under the real roles ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_only_the_table_owner_may_change_or_delete_an_access_record():
    record = LeadAccessRecordFactory(reason="as recorded")
    broker = BrokerFactory()
    attempts = [
        ("UPDATE lead_access_records SET reason = 'rewritten' WHERE id = %s", [record.pk]),
        ("UPDATE lead_access_records SET lead_id = NULL WHERE id = %s", [record.pk]),
        ("DELETE FROM lead_access_records WHERE id = %s", [record.pk]),
        ("TRUNCATE lead_access_records", None),
    ]
    setups = {
        "service_role": ["SET ROLE service_role"],
        "authenticated": ["SET ROLE authenticated", f"SET request.jwt.claims.sub TO '{broker.pk}'"],
        "pipeline_writer": ["SET ROLE pipeline_writer"],
        "anon": ["SET ROLE anon"],
    }
    for setup in setups.values():
        for statement, params in attempts:
            with connect() as app:
                for line in setup:
                    app.execute(line)
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement, params)
    # The login role itself (no SET ROLE) holds no UPDATE or DELETE either.
    for statement, params in attempts[:3]:
        with connect() as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(statement, params)
    with service_context():
        assert LeadAccessRecord.objects.get(pk=record.pk).reason == "as recorded"
    with connect(admin=True) as owner:  # the owner may (a data-protection erase, say)
        owner.execute("UPDATE lead_access_records SET reason = 'redacted' WHERE id = %s", [record.pk])
        owner.execute("DELETE FROM lead_access_records WHERE id = %s", [record.pk])
    with service_context():
        assert not LeadAccessRecord.objects.filter(pk=record.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_trigger_refuses_a_role_that_was_granted_update_and_delete():
    """The second wall: even a role someone granted UPDATE and DELETE may not rewrite a record."""
    record = LeadAccessRecordFactory(reason="as recorded")
    with connect(admin=True) as owner:
        owner.execute("GRANT UPDATE, DELETE ON lead_access_records TO service_role")
        owner.execute("CREATE POLICY test_service_all ON lead_access_records FOR ALL TO service_role USING (true)")
    try:
        for statement in (
            "UPDATE lead_access_records SET reason = 'rewritten' WHERE id = %s",
            "DELETE FROM lead_access_records WHERE id = %s",
        ):
            with connect() as app:
                app.execute("SET ROLE service_role")
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                    app.execute(statement, [record.pk])
    finally:
        with connect(admin=True) as owner:
            owner.execute("DROP POLICY test_service_all ON lead_access_records")
            owner.execute("REVOKE UPDATE, DELETE ON lead_access_records FROM service_role")


# --- row-level security --------------------------------------------------------------------------------------

INSERT = (
    "INSERT INTO lead_access_records (user_id, broker_id, action, via, lead_id)"
    " VALUES (%s, %s, 'view', 'portal.lead_detail', %s)"
)


def test_a_broker_may_add_only_records_naming_themselves_and_reads_none(broker_a, broker_b, lead_a):
    LeadAccessRecordFactory(user_id=broker_b.user.pk, broker_id=broker_b.pk, lead_id=lead_a.pk)
    with broker_context(broker_a.pk), connection.cursor() as cursor:
        cursor.execute(INSERT, [broker_a.user.pk, broker_a.pk, lead_a.pk])  # themselves: allowed
    refused = [
        [broker_a.user.pk, broker_b.pk, lead_a.pk],  # another broker's id
        [broker_b.user.pk, broker_a.pk, lead_a.pk],  # another broker's user
        [broker_a.user.pk, None, lead_a.pk],  # no broker at all
    ]
    for params in refused:
        with (
            pytest.raises(ProgrammingError, match="row-level security"),
            broker_context(broker_a.pk),
            connection.cursor() as cursor,
        ):
            cursor.execute(INSERT, params)
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        broker_context(broker_a.pk),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT count(*) FROM lead_access_records")
    with service_context():
        assert LeadAccessRecord.objects.count() == 2  # service_role reads all


def test_without_a_context_nothing_is_read_or_written(broker_a, lead_a):
    LeadAccessRecordFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM lead_access_records")
        assert cursor.fetchone() == (0,)
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(INSERT, [broker_a.user.pk, broker_a.pk, uuid.uuid4()])
