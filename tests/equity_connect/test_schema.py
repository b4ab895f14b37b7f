"""The seed's Phase 1 verification SQL, verbatim, against our schema; constraints and the trigger."""

import pytest
from django.db import IntegrityError, connection

from equity_connect.db import service_context
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

PHASE_1_COLUMNS = """
-- Check new columns exist
SELECT column_name, data_type 
FROM information_schema.columns 
WHERE table_name = 'leads' 
  AND column_name IN ('email_verified', 'phone_verified', 'campaign_status', 'vapi_call_id');
"""  # noqa: W291  (verbatim, trailing spaces included)
PHASE_1_TABLES = """
-- Check new tables exist
SELECT table_name 
FROM information_schema.tables 
WHERE table_name IN ('consent_tokens', 'verification_code_map', 'pipeline_dlq', 'leads_staging');
"""  # noqa: W291
PHASE_1_MV = """
-- Check materialized view exists
SELECT matviewname FROM pg_matviews WHERE matviewname = 'mv_contactable_leads';
"""
PHASE_3_MV_STATS = """
-- Check MV was refreshed
SELECT * FROM pg_stat_user_tables 
WHERE relname = 'mv_contactable_leads';
"""  # noqa: W291


def fetch(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_phase_1_verification_finds_the_four_columns_the_four_tables_and_the_view():
    with service_context():
        columns = dict(fetch(PHASE_1_COLUMNS))
        tables = {row[0] for row in fetch(PHASE_1_TABLES)}
        views = fetch(PHASE_1_MV)
    assert columns == {
        "email_verified": "boolean",
        "phone_verified": "boolean",
        "campaign_status": "USER-DEFINED",
        "vapi_call_id": "text",
    }
    assert tables == {"consent_tokens", "verification_code_map", "pipeline_dlq", "leads_staging"}
    assert views == [("mv_contactable_leads",)]


def test_pgcrypto_is_installed_and_uuids_default_in_the_database():
    """The seed's migration creates pgcrypto; ids default to `gen_random_uuid()` even for rows written in SQL."""
    with service_context():
        assert fetch("SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'") == [("pgcrypto",)]
        [(default,)] = fetch(
            "SELECT column_default FROM information_schema.columns WHERE table_name = 'leads' AND column_name = 'id'"
        )
    assert default == "gen_random_uuid()"


def test_phase_3_mv_statistics_query_runs_verbatim():
    with service_context():
        rows = fetch(PHASE_3_MV_STATS)
    assert len(rows) == 1


def test_campaign_status_is_the_seed_enum():
    labels = fetch(
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "WHERE t.typname = 'campaign_status' ORDER BY e.enumsortorder"
    )
    assert [label for (label,) in labels] == [
        "new",
        "queued",
        "active",
        "replied",
        "paused",
        "unsubscribed",
        "bounced",
        "do_not_contact",
        "converted",
    ]


@pytest.mark.parametrize(
    "sql, constraint",
    [
        ("UPDATE leads SET consent = true, consented_at = NULL WHERE id = %s", "consent_requires_timestamp"),
        ("UPDATE leads SET lead_score = 101 WHERE id = %s", "lead_score_range"),
        ("UPDATE leads SET lead_score = -1 WHERE id = %s", "lead_score_range"),
    ],
)
def test_check_constraints(sql, constraint):
    lead = LeadFactory()
    with pytest.raises(IntegrityError, match=constraint), service_context(), connection.cursor() as cursor:
        cursor.execute(sql, [lead.pk])


def test_a_mak_is_unique_when_present_and_free_when_null():
    first = LeadFactory()
    with pytest.raises(IntegrityError), service_context():
        LeadFactory(mak=first.mak)
    LeadFactory(mak=None)
    LeadFactory(mak=None)  # several NULLs are fine: the unique index is partial


def test_an_apn_is_shared_only_by_leads_whose_maks_differ():
    first = LeadFactory(mak="M1", apn="123-45")
    LeadFactory(mak="M2", apn="123-45", addr_hash=None)  # two MAKs: two parcels that share an APN
    LeadFactory(mak=None, apn="123-45", addr_hash=None)  # one without a MAK, once
    with pytest.raises(IntegrityError), service_context():
        LeadFactory(mak=None, apn=first.apn, addr_hash=None)  # a second: nothing tells them apart
    LeadFactory(apn=None)
    LeadFactory(apn=None)


def test_an_address_is_shared_only_by_leads_whose_stronger_keys_differ():
    first = LeadFactory(mak=None, apn="111", addr_hash="h" * 64)
    LeadFactory(mak=None, apn="222", addr_hash=first.addr_hash)  # one address, two parcels
    LeadFactory(mak=None, apn=None, addr_hash=first.addr_hash)  # and one address-only lead
    with pytest.raises(IntegrityError), service_context():
        LeadFactory(mak=None, apn=None, addr_hash=first.addr_hash)
    LeadFactory(addr_hash=None)
    LeadFactory(addr_hash=None)


def test_hot_path_indexes_exist():
    names = {
        name
        for (name,) in fetch("SELECT indexname FROM pg_indexes WHERE tablename IN ('leads', 'mv_contactable_leads')")
    }
    assert {
        "leads_mak_uniq",
        "leads_apn_mak_uniq",
        "leads_addr_apn_mak_uniq",
        "leads_broker_created_idx",
        "mv_contactable_leads_id_idx",
        "mv_contactable_leads_feeder_idx",
    } <= names
    definitions = dict(fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'leads'"))
    assert "WHERE (mak IS NOT NULL)" in definitions["leads_mak_uniq"]
    # A lookup by APN or by address leads with its key; NULLs are equal, so keyless twins are refused.
    assert "(apn, mak) NULLS NOT DISTINCT WHERE (apn IS NOT NULL)" in definitions["leads_apn_mak_uniq"]
    assert (
        "(addr_hash, apn, mak) NULLS NOT DISTINCT WHERE (addr_hash IS NOT NULL)"
        in (definitions["leads_addr_apn_mak_uniq"])
    )
    # Nothing a merge changes is indexed, and pages keep room for the next version: merges are HOT updates.
    for column in ("updated_at", "lead_score", "score_breakdown", "property_value", "estimated_equity"):
        assert not any(column in definition for definition in definitions.values()), column
    assert fetch("SELECT reloptions FROM pg_class WHERE relname = 'leads'") == [(["fillfactor=50"],)]


class TestAddedToCampaignTrigger:
    def status_and_stamp(self, lead):
        with service_context():
            lead.refresh_from_db()
        return lead.campaign_status, lead.added_to_campaign_at

    def set_status(self, lead, status):
        with service_context(), connection.cursor() as cursor:
            cursor.execute("UPDATE leads SET campaign_status = %s WHERE id = %s", [status, lead.pk])

    def test_stamps_when_a_lead_turns_active_and_only_then(self):
        lead = LeadFactory(campaign_status="queued")
        assert self.status_and_stamp(lead) == ("queued", None)
        self.set_status(lead, "paused")
        assert self.status_and_stamp(lead)[1] is None
        with service_context(), connection.cursor() as cursor:
            cursor.execute("UPDATE leads SET lead_score = 99 WHERE id = %s", [lead.pk])
        assert self.status_and_stamp(lead)[1] is None
        self.set_status(lead, "active")
        status, stamped = self.status_and_stamp(lead)
        assert status == "active" and stamped is not None
        self.set_status(lead, "replied")
        self.set_status(lead, "active")
        assert self.status_and_stamp(lead)[1] == stamped  # the first feed's time is kept

    def test_stamps_a_lead_inserted_as_active(self):
        lead = LeadFactory(campaign_status="active")
        assert self.status_and_stamp(lead)[1] is not None


def test_the_suppression_lists_index_keeps_no_pending_list():
    """Each "already listed?" lookup would scan a GIN pending list whole (leads migration 0024)."""
    with service_context():
        [(options,)] = fetch("SELECT reloptions FROM pg_class WHERE relname = 'suppressions_value_idx'")
    assert options == ["fastupdate=off"]
