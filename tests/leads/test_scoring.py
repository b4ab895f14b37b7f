"""Scoring: 0-100, a stored breakdown by category, weights overridable in one place."""

from __future__ import annotations

import pytest

from equity_connect.db import service_context
from leads.models import Lead
from leads.scoring import leads_rescore
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
