"""Migration 0008: existing consents become consent to e-mail, and `consent` stays true exactly when a channel
is, whoever writes the lead (the portal's services, the seed's SQL, the ingestion's owner change). Migration 0011:
the seeded contact windows, and its reverse."""

from __future__ import annotations

from datetime import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from leads.models import Lead
from tests.equity_connect.test_migrations import manage, scratch_database  # noqa: F401 (a fixture)
from tests.factories import LeadFactory
from tests.pg import conninfo
from tests.pipeline.ingest_helpers import csv_of, ingest

CHANNELS = ("consent", "consent_email", "consent_sms", "consent_phone")


def _consent(lead_id) -> tuple:
    with service_context():
        return tuple(Lead.objects.filter(pk=lead_id).values_list(*CHANNELS).get())


def _sql(statement: str, params=()) -> None:
    with service_context(), connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.slow
def test_existing_consents_count_as_email_only_and_the_migration_reverses(scratch_database):  # noqa: F811
    manage(scratch_database, "migrate", "--noinput")
    manage(scratch_database, "migrate", "leads", "0007", "--noinput")  # 0008's reverse
    owner = {**conninfo(admin=True), "dbname": scratch_database}
    with psycopg.connect(**owner, autocommit=True) as db:
        given, never = [
            db.execute(
                "INSERT INTO leads (consent, consented_at) VALUES (%s, %s) RETURNING id", [consent, when]
            ).fetchone()[0]
            for consent, when in ((True, timezone.now()), (False, None))
        ]
    manage(scratch_database, "migrate", "leads", "0008", "--noinput")
    with psycopg.connect(**owner, autocommit=True) as db:
        selected = db.execute(f"SELECT id, {', '.join(CHANNELS)} FROM leads").fetchall()
    rows = {row[0]: row[1:] for row in selected}
    assert rows == {given: (True, True, False, False), never: (False, False, False, False)}


@pytest.mark.django_db
def test_consent_follows_the_channels_and_the_channels_follow_consent():
    lead = LeadFactory()
    _sql("UPDATE leads SET consent_sms = true, consented_at = now() WHERE id = %s", [lead.pk])
    assert _consent(lead.pk) == (True, False, True, False)
    _sql("UPDATE leads SET consent_phone = true WHERE id = %s", [lead.pk])
    _sql("UPDATE leads SET consent_sms = false WHERE id = %s", [lead.pk])
    assert _consent(lead.pk) == (True, False, False, True)
    _sql("UPDATE leads SET consent_phone = false WHERE id = %s", [lead.pk])
    assert _consent(lead.pk) == (False, False, False, False)

    # Writers that know only the seed's flag: given counts as e-mail, withdrawn withdraws every channel.
    _sql("UPDATE leads SET consent = true, consented_at = now() WHERE id = %s", [lead.pk])
    assert _consent(lead.pk) == (True, True, False, False)
    _sql("UPDATE leads SET consent_sms = true, consent_phone = true WHERE id = %s", [lead.pk])
    _sql("UPDATE leads SET consent = false WHERE id = %s", [lead.pk])
    assert _consent(lead.pk) == (False, False, False, False)
    legacy = LeadFactory(consent=True, consented_at=timezone.now())
    assert _consent(legacy.pk) == (True, True, False, False)
    texts = LeadFactory(consent_sms=True, consented_at=timezone.now())
    assert _consent(texts.pk) == (True, False, True, False)


@pytest.mark.django_db
def test_a_new_owner_arriving_by_ingestion_withdraws_every_channel(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    lead = LeadFactory(
        mak="MAK-CHANNELS-1",
        first_name="Olga",
        last_name="Old",
        consent_sms=True,
        consent_phone=True,
        consented_at=timezone.now(),
    )
    ingest(csv_of([{"mak": "MAK-CHANNELS-1", "first_name": "Nina", "last_name": "New", "email": "nina@example.net"}]))
    assert _consent(lead.pk) == (False, False, False, False)


@pytest.mark.slow
def test_0011_seeds_the_contact_windows_and_reverses(scratch_database):  # noqa: F811
    owner = {**conninfo(admin=True), "dbname": scratch_database}
    manage(scratch_database, "migrate", "--noinput")
    with psycopg.connect(**owner, autocommit=True) as db:
        rows = db.execute(
            'SELECT channel, count(*), count(DISTINCT state), min(start), max("end"),'
            " bool_and(days = '{0,1,2,3,4,5,6}'), bool_or(closed_on_holidays) FROM contact_windows GROUP BY channel"
        ).fetchall()
        assert db.execute("SELECT relrowsecurity FROM pg_class WHERE relname = 'contact_windows'").fetchone() == (
            True,
        )
    assert sorted(rows) == [
        ("phone", 51, 51, time(8), time(21), True, False),
        ("sms", 51, 51, time(8), time(21), True, False),
    ]
    manage(scratch_database, "migrate", "leads", "0008", "--noinput")  # 0011's reverse (and pipeline 0013's)
    with psycopg.connect(**owner, autocommit=True) as db:
        assert db.execute("SELECT to_regclass('contact_windows')").fetchone() == (None,)
        columns = db.execute(
            "SELECT count(*) FROM information_schema.columns WHERE column_name LIKE 'mailing%'"
        ).fetchone()
        assert columns == (0,)
        (arguments,) = db.execute("SELECT proargnames FROM pg_proc WHERE proname = 'upsert_lead'").fetchone()
        assert "p_owner2_name" in arguments and "p_mailing_state" not in arguments
    manage(scratch_database, "migrate", "--noinput")
