"""The lead search's trigram index matches the expression the selector searches (else it is never used)."""

import importlib
import json

import pytest
from django.db import DataError, connection

from leads import selectors

pytestmark = pytest.mark.django_db


def test_search_expression_matches_the_index_and_the_function():
    # 0014_pii_encryption replaced the index and the function of 0003 and 0004 (e-mail and phone are encrypted)
    migration = importlib.import_module("leads.migrations.0014_pii_encryption")
    assert migration.SEARCH_EXPRESSION == selectors.SEARCH_EXPRESSION
    assert migration.QUOTED_EXPRESSION in migration.SEARCH_FUNCTION
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('leads_portal_search_trgm_idx'::regclass)")
        definition = cursor.fetchone()[0]
    assert "email" not in definition and "phone" not in definition and "apn" in definition


def test_search_function_sees_only_the_calling_brokers_leads(as_broker):
    from tests.factories import BrokerFactory, LeadFactory

    mine, theirs = BrokerFactory(), BrokerFactory()
    own = LeadFactory(assigned_broker=mine, last_name="Quixote")
    LeadFactory(assigned_broker=theirs, last_name="Quixote")
    document = json.dumps({"pattern_groups": [["%quixote%"]]})
    with as_broker(mine), connection.cursor() as cursor:
        cursor.execute("SELECT id, total FROM portal_lead_search(%s::jsonb, 'newest', 10, 0)", [document])
        assert cursor.fetchall() == [(own.pk, 1)]
    # filter values are data, never SQL: a quote in a value is just a character
    quoted = json.dumps({"pattern_groups": [["%'; DROP TABLE leads; --%"]]})
    with as_broker(mine), connection.cursor() as cursor:
        cursor.execute("SELECT portal_lead_search(%s::jsonb, 'newest', 10, 0)", [quoted])
        assert cursor.fetchall() == []
    hostile = json.dumps({"pattern_groups": [["%a%"]], "score_min": "1; SELECT 1"})
    with pytest.raises(DataError), as_broker(mine), connection.cursor() as cursor:
        cursor.execute("SELECT portal_lead_search(%s::jsonb, 'newest', 10, 0)", [hostile])
    with connection.cursor() as cursor:  # no context: the login role may not even call it
        for signature in ("portal_lead_search(jsonb, text, integer, integer)", "portal_lead_search_where(jsonb)"):
            cursor.execute("SELECT has_function_privilege(current_user, %s, 'EXECUTE')", [signature])
            assert cursor.fetchone()[0] is False, signature


def test_trigram_index_exists():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'leads_portal_search_trgm_idx'")
        (definition,) = cursor.fetchone()
    assert "gin_trgm_ops" in definition and "USING gin (assigned_broker_id, campaign_status," in definition
