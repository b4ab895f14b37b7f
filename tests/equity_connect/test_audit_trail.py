"""`pipeline_events` is append-only for every role the application uses (pipeline 0026): in SQL, under the real
roles, on the parent and directly on a partition; only the owner's definer functions rewrite it."""

from __future__ import annotations

import json

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import sql

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from security.fields import seal_note
from tests.factories import BrokerFactory, PipelineEventFactory
from tests.pg import connect

CHANGES = (
    "UPDATE {table} SET event_data = '{{}}' WHERE id = %(id)s",
    "UPDATE {table} SET event_type = 'rewritten' WHERE id = %(id)s",
    "UPDATE {table} SET created_at = created_at - interval '1 year' WHERE id = %(id)s",
    "DELETE FROM {table} WHERE id = %(id)s",
    "TRUNCATE {table}",
)


def role_setups(broker) -> dict[str, list[str]]:
    return {
        "service_role": ["SET ROLE service_role"],
        "authenticated": ["SET ROLE authenticated", f"SET request.jwt.claims.sub TO '{broker.pk}'"],
        "pipeline_writer": ["SET ROLE pipeline_writer"],
        "anon": ["SET ROLE anon"],
        "the login role": [],  # no SET ROLE: the role DATABASE_URL logs in as
    }


def stored_in(event_id: int) -> str:
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM pipeline_events WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def partitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'pipeline_events'::regclass"
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def without_the_tests_truncate():
    """The test database gives the login role TRUNCATE on every table, for Django's flush between transactional
    tests (tests/conftest.py); production never grants it. Taken away for the test, given back after."""
    app_role = sql.Identifier(settings.DATABASE_APP_ROLE)
    tables = [sql.Identifier(name) for name in ["pipeline_events", *partitions()]]
    with connect(admin=True) as owner:
        for table in tables:
            owner.execute(sql.SQL("REVOKE TRUNCATE ON {} FROM {}").format(table, app_role))
    yield
    with connect(admin=True) as owner:
        for table in tables:
            owner.execute(sql.SQL("GRANT TRUNCATE ON {} TO {}").format(table, app_role))


@pytest.mark.django_db(transaction=True)
def test_no_application_role_may_change_delete_or_truncate_an_event(without_the_tests_truncate):
    broker = BrokerFactory()
    event = PipelineEventFactory(event_type="lead_assigned", broker_id=broker.pk, event_data={"kept": True})
    partition = stored_in(event.pk)
    with service_context():
        created_at = PipelineEvent.objects.get(pk=event.pk).created_at
    assert partition.startswith("pipeline_events_")
    for role, setup in role_setups(broker).items():
        for table in ("pipeline_events", partition):
            for statement in CHANGES:
                with connect() as app:
                    for line in setup:
                        app.execute(line)
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        app.execute(statement.format(table=table), {"id": event.pk})
                        pytest.fail(f"{role} may run {statement.format(table=table)}")
    with service_context():
        kept = PipelineEvent.objects.get(pk=event.pk)
    assert (kept.event_type, kept.event_data, kept.created_at) == ("lead_assigned", {"kept": True}, created_at)


@pytest.mark.django_db(transaction=True)
def test_appending_still_works_for_the_roles_that_append():
    broker = BrokerFactory()
    insert = "INSERT INTO pipeline_events (event_type, broker_id) VALUES (%s, %s)"
    for role, setup in role_setups(broker).items():
        if role in ("anon", "the login role"):
            continue
        with connect() as app:
            for line in setup:
                app.execute(line)
            app.execute(insert, [f"appended_by_{role}", broker.pk])
    with connect() as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SET ROLE anon")
        app.execute(insert, ["appended_by_anon", broker.pk])
    with service_context():
        types = set(PipelineEvent.objects.filter(broker_id=broker.pk).values_list("event_type", flat=True))
    assert types == {"appended_by_service_role", "appended_by_authenticated", "appended_by_pipeline_writer"}


@pytest.mark.django_db
def test_no_role_but_the_owner_holds_update_delete_or_truncate_on_the_trail():
    """Every grantee of the parent and of every partition, not only the roles named above (the login role's
    TRUNCATE is the tests' own flush grant, tests/conftest.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.grantee::regrole::text, a.privilege_type"
            "  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a"
            " WHERE (c.oid = 'pipeline_events'::regclass"
            "        OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'pipeline_events'::regclass))"
            "   AND a.grantee <> c.relowner AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')"
        )
        held = cursor.fetchall()
    assert len(partitions()) >= 2
    assert {(privilege, grantee) for _, grantee, privilege in held} <= {("TRUNCATE", settings.DATABASE_APP_ROLE)}


@pytest.mark.django_db(transaction=True)
def test_a_new_months_partition_is_append_only_too():
    """Even when the owner's default privileges would give service_role everything on a new table."""
    with connect(admin=True, autocommit=False) as owner:
        owner.execute("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO service_role")
        assert owner.execute("SELECT pipeline_events_partition_create('2041-07-01')").fetchone() == (True,)
        held = owner.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE table_name = 'pipeline_events_2041_07' AND grantee = 'service_role'"
        ).fetchall()
        owner.rollback()
    assert held and {row[0] for row in held}.isdisjoint({"UPDATE", "DELETE", "TRUNCATE"})
    assert "SELECT" in {row[0] for row in held}  # the default privileges did apply, the rest was taken back


def _reseal(setup: list[str], ids, old, new):
    with connect() as app:
        for line in setup:
            app.execute(line)
        return app.execute(
            "SELECT pipeline_events_reseal(%s::bigint[], %s::jsonb[], %s::jsonb[])",
            [ids, [json.dumps(data) for data in old], [json.dumps(data) for data in new]],
        ).fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_key_rotations_reseal_replaces_sealed_values_and_nothing_else():
    broker = BrokerFactory()
    old = {"outcome": "interested", "note": seal_note("call back on Monday"), "to": seal_note("a@example.com")}
    event = PipelineEventFactory(event_type="lead_outcome", broker_id=broker.pk, event_data=old)
    service = role_setups(broker)["service_role"]
    with service_context():
        created_at = PipelineEvent.objects.get(pk=event.pk).created_at
    resealed = {**old, "note": seal_note("call back on Monday"), "to": seal_note("a@example.com")}
    refused = [
        {**old, "outcome": "not_interested"},  # a plain value
        {**old, "extra": 1},  # a new key
        {key: value for key, value in old.items() if key != "to"},  # a sealed key dropped
        {**old, "note": "rewritten in plaintext"},  # a sealed key no longer sealed
        {**old, "reason": seal_note("added")},  # a sealed key that was not there
    ]
    for new in refused:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only have its sealed values"):
            _reseal(service, [event.pk], [old], [new])
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        _reseal(service, [event.pk], [old], [])
    for role, setup in role_setups(broker).items():
        if role != "service_role":
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
                _reseal(setup, [event.pk], [old], [resealed])
                pytest.fail(f"{role} may call pipeline_events_reseal")
    assert _reseal(service, [event.pk], [{**old, "outcome": "stale"}], [{**resealed, "outcome": "stale"}]) == 0
    with service_context():
        assert PipelineEvent.objects.get(pk=event.pk).event_data == old
    assert _reseal(service, [event.pk], [old], [resealed]) == 1
    with service_context():
        kept = PipelineEvent.objects.get(pk=event.pk)
    assert (kept.event_type, kept.event_data, kept.created_at) == ("lead_outcome", resealed, created_at)
