"""The lead column lists live in leads/columns.py, and the seed-compatible `upsert_lead()` takes exactly the
columns the ingestion writes (plus the score and the source)."""

from __future__ import annotations

import pytest
from django.db import connection

from leads.columns import INGESTED, KEEP_FIRST, KEEP_NEWEST, KEYS, PORTAL_EXPORT, SEED_UPSERT_PARAMETERS, STAFF_EXPORT
from leads.models import Lead


@pytest.mark.django_db
def test_upsert_lead_takes_the_ingested_columns():
    with connection.cursor() as cursor:
        cursor.execute("SELECT proargnames FROM pg_proc WHERE proname = 'upsert_lead'")
        (names,) = cursor.fetchone()
    assert {name.removeprefix("p_") for name in names} == {*SEED_UPSERT_PARAMETERS, "lead_score", "source"}


def test_every_listed_column_is_a_lead_column():
    fields = {field.attname for field in Lead._meta.concrete_fields}
    assert set(INGESTED) <= fields and set(PORTAL_EXPORT) <= fields
    assert set(STAFF_EXPORT) - fields == {"assigned_broker_email"}  # the broker's email, joined in
    assert set(KEYS) <= set(KEEP_FIRST) and not set(KEEP_FIRST) & set(KEEP_NEWEST)
    assert len(INGESTED) == len(set(INGESTED))


@pytest.mark.django_db
def test_upsert_lead_merges_the_mailing_address_like_the_property_address():
    from equity_connect.db import service_context

    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT upsert_lead(p_mak => 'UM-1', p_mailing_state => 'CA', p_mailing_city => 'Los Angeles')")
        (lead_id,) = cursor.fetchone()
        cursor.execute("SELECT upsert_lead(p_mak => 'UM-1', p_mailing_state => 'TX', p_mailing_zip => '73301')")
        assert cursor.fetchone() == (lead_id,)
        lead = Lead.objects.get(pk=lead_id)
    assert (lead.mailing_address, lead.mailing_city, lead.mailing_state, lead.mailing_zip) == (
        None,
        "Los Angeles",
        "CA",
        "73301",
    )
