"""The blind indexes of e-mail and phone (security/pii.py) through a real ingest: computed by the normaliser (in
this process and in the child processes alike), merged with their value (the first non-empty e-mail keeps its
index), written by every ORM save of a lead, and filled by the sweep for rows the seed's `upsert_lead()` wrote."""

from __future__ import annotations

import pytest
from django.db import connection

from equity_connect.db import service_context
from leads.contact_indexes import contact_indexes, contact_indexes_fill, indexes_of
from leads.models import Lead
from security.pii import EMAIL, PHONE, codec
from tests.pipeline.ingest_helpers import assert_invariant, csv_of, ingest

pytestmark = pytest.mark.django_db

INDEXES = ("email_bidx", "email_domain_bidx", "phone_bidx", "phone_last4_bidx")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def row(mak: str, email: str = "", phone: str = "") -> dict:
    return {"Address": f"{mak[-1]} Main Street", "City": "Albany", "State": "NY", "Zip": "12207", "MAK": mak,
            "First Name": "Jane", "Last Name": "Roe", "Email": email, "Phone": phone}  # fmt: skip


def indexes(lead: Lead) -> dict:
    return {name: getattr(lead, name) for name in INDEXES}


@pytest.mark.parametrize("child_processes", [False, True], ids=["in-process", "normaliser-processes"])
def test_ingest_writes_the_blind_indexes_of_the_normalised_values(settings, child_processes):
    settings.INGEST_SUBPROCESS_MIN_BYTES = 0 if child_processes else -1
    upload = ingest(csv_of([row("BI-1", " Jane.Roe@Example.COM ", "(518) 555-0142"), row("BI-2")]))
    assert_invariant(upload) and upload.leads_created == 2
    with service_context():
        with_contact, without = Lead.objects.get(mak="BI-1"), Lead.objects.get(mak="BI-2")
    assert indexes(with_contact) == contact_indexes("jane.roe@example.com", "+15185550142")
    assert with_contact.email_bidx in indexes_of("jane.roe@example.com", EMAIL)
    assert with_contact.phone_bidx == codec().blind_index("+15185550142", PHONE)
    assert indexes(without) == dict.fromkeys(INDEXES)


def test_a_merge_keeps_the_index_with_the_email_it_keeps():
    ingest(csv_of([row("BM-1", "first@example.com"), row("BM-2", "", "5185550100")]))
    ingest(csv_of([row("BM-1", "second@example.com", "5185550199"), row("BM-2", "late@example.com", "5185550111")]))
    with service_context():
        kept, filled = Lead.objects.get(mak="BM-1"), Lead.objects.get(mak="BM-2")
    assert (kept.email, kept.phone) == ("first@example.com", "+15185550199")
    assert indexes(kept) == contact_indexes("first@example.com", "+15185550199")
    assert (filled.email, filled.phone) == ("late@example.com", "+15185550100")
    assert indexes(filled) == contact_indexes("late@example.com", "+15185550100")


def test_every_orm_save_indexes_the_contact():
    with service_context():
        lead = Lead.objects.create(mak="BS-1", email="a@example.com")
        assert indexes(lead) == contact_indexes("a@example.com", None)
        lead.email, lead.phone = None, "+15185550123"
        lead.save()
        lead.refresh_from_db()
    assert indexes(lead) == contact_indexes(None, "+15185550123")


def test_the_sweep_indexes_the_rows_the_seed_function_wrote():
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT upsert_lead(p_mak => 'BU-1', p_email => 'seed@example.com', p_phone => '+15185550177')")
        (lead_id,) = cursor.fetchone()
        assert indexes(Lead.objects.get(pk=lead_id)) == dict.fromkeys(INDEXES)
        assert contact_indexes_fill(batch=1) >= 1
        assert contact_indexes_fill() == 0  # nothing left
        lead = Lead.objects.get(pk=lead_id)
    assert indexes(lead) == contact_indexes("seed@example.com", "+15185550177")


def test_unmapped_contact_columns_are_kept_encrypted_in_the_payload():
    from security.fields import looks_encrypted
    from security.pii import PHONE as PHONE_KIND

    extra = {"Email 2": "second@example.com", "Wireless 3": "(518) 555-0177", "County": "Albany"}
    ingest(csv_of([{**row("BP-1", "first@example.com"), **extra}]))
    with service_context():
        payload = Lead.objects.get(mak="BP-1").melissa_payload
    assert payload["County"] == "Albany"
    assert looks_encrypted(payload["Email 2"]) and looks_encrypted(payload["Wireless 3"])
    assert codec().decrypt(payload["Email 2"], EMAIL) == "second@example.com"
    assert codec().decrypt(payload["Wireless 3"], PHONE_KIND) == "(518) 555-0177"
