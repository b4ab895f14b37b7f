"""Dedupe and the safe merge: inside the file and against `leads`, by MAK → APN →
addr_hash; flags OR-ed, code arrays unioned, existing contact data kept, payload merged, DNC kept."""

from __future__ import annotations

import pytest
from django.db import connection

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, Lead
from pipeline.ingest import normalise
from pipeline.ingest.services import RowStillInvalid, dlq_row_reprocess
from pipeline.models import PipelineDLQ, PossibleDuplicate
from tests.factories import BrokerFactory, LeadFactory, StaffUserFactory, VerificationCodeMapFactory
from tests.pipeline.ingest_helpers import assert_invariant, csv_of, ingest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def row(**values):
    base = {
        "mak": "",
        "apn": "",
        "property_address": "",
        "property_city": "",
        "property_state": "",
        "property_zip": "",
        "first_name": "",
        "email": "",
        "phone": "",
        "email_verification_codes": "",
        "phone_verification_codes": "",
        "note": "",
    }
    return {**base, **values}


def test_in_file_duplicates_by_mak_apn_and_address_merge_into_the_first_row():
    body = csv_of(
        [
            row(mak="M1", first_name="First", email="first@x.com"),
            row(mak="M1", first_name="Second", phone="4155550101", note="later"),
            row(
                apn="A1",
                property_address="123 Main Street",
                property_city="San Diego",
                property_state="CA",
                property_zip="92101",
            ),
            row(apn="A1", first_name="Apn twin"),
            row(
                property_address="123 MAIN ST.",
                property_city="san diego",
                property_state="California",
                property_zip="92101-0001",
                first_name="Address twin",
            ),
            row(mak="M2", apn="A2"),
            row(apn="A2", property_address="9 Elm St", property_zip="90001"),
            # A chain M2 - A2 - address - M3 joins no two MAKs: M3 stays a property of its own, and shares
            # the address with M2's: a possible duplicate.
            row(property_address="9 ELM STREET", property_zip="90001", mak="M3"),
        ]
    )
    upload = ingest(body)
    assert (upload.rows_total, upload.leads_created, upload.duplicates_in_file, upload.rows_rejected) == (8, 4, 4, 0)
    assert upload.possible_duplicates == 1
    assert_invariant(upload)
    with service_context():
        first, address, chain = (Lead.objects.get(mak="M1"), Lead.objects.get(apn="A1"), Lead.objects.get(apn="A2"))
    assert (first.mak, first.first_name, first.email, first.phone) == ("M1", "First", "first@x.com", "+14155550101")
    assert first.melissa_payload == {"note": "later"}
    assert (address.apn, address.first_name) == ("A1", "Apn twin")
    assert address.addr_hash == normalise.addr_hash("123 Main St", "San Diego", "CA", "92101")
    assert (chain.mak, chain.apn) == ("M2", "A2")
    with service_context():
        other = Lead.objects.get(mak="M3")
        pair = PossibleDuplicate.objects.get()
    assert other.addr_hash == chain.addr_hash
    assert {pair.lead_a_id, pair.lead_b_id} == {chain.pk, other.pk} and pair.key == "addr_hash"
    assert "MAK M" in pair.reason and "≠" in pair.reason


def test_matches_against_leads_by_each_key_and_merges_safely():
    VerificationCodeMapFactory(channel="email", code="ES02", is_verified=True)
    VerificationCodeMapFactory(channel="email", code="EE01", is_verified=False)
    by_mak = LeadFactory(
        mak="M1",
        email="kept@x.com",
        email_verified=False,
        phone_verified=True,
        email_verification_codes=["ES01"],
        melissa_payload={"a": "1"},
        campaign_status=CampaignStatus.DO_NOT_CONTACT,
    )
    by_apn = LeadFactory(mak=None, apn="A1", phone=None)
    address_hash = normalise.addr_hash("55 Oak Avenue", "Fresno", "CA", "93650")
    by_address = LeadFactory(mak=None, apn=None, addr_hash=address_hash, first_name="Existing")
    body = csv_of(
        [
            row(
                mak="M1",
                email="new@x.com",
                email_verification_codes="ES02, EE01, ES01",
                note="b",
                phone_verification_codes="PE01",
            ),
            row(apn="a1", phone="(415) 555-0199"),
            row(
                property_address="55 OAK AVE.",
                property_city="Fresno",
                property_state="CA",
                property_zip="93650",
                first_name="Newcomer",
                mak="M77",
            ),
        ]
    )
    upload = ingest(body)
    assert (upload.leads_created, upload.leads_merged) == (0, 3)
    assert_invariant(upload)
    with service_context():
        by_mak.refresh_from_db()
        by_apn.refresh_from_db()
        by_address.refresh_from_db()
    assert by_mak.email == "kept@x.com"  # existing contact data kept
    assert by_mak.email_verified is True and by_mak.phone_verified is True  # OR-ed
    assert by_mak.email_verification_codes == ["EE01", "ES01", "ES02"]  # unioned, no duplicates
    assert by_mak.phone_verification_codes == ["PE01"]
    assert by_mak.melissa_payload == {"a": "1", "note": "b"}
    assert by_mak.campaign_status == CampaignStatus.DO_NOT_CONTACT
    assert by_apn.phone == "+14155550199"  # filled in where it was missing
    assert (by_address.first_name, by_address.mak) == ("Existing", "M77")  # missing key filled in
    assert by_mak.score_breakdown["total"] == by_mak.lead_score


def test_a_key_owned_by_another_lead_is_not_copied_and_conflicting_rows_stay_apart():
    one = LeadFactory(mak="M1", apn=None, addr_hash=None)
    two = LeadFactory(mak=None, apn="A9", addr_hash=None)
    # Two MAKs that share an APN are two properties; the second row's MAK does not conflict with lead two.
    body = csv_of([row(mak="M1", apn="A9", first_name="x"), row(mak="M5", apn="A9", note="y")])
    upload = ingest(body)
    assert (upload.rows_total, upload.leads_merged, upload.duplicates_in_file, upload.leads_created) == (2, 2, 0, 0)
    with service_context():
        one.refresh_from_db()
        two.refresh_from_db()
        pair = PossibleDuplicate.objects.get()
    assert one.apn is None and (two.apn, two.mak) == ("A9", "M5")  # A9 is two's: not copied onto one
    assert {pair.lead_a_id, pair.lead_b_id} == {one.pk, two.pk} and "MAK M1 ≠ M5" in pair.reason

    three = LeadFactory(mak="M3", apn="A3", addr_hash=None)
    upload = ingest(csv_of([row(mak="M3", note="by mak"), row(mak="M33", apn="A3", note="by apn")]))
    assert (upload.leads_merged, upload.leads_created, upload.duplicates_in_file) == (1, 1, 0)
    assert_invariant(upload)
    with service_context():
        three.refresh_from_db()
        newcomer = Lead.objects.get(mak="M33")
    assert three.melissa_payload["note"] == "by mak" and newcomer.apn == "A3"  # A3 with another MAK: apart
    assert upload.possible_duplicates == 1


def test_a_resent_list_merges_as_hot_updates():
    """Re-sent leads with new valuations are re-scored without rewriting any index entry (heap-only
    tuples: leads/migrations/0005)."""
    first = [row(mak=f"HOT{n}", first_name="Ann", property_value="300000") for n in range(40)]
    assert ingest(csv_of(first)).leads_created == 40
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_xact_tuples_hot_updated('leads'::regclass)")
        (before,) = cursor.fetchone()
        scores = dict(Lead.objects.filter(mak__startswith="HOT").values_list("mak", "lead_score"))
    again = [row(mak=f"HOT{n}", first_name="Ann", property_value="1200000") for n in range(40)]
    assert ingest(csv_of(again)).leads_merged == 40
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated('leads'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('leads'::regclass)"
        )
        updated, hot = cursor.fetchone()
        rescored = dict(Lead.objects.filter(mak__startswith="HOT").values_list("mak", "lead_score"))
    assert hot - before == 40
    assert updated >= hot
    assert all(rescored[mak] > scores[mak] for mak in scores)


def test_broker_assignment_rules():
    by_zip = BrokerFactory(territory_states=[], territory_zip_prefixes=["921"])
    by_state = BrokerFactory(territory_states=["NV"], territory_zip_prefixes=[])
    chosen = BrokerFactory(territory_states=[], territory_zip_prefixes=[])
    body = csv_of(
        [
            row(mak="Z1", property_address="1 A St", property_state="NV", property_zip="92101"),
            row(mak="Z2", property_address="1 B St", property_state="NV", property_zip="89101"),
            row(mak="Z3", property_state="WY", property_zip="82001"),
        ]
    )
    ingest(body)
    with service_context():
        assigned = dict(Lead.objects.values_list("mak", "assigned_broker_id"))
    assert assigned == {"Z1": by_zip.pk, "Z2": by_state.pk, "Z3": None}
    ingest(csv_of([row(mak="Z9", property_zip="92101")]), broker=chosen)
    with service_context():
        assert Lead.objects.get(mak="Z9").assigned_broker_id == chosen.pk


def test_events_and_reupload_merges_everything():
    body = csv_of([row(mak=f"E{i}", first_name=f"N{i}") for i in range(5)])
    first = ingest(body)
    same = ingest(body + b"\n")  # same rows, different bytes (the replay guard is about bytes)
    assert (same.leads_merged, same.leads_created) == (5, 0)
    second = ingest(csv_of([row(mak=f"E{i}", phone=f"415555010{i}") for i in range(5)]))
    assert (first.leads_created, second.leads_merged, second.leads_created) == (5, 5, 0)
    with service_context():
        kinds = list(
            PipelineEvent.objects.filter(upload_id__in=[first.id, same.id, second.id]).values_list(
                "event_type", flat=True
            )
        )
        dedupe = PipelineEvent.objects.get(event_type="dedupe_success", upload_id=first.id)
    assert sorted(kinds).count("lead_created") == 5 and kinds.count("lead_merged") == 5
    assert kinds.count("upload_received") == 3 and kinds.count("dedupe_success") == 3  # no event for no change
    assert dedupe.duration_ms is not None and dedupe.event_data["leads_created"] == 5


def test_dlq_row_reprocess_fixes_a_row_once():
    staff = StaffUserFactory()
    upload = ingest(csv_of([row(mak="R1"), row(first_name="No key", note="n")]))
    assert upload.rows_rejected == 1
    with service_context():
        item = PipelineDLQ.objects.get(upload=upload)
    with pytest.raises(RowStillInvalid):
        dlq_row_reprocess(item, payload={**item.payload, "first_name": "Still no key"}, user=staff)
    with service_context():
        item.refresh_from_db()
        assert item.status == "open" and item.payload["first_name"] == "Still no key" and item.attempts == 1
    lead_id = dlq_row_reprocess(item, payload={**item.payload, "mak": "R2"}, user=staff)
    assert lead_id is not None
    assert dlq_row_reprocess(item, payload={**item.payload, "mak": "R3"}, user=staff) is None  # idempotent
    with service_context():
        item.refresh_from_db()
        upload.refresh_from_db()
        lead = Lead.objects.get(pk=lead_id)
        assert not Lead.objects.filter(mak="R3").exists()
        assert PipelineEvent.objects.filter(event_type="dlq_reprocessed").count() == 1
    assert (item.status, item.resolution, item.resolved_by_id, item.lead_id) == (
        "resolved",
        "reprocessed",
        staff.pk,
        lead_id,
    )
    assert (lead.mak, lead.first_name, lead.source_upload_id) == ("R2", "Still no key", upload.id)
    assert (upload.rows_rejected, upload.leads_created) == (0, 2)
    assert_invariant(upload)
    # Merging path: a row whose key matches an existing lead.
    upload2 = ingest(csv_of([row(first_name="Dup", note="m")]))
    with service_context():
        item2 = PipelineDLQ.objects.get(upload=upload2)
    assert dlq_row_reprocess(item2.pk, payload={**item2.payload, "mak": "R1"}) is not None
    with service_context():
        upload2.refresh_from_db()
        assert Lead.objects.get(mak="R1").melissa_payload == {"note": "m"}
    assert (upload2.leads_merged, upload2.rows_rejected) == (1, 0)


def test_lead_verified_is_recorded_where_a_contact_becomes_verified():
    VerificationCodeMapFactory(channel="email", code="ES01", is_verified=True)
    VerificationCodeMapFactory(channel="phone", code="PS01", is_verified=True)
    unverified = LeadFactory(mak="V1", email="old@x.com", email_verified=False, phone_verified=True)
    already = LeadFactory(mak="V2", email="v2@x.com", email_verified=True, phone_verified=False)
    body = csv_of(
        [
            row(mak="V1", email_verification_codes="ES01"),  # email becomes verified on a known lead
            row(mak="V2", email_verification_codes="ES01"),  # was verified already: no event
            row(
                mak="V3",
                email="n@x.com",
                phone="4155550100",
                email_verification_codes="ES01",
                phone_verification_codes="PS01",
            ),  # a new lead, verified both ways
            row(mak="V4", email="u@x.com"),  # a new lead, not verified: no event
        ]
    )

    upload = ingest(body)

    with service_context():
        events = {
            str(event.lead_id): event.event_data["channels"]
            for event in PipelineEvent.objects.filter(event_type="lead_verified", upload_id=upload.id)
        }
        new = Lead.objects.get(mak="V3")
    assert events == {str(unverified.pk): ["email"], str(new.pk): ["email", "phone"]}
    assert str(already.pk) not in events
