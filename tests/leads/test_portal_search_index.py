"""The portal search: `lead_search` holds the text the selector searches (leads migration 0026), row by row for
every writer of `leads`, and the search function sees only the calling broker's leads."""

import json

import pytest
from django.db import DataError, connection

from leads import selectors

pytestmark = pytest.mark.django_db


def test_search_document_is_the_selectors_search_expression():
    # 0026_lead_search moved the searched text into lead_search.document = lead_search_document(...)
    values = ("Ada", "Lovelace", "12 Engine Way", "London", "071-220-19")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT lead_search_document(%s, %s, %s, %s, %s), {selectors.SEARCH_EXPRESSION}"
            " FROM (VALUES (%s, %s, %s, %s, %s)) AS v (first_name, last_name, property_address, property_city, apn)",
            [*values, *values],
        )
        document, expression = cursor.fetchone()
        assert document == expression == "Ada Lovelace 12 Engine Way London 071-220-19"
        cursor.execute("SELECT lead_search_document(NULL, 'Byron', NULL, NULL, NULL)")
        assert cursor.fetchone()[0] == " Byron   "


def test_a_leads_search_row_follows_every_writer(as_broker):
    from tests.factories import BrokerFactory, LeadFactory

    broker, other = BrokerFactory(), BrokerFactory()
    lead = LeadFactory(assigned_broker=broker, last_name="Quimby")  # an insert outside any upload: the trigger
    with as_broker(broker), connection.cursor() as cursor:
        cursor.execute("SELECT document FROM lead_search WHERE lead_id = %s", [lead.pk])
        assert "Quimby" in cursor.fetchone()[0]
    from equity_connect.db import service_context
    from leads.models import Lead

    with service_context():
        Lead.objects.filter(pk=lead.pk).update(last_name="Quarles", lead_score=7)
    with as_broker(broker), connection.cursor() as cursor:
        cursor.execute("SELECT document FROM lead_search WHERE lead_id = %s", [lead.pk])
        assert "Quarles" in cursor.fetchone()[0]
    with service_context():
        Lead.objects.filter(pk=lead.pk).update(assigned_broker=other)
    with as_broker(broker), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM lead_search WHERE lead_id = %s", [lead.pk])
        assert cursor.fetchone()[0] == 0
    with as_broker(other), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM lead_search WHERE lead_id = %s", [lead.pk])
        assert cursor.fetchone()[0] == 1
    with service_context():
        Lead.objects.filter(pk=lead.pk).delete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM lead_search WHERE lead_id = %s", [lead.pk])
            assert cursor.fetchone()[0] == 0


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


def test_the_trigram_index_is_lead_searchs_not_leads():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'lead_search_trgm_idx'")
        (definition,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'leads' AND indexdef LIKE '%%gin_trgm_ops%%'"
        )
        on_leads = cursor.fetchone()[0]
    assert "USING gin (broker_id, document gin_trgm_ops)" in definition
    assert on_leads == 0
