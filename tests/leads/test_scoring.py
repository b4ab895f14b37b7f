"""Scoring: 0-100, a stored breakdown by category, weights overridable in one place."""

from __future__ import annotations

import pytest
from django.db import connection

from equity_connect.db import service_context
from leads.models import Lead
from leads.scoring import leads_rescore, score_weights_sync
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_rescore_stores_a_breakdown_and_a_bounded_score():
    strong = LeadFactory(
        age=78,
        estimated_equity=600_000,
        property_value=1_200_000,
        owner_occupied=True,
        property_type="Single Family",
        property_state="CA",
        email_verified=True,
        phone_verified=True,
        melissa_payload={"confidence": "high"},
    )
    weak = LeadFactory(
        age=40,
        estimated_equity=0,
        property_value=None,
        owner_occupied=False,
        property_type=None,
        property_state="WY",
        email=None,
        phone=None,
        email_verified=False,
        phone_verified=False,
    )
    with service_context():
        assert leads_rescore() >= 2
        strong.refresh_from_db()
        weak.refresh_from_db()
    assert set(strong.score_breakdown) >= {"property", "demographics", "enrichment", "behavioral", "total"}
    assert strong.lead_score == strong.score_breakdown["total"] == 90
    assert 0 <= weak.lead_score < 10
    assert strong.score_breakdown["property"] == 40 and strong.score_breakdown["demographics"] == 30


def test_weights_are_configurable(settings):
    lead = LeadFactory(
        age=78,
        estimated_equity=0,
        property_value=None,
        owner_occupied=False,
        property_type=None,
        property_state=None,
        email=None,
        phone=None,
        email_verified=False,
        phone_verified=False,
    )
    settings.LEAD_SCORE_WEIGHTS = {"age_75": 25}
    with service_context():
        leads_rescore(lead_ids=[lead.id])
        assert Lead.objects.get(pk=lead.pk).lead_score == 25


UPSERT = (
    "SELECT upsert_lead(p_mak => %(mak)s, p_first_name => %(first_name)s, p_email => %(email)s, "
    "p_phone => %(phone)s, p_property_state => %(property_state)s, p_property_value => %(property_value)s, "
    "p_estimated_equity => %(estimated_equity)s, p_property_type => %(property_type)s, p_age => %(age)s, "
    "p_owner_occupied => %(owner_occupied)s, p_email_verified => %(email_verified)s, "
    "p_phone_verified => %(phone_verified)s, p_melissa_payload => %(melissa_payload)s::jsonb)"
)
SCORED_FIELDS = (
    "first_name",
    "email",
    "phone",
    "property_state",
    "property_value",
    "estimated_equity",
    "property_type",
    "age",
    "owner_occupied",
    "email_verified",
    "phone_verified",
)


def _upsert(**values) -> Lead:
    import json

    with service_context(), connection.cursor() as cursor:
        cursor.execute(UPSERT, {**values, "melissa_payload": json.dumps(values.get("melissa_payload") or {})})
        return Lead.objects.get(pk=cursor.fetchone()[0])


ROWS = [
    {"age": "77", "estimated_equity": "640000", "property_value": "1200000", "property_type": "Single Family",
     "owner_occupied": "Y", "property_state": "CA", "email": "a@example.com", "phone": "4155550101",
     "email_verification_codes": "ES01"},
    {"age": "63", "estimated_equity": "90000", "property_value": "250000", "property_type": "Condo",
     "owner_occupied": "N", "property_state": "OH", "phone": "6145550102", "phone_verification_codes": "PE01"},
    {"age": "", "estimated_equity": "", "property_value": "", "property_type": "Mobile Home", "property_state": "",
     "email": "c@example.com"},
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=["rich", "middling", "sparse"])
def test_upsert_lead_scores_a_new_lead_exactly_as_the_bulk_path_does(row):
    from tests.pipeline.ingest_helpers import csv_of, ingest

    ingest(csv_of([{"mak": "BULK-1", "first_name": "Ann", **row}]))
    with service_context():
        bulk = Lead.objects.get(mak="BULK-1")
    assert bulk.lead_score > 0
    seed = _upsert(mak="SEED-1", melissa_payload=bulk.melissa_payload, **{f: getattr(bulk, f) for f in SCORED_FIELDS})
    assert (seed.lead_score, seed.score_breakdown) == (bulk.lead_score, bulk.score_breakdown)


def test_upsert_lead_rescores_the_lead_it_merges_into_and_keeps_a_score_it_is_given():
    values = dict.fromkeys(SCORED_FIELDS) | {"email_verified": False, "phone_verified": False}
    first = _upsert(mak="SEED-2", **values)
    assert first.lead_score == 0
    merged = _upsert(mak="SEED-2", **(values | {"age": 80, "property_state": "CA"}))
    assert merged.pk == first.pk
    assert merged.lead_score == merged.score_breakdown["total"] == 18 + 4  # age 75+ and a priority state
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT upsert_lead(p_mak => 'SEED-3', p_age => 80, p_lead_score => 55)")
        assert Lead.objects.get(mak="SEED-3").lead_score == 55


def test_the_weights_table_follows_the_settings(settings):
    settings.LEAD_SCORE_WEIGHTS = {"age_75": 25}
    with service_context():
        score_weights_sync()
    values = dict.fromkeys(SCORED_FIELDS) | {"email_verified": False, "phone_verified": False, "age": 80}
    assert _upsert(mak="SEED-4", **values).lead_score == 25
    settings.LEAD_SCORE_WEIGHTS = {}
    with service_context():
        score_weights_sync()
    assert _upsert(mak="SEED-5", **values).lead_score == 18
