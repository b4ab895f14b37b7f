"""Dedupe never folds two properties into one lead: conflicting stronger keys block weaker links, inside a
file and against `leads`; a conflict becomes a possible duplicate; a new owner on a known parcel does not
inherit the old owner's contact data or consent; files we cannot read say why."""

from __future__ import annotations

import json
import threading

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, Lead
from pipeline.models import PipelineDLQ, PossibleDuplicate
from pipeline.tasks import instantly_sequences_stop
from security.fields import decrypt_stored
from security.pii import EMAIL
from tests.factories import BrokerFactory, LeadFactory
from tests.pg import connect
from tests.pipeline import jobs_support
from tests.pipeline.ingest_helpers import assert_invariant, csv_of, ingest
from tests.pipeline.jobs_support import CAMPAIGN_ID

pytestmark = pytest.mark.django_db
fake_instantly = jobs_support.fake_instantly

STREET = {"property_city": "Fresno", "property_state": "CA", "property_zip": "93650"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def row(**values):
    return {"mak": "", "apn": "", "property_address": "", **STREET, "first_name": "", "last_name": "", **values}


def leads_at(address_like: str) -> list[Lead]:
    with service_context():
        return list(Lead.objects.filter(property_address__icontains=address_like).order_by("created_at", "apn"))


def pairs() -> list[PossibleDuplicate]:
    with service_context():
        return list(PossibleDuplicate.objects.order_by("id"))


def test_condos_one_lead_per_unit_and_one_unit_spelled_three_ways_is_one_lead():
    upload = ingest(
        csv_of(
            [
                row(apn="100-1", property_address="500 Palm Ave Apt 1"),
                row(apn="100-2", property_address="500 Palm Ave #2"),
                row(apn="100-3", property_address="500 Palm Ave Unit 3"),
                row(property_address="500 PALM AVENUE UNIT 1", first_name="Same"),
                row(property_address="500 Palm Ave. # 1", last_name="Unit"),
            ]
        )
    )
    assert (upload.leads_created, upload.duplicates_in_file, upload.possible_duplicates) == (3, 2, 0)
    assert_invariant(upload)
    condos = leads_at("Palm")
    assert [lead.apn for lead in condos] == ["100-1", "100-2", "100-3"]
    assert (condos[0].first_name, condos[0].last_name) == ("Same", "Unit")


@pytest.mark.parametrize("across_files", [False, True])
def test_one_address_two_parcels_are_two_leads_and_one_possible_duplicate(across_files):
    first = row(apn="123-45", property_address="12 Oak St", first_name="Ann", last_name="Lee", email="ann@x.com")
    second = row(apn="678-90", property_address="12 OAK STREET", first_name="Bo", last_name="Kim", email="bo@x.com")
    if across_files:
        ingest(csv_of([first]))
        upload = ingest(csv_of([second]))
    else:
        upload = ingest(csv_of([first, second]))
    assert upload.leads_created == (1 if across_files else 2) and upload.possible_duplicates == 1
    assert_invariant(upload)
    ann, bo = leads_at("Oak")
    assert (ann.apn, ann.email, ann.first_name, ann.last_name) == ("123-45", "ann@x.com", "Ann", "Lee")
    assert (bo.apn, bo.email) == ("678-90", "bo@x.com")
    (pair,) = pairs()
    assert {pair.lead_a_id, pair.lead_b_id} == {ann.pk, bo.pk}
    assert pair.reason.startswith("same address as lead ") and "APN " in pair.reason and " ≠ " in pair.reason
    assert pair.upload_id == upload.id and pair.status == "open"


def test_a_chain_of_addresses_never_joins_two_parcels():
    upload = ingest(
        csv_of(
            [
                row(apn="A-1", property_address="1 Elm St", property_zip="93650"),  # A
                row(property_address="1 ELM STREET", mak="", property_zip="93650"),  # B: A's address, no APN
                row(apn="C-3", property_address="1 Elm St.", property_zip="93650"),  # C: the same address, APN C
            ]
        )
    )
    assert_invariant(upload)
    apns = sorted(lead.apn or "" for lead in leads_at("Elm"))
    assert "A-1" in apns and "C-3" in apns  # A and C never one lead
    assert upload.leads_created == 3 and upload.possible_duplicates == 3  # B could be either: it stays apart


def test_the_same_parcel_resent_with_another_spelling_or_a_new_phone_still_merges():
    ingest(csv_of([row(apn="55-5", property_address="77 Pine Road", first_name="Al", last_name="Roe")]))
    upload = ingest(
        csv_of([row(apn="55-5", property_address="77 PINE RD.", first_name="Al", last_name="Roe", phone="5595550100")])
    )
    assert (upload.leads_merged, upload.leads_created, upload.possible_duplicates) == (1, 0, 0)
    (lead,) = leads_at("Pine")
    assert lead.phone == "+15595550100" and lead.property_address == "77 Pine Road"


def test_a_new_owner_does_not_inherit_the_old_owners_contact_data_or_consent(
    fake_instantly, django_capture_on_commit_callbacks
):
    broker = BrokerFactory()
    old = LeadFactory(
        mak=None,
        apn="999-1",
        addr_hash=None,
        first_name="Olga",
        last_name="Old",
        email="olga@x.com",
        phone="+15595550111",
        email_verified=True,
        consent=True,
        consented_at=timezone.now(),
        consent_method="form",
        assigned_broker=broker,
        campaign_status=CampaignStatus.ACTIVE,
        instantly_lead_id="inst-olga",
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload = ingest(
            csv_of(
                [row(apn="999-1", first_name="Nina", last_name="New", email="nina@x.com", property_address="9 Fir Ln")]
            )
        )
    assert (upload.leads_merged, upload.leads_created) == (1, 0)
    with service_context():
        old.refresh_from_db()
        event = PipelineEvent.objects.get(event_type="lead_owner_changed", lead_id=old.pk)
    assert (old.first_name, old.last_name, old.email, old.phone) == ("Nina", "New", "nina@x.com", None)
    assert (old.consent, old.consented_at, old.email_verified, old.instantly_lead_id) == (False, None, False, None)
    assert old.campaign_status == CampaignStatus.NEW and old.added_to_campaign_at is None
    # the old owner's e-mail is on the timeline encrypted, as it was on the lead
    assert event.event_data["old_owner"] == "Olga Old" and decrypt_stored(event.event_data["old_email"], EMAIL) == (
        "olga@x.com"
    )
    assert event.event_data["old_consent"] is True and event.event_data["new_owner"] == "Nina New"
    assert event.broker_id == broker.pk
    with service_context():
        assert not Lead.objects.feedable().filter(pk=old.pk).exists()  # nothing fed until Nina consents
    # Olga's sequence stops: the task the ingestion queued, run as the cluster would, once.
    (task,) = [queued.task for queued in OrmQ.objects.all() if queued.task["func"].endswith("sequences_stop")]
    assert [list(pair) for pair in task["args"][0]] == [[str(old.pk), "inst-olga"]]
    assert instantly_sequences_stop(*task["args"]) == "stopped"
    assert fake_instantly.deleted_ids() == ["inst-olga"]
    assert fake_instantly.requests[0]["body"]["campaign_id"] == CAMPAIGN_ID


def test_a_new_owner_on_a_lead_the_old_owner_asked_not_to_contact_goes_to_review():
    old = LeadFactory(
        mak="DNC-1",
        first_name="Dan",
        last_name="Doe",
        campaign_status=CampaignStatus.DO_NOT_CONTACT,
        do_not_contact_reason="asked by phone",
    )
    ingest(csv_of([row(mak="DNC-1", first_name="Eve", last_name="Fox", email="eve@x.com")]))
    with service_context():
        old.refresh_from_db()
        review = PipelineDLQ.objects.get(source="review")
    assert old.campaign_status == CampaignStatus.DO_NOT_CONTACT and old.email == "eve@x.com"
    # the do-not-contact reason is encrypted on the lead: the review points to it rather than copying it
    assert review.lead_id == old.pk and "Eve Fox" in review.reason and "the reason is on the lead" in review.reason
    assert "asked by phone" not in json.dumps(review.payload)


@pytest.mark.parametrize(
    ("lead_name", "file_name", "co_owner"),
    [
        (("John", "Smith"), ("JOHN", "SMITH"), ""),
        (("John", "Smith"), ("Smith", "John"), ""),
        (("John", "Smith"), ("John A.", "Smith Living Trust"), ""),
        (("John", "Smith"), ("Mary", "Smith"), "John Smith"),  # the lead's owner is the file's Owner 2
        (("John", "Smith"), ("", ""), ""),  # a missing name is never a change
        (("John", "Smith"), ("Ann", ""), ""),  # nor is half a name
    ],
)
def test_the_same_household_is_not_a_new_owner(lead_name, file_name, co_owner):
    lead = LeadFactory(mak="H-1", first_name=lead_name[0], last_name=lead_name[1], email="keep@x.com")
    ingest(
        csv_of(
            [
                {
                    "mak": "H-1",
                    "Owner 1 First Name": file_name[0],
                    "Owner 1 Last Name": file_name[1],
                    "Owner 2 First Name": co_owner.split(" ")[0] if co_owner else "",
                    "Owner 2 Last Name": co_owner.split(" ")[-1] if co_owner else "",
                    "email": "other@x.com",
                }
            ]
        )
    )
    with service_context():
        lead.refresh_from_db()
        assert not PipelineEvent.objects.filter(event_type="lead_owner_changed").exists()
    assert lead.email == "keep@x.com"


def test_a_file_without_key_columns_fails_at_once_with_the_reason():
    upload = ingest(b"name,colour\nAnn,blue\n")
    assert upload.status == "failed"
    assert upload.error_message.startswith("no recognised key columns; got: name, colour; expected one of: MAK")


def test_unknown_columns_are_listed_and_blank_lines_counted():
    body = b"\n" + csv_of([row(mak="U1", Bedrooms="3", Pool="yes"), row(mak="U2")]) + b"\n,,,,,,,,,,\n\n"
    upload = ingest(body)
    assert upload.unrecognised_columns == ["Bedrooms", "Pool"]
    assert (upload.rows_total, upload.blank_lines) == (2, 4)  # before the header, after, all-empty, last


@pytest.mark.django_db(transaction=True)
def test_upsert_lead_with_the_mak_of_one_lead_and_the_apn_of_another_returns():
    by_mak = LeadFactory(mak="MX-1", apn=None, addr_hash=None)
    LeadFactory(mak=None, apn="APN-Y", addr_hash=None)
    result = {}

    def call():
        with connect() as conn:
            conn.execute("SET ROLE service_role")
            result["id"] = conn.execute("SELECT upsert_lead(p_mak => 'MX-1', p_apn => 'APN-Y')").fetchone()[0]

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "upsert_lead is still running after 10 s"
    assert result["id"] == by_mak.pk
