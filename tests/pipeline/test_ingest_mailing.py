"""The owner's mailing address through a real ingest: PropStream's `Mailing …` columns are mapped and normalised
like the property address (pipeline/ingest/columns.py, rows.py), land in the lead's mailing columns, merge the
way the property address does (the first non-empty value stays), and go with the old owner when a new owner
arrives. The mailing state then decides an absentee owner's contact window."""

from __future__ import annotations

import pytest

from equity_connect.db import service_context
from leads.compliance.contact_windows import contact_state
from leads.models import Lead
from tests.pipeline.ingest_helpers import assert_invariant, csv_of, ingest

pytestmark = pytest.mark.django_db

MAILING = ("mailing_address", "mailing_city", "mailing_state", "mailing_zip")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def propstream(mak: str, first: str = "Jane", last: str = "Roe", **mailing) -> dict:
    return {
        "Address": f"{mak[-1]} Main Street",
        "City": "Albany",
        "State": "NY",
        "Zip": "12207",
        "MAK": mak,
        "Owner 1 First Name": first,
        "Owner 1 Last Name": last,
        "Mailing Address": mailing.get("address", ""),
        "Mailing Unit #": mailing.get("unit", ""),
        "Mailing City": mailing.get("city", ""),
        "Mailing State": mailing.get("state", ""),
        "Mailing Zip": mailing.get("zip", ""),
        "County": "Albany",
    }


def mailing_of(mak: str) -> tuple:
    with service_context():
        return tuple(Lead.objects.filter(mak=mak).values_list(*MAILING).get())


@pytest.mark.parametrize("normaliser", ["in the worker", "in a process"])
def test_propstreams_mailing_columns_land_in_the_lead_normalised(settings, normaliser):
    settings.INGEST_SUBPROCESS_MIN_BYTES = -1 if normaliser == "in the worker" else 0
    upload = ingest(
        csv_of(
            [
                propstream(
                    "MX1",
                    address=" 200  Oak   Street ",
                    unit="#4",
                    city="Los Angeles",
                    state="california",
                    zip="90001-1234",
                ),
                propstream("MX2"),
                propstream("MX3", address="1 King St W", city="Toronto", state="Ontario", zip="M5V 2T6"),
                # The same property again, later in the file, with another mailing address: the first one stays.
                propstream("MX1", address="9 Elm St", city="Austin", state="TX", zip="73301"),
            ]
        )
    )
    assert (upload.status, upload.leads_created, upload.duplicates_in_file) == ("done", 3, 1)
    assert_invariant(upload)
    assert mailing_of("MX1") == ("200 Oak Street #4", "Los Angeles", "CA", "90001")
    assert mailing_of("MX2") == (None, None, None, None)
    assert mailing_of("MX3") == ("1 King St W", "Toronto", None, None)  # not a US state or ZIP code
    with service_context():
        absentee, at_home = Lead.objects.get(mak="MX1"), Lead.objects.get(mak="MX2")
    assert not {key for key in absentee.melissa_payload if key.startswith("Mailing")}
    assert absentee.melissa_payload == {"County": "Albany"}
    assert (contact_state(absentee), contact_state(at_home)) == ("CA", "NY")


def test_a_resent_file_fills_a_missing_mailing_address_and_keeps_a_known_one():
    ingest(
        csv_of(
            [propstream("MY1", address="200 Oak St", city="Los Angeles", state="CA", zip="90001"), propstream("MY2")]
        )
    )
    # As pipeline_writer, whose column grants follow leads/columns.py: it may fill the new columns.
    upload = ingest(
        csv_of(
            [
                propstream("MY1", address="9 Elm St", city="Austin", state="TX", zip="73301"),
                propstream("MY2", address="5 Bay Rd", city="Miami", state="FL", zip="33101"),
            ]
        )
    )
    assert (upload.status, upload.leads_merged) == ("done", 2)
    assert mailing_of("MY1") == ("200 Oak St", "Los Angeles", "CA", "90001")
    assert mailing_of("MY2") == ("5 Bay Rd", "Miami", "FL", "33101")


def test_a_new_owner_brings_their_own_mailing_address():
    ingest(
        csv_of(
            [
                propstream("MZ1", address="200 Oak St", city="Los Angeles", state="CA", zip="90001"),
                propstream("MZ2", address="7 Pine St", city="Reno", state="NV", zip="89501"),
            ]
        )
    )
    upload = ingest(
        csv_of(
            [
                propstream(
                    "MZ1", first="Sam", last="Newman", address="9 Elm St", city="Austin", state="TX", zip="73301"
                ),
                propstream("MZ2", first="Sam", last="Newman"),  # the new owner gave no mailing address
            ]
        )
    )
    assert upload.status == "done"
    assert mailing_of("MZ1") == ("9 Elm St", "Austin", "TX", "73301")
    assert mailing_of("MZ2") == (None, None, None, None)
