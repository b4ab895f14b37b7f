"""The DNC registry import with small files: numbers stored as integers, leads with those phones marked for
phone and SMS (never e-mail), deletion files applied, a re-import that replaces, the stale-data alert — and a
DNC phone does not stop an e-mail feed (must-show 4, last sentence)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from leads.models import DncRegistryImport, DncRegistryNumber, Lead
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.suppressions.dnc import DncFileError, dnc_import
from security.pii import PHONE, codec, new_key_entry
from tests.factories import BrokerFactory
from tests.pipeline import jobs_support
from tests.pipeline.ingest_helpers import csv_of, ingest
from tests.pipeline.jobs_support import mv_refresh

pytestmark = pytest.mark.django_db
fake_instantly = jobs_support.fake_instantly

MONDAY = dt.date(2026, 1, 5)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def row(mak: str, phone: str, email: str = "") -> dict:
    return {"Address": f"{mak[-1]} Oak Street", "City": "Albany", "State": "NY", "Zip": "12207", "MAK": mak,
            "First Name": "Ann", "Last Name": "Lee", "Phone": phone, "Email": email}  # fmt: skip


def lead(mak: str) -> Lead:
    with service_context():
        return Lead.objects.get(mak=mak)


def numbers() -> dict[int, str]:
    """The registry: number → its key as the blind-index text (`<version>:<hex>`) under the current version."""
    version = codec().current_index_version
    with service_context():
        return {n: f"{version}:{key.hex}" for n, key in DncRegistryNumber.objects.values_list("number", "phone_key")}


@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "child-processes"])
def test_a_registry_file_marks_the_leads_with_those_phones_for_phone_and_sms_only(tmp_path, settings, processes):
    settings.DNC_IMPORT_PROCESSES = processes
    ingest(csv_of([row("DNC-1", "(518) 555-0142"), row("DNC-2", "518-555-0199"), row("DNC-3", "")]))
    registry = tmp_path / "dnc.txt"
    registry.write_text("5185550142\n518,5550100\n\nnot a number\n1-518-555-0177\n5185550142\n")

    result = dnc_import(path=registry)

    assert (result.numbers_in_file, result.invalid_lines, result.numbers_total) == (4, 1, 3)
    stored = numbers()
    assert set(stored) == {5185550142, 5185550100, 5185550177}  # integers; the duplicate stored once
    assert stored[5185550142] == codec().blind_index("+15185550142", PHONE)
    assert lead("DNC-1").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}
    assert lead("DNC-2").suppressed_channels == {}
    assert lead("DNC-3").suppressed_channels == {}
    assert result.leads_marked == 1

    # The next upload: a new lead with a registry number is marked as it is created.
    ingest(csv_of([row("DNC-4", "+1 518 555 0177")]))
    assert lead("DNC-4").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}


def test_deletions_and_a_replacing_import_unmark_the_leads(tmp_path):
    ingest(csv_of([row("DEL-1", "5185550142"), row("DEL-2", "5185550100")]))
    first, deletions, full = tmp_path / "a.txt", tmp_path / "del.txt", tmp_path / "full.txt"
    first.write_text("5185550142\n5185550100\n")
    deletions.write_text("5185550100\n")
    full.write_text("5185550100\n5185550111\n")

    call_command("dnc_import", str(first))
    assert lead("DEL-2").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}
    dnc_import(path=first, deletions=deletions)  # a change file with its deletions
    assert set(numbers()) == {5185550142}
    assert lead("DEL-2").suppressed_channels == {}
    dnc_import(path=full, replace=True)
    assert set(numbers()) == {5185550100, 5185550111}
    assert lead("DEL-1").suppressed_channels == {}
    assert lead("DEL-2").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}
    with service_context():
        assert DncRegistryImport.objects.count() == 3


def test_a_dnc_phone_does_not_stop_an_email_feed(tmp_path, fake_instantly):
    broker = BrokerFactory()
    ingest(csv_of([row("MIX-1", "5185550142", "ann.lee@example.net")]))
    registry = tmp_path / "dnc.txt"
    registry.write_text("5185550142\n")
    dnc_import(path=registry)
    with service_context():
        Lead.objects.update(assigned_broker=broker, consent=True, consent_email=True, consented_at=timezone.now(),
                            email_verified=True, campaign_status="queued")  # fmt: skip
    mv_refresh()

    fed = campaign_feeder_run(business_date=MONDAY)

    assert lead("MIX-1").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}
    assert fed.data["fed"] == 1
    assert fake_instantly.lead_adds_received() == {"ann.lee@example.net": 1}


def dnc_event_timings() -> dict:
    from equity_connect.models import PipelineEvent

    with service_context():
        return PipelineEvent.objects.filter(event_type="dnc_imported").latest("created_at", "id").event_data["timings"]


def test_a_file_without_duplicates_is_stored_without_a_sort_and_one_with_them_keeps_one_row_per_number(tmp_path):
    ingest(csv_of([row("DUP-1", "5185550142")]))
    unique, twice = tmp_path / "unique.txt", tmp_path / "twice.txt"
    unique.write_text("5185550100\n5185550142\n")
    twice.write_text("5185550142\n5185550111\n518,5550142\n")

    first = dnc_import(path=unique, replace=True)
    assert "duplicates" not in first.timings  # the primary key's build proved the keys unique: no dedupe
    assert set(numbers()) == {5185550100, 5185550142}

    again = dnc_import(path=twice, replace=True)
    assert again.timings["duplicates"] == 1 and dnc_event_timings()["duplicates"] == 1
    assert (again.numbers_in_file, again.numbers_total) == (3, 2)
    assert set(numbers()) == {5185550142, 5185550111}  # the number listed twice stored once
    assert lead("DUP-1").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}


def test_a_full_file_with_its_deletion_file_leaves_the_deleted_numbers_out(tmp_path):
    ingest(csv_of([row("FD-1", "5185550142"), row("FD-2", "5185550100")]))
    full, deletions = tmp_path / "full.txt", tmp_path / "del.txt"
    full.write_text("5185550142\n5185550100\n5185550111\n")
    deletions.write_text("5185550100\n5185550199\n")

    result = dnc_import(path=full, deletions=deletions, replace=True)

    assert (result.numbers_in_file, result.deletions_in_file, result.numbers_deleted, result.numbers_total) == (
        3,
        2,
        1,
        2,
    )
    assert "duplicates" not in result.timings  # a deleted number is deleted by key, not deduplicated
    assert set(numbers()) == {5185550142, 5185550111}
    assert lead("FD-1").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}
    assert lead("FD-2").suppressed_channels == {}


def test_a_change_import_reports_the_numbers_its_deletion_file_removed(tmp_path):
    full, changes, deletions = tmp_path / "full.txt", tmp_path / "changes.txt", tmp_path / "del.txt"
    full.write_text("5185550142\n5185550100\n5185550111\n")
    changes.write_text("5185550177\n5185550142\n")  # one new, one already listed
    deletions.write_text("5185550100\n5185550199\n")  # one listed, one never was
    dnc_import(path=full, replace=True)

    result = dnc_import(path=changes, deletions=deletions)

    assert (result.numbers_deleted, result.numbers_total) == (1, 3)
    assert set(numbers()) == {5185550142, 5185550111, 5185550177}


def test_after_a_blind_index_rotation_a_change_import_waits_for_a_full_one_which_rekeys_the_registry(
    tmp_path, settings
):
    ingest(csv_of([row("ROT-1", "5185550142")]))
    full, changes = tmp_path / "full.txt", tmp_path / "changes.txt"
    full.write_text("5185550142\n5185550100\n")
    changes.write_text("5185550111\n")
    dnc_import(path=full, replace=True)
    old_version = codec().current_index_version
    with service_context():
        assert DncRegistryImport.objects.latest("imported_at", "id").blind_index_version == old_version

    settings.BLIND_INDEX_KEYS = [new_key_entry("9"), *settings.BLIND_INDEX_KEYS]
    call_command("reencrypt", stdout=io.StringIO())  # the leads' indexes now under version 9
    assert lead("ROT-1").phone_bidx.startswith("9:")
    with pytest.raises(DncFileError, match="--replace"):
        dnc_import(path=changes)  # its keys (version 9) would not meet the registry's (the old version)

    dnc_import(path=full, replace=True)
    assert numbers()[5185550142] == codec().blind_index("+15185550142", PHONE)  # keyed under version 9
    assert lead("ROT-1").suppressed_channels == {"phone": ["dnc_registry"], "sms": ["dnc_registry"]}
    dnc_import(path=changes)  # now the versions agree
    assert set(numbers()) == {5185550142, 5185550100, 5185550111}
    with service_context():
        assert DncRegistryImport.objects.latest("imported_at", "id").blind_index_version == "9"


def test_the_registry_key_of_a_blind_index_and_of_anything_else():
    phone_bidx = codec().blind_index("+15185550142", PHONE)
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT dnc_phone_key(%s), dnc_phone_key(%s), dnc_phone_key(%s), dnc_phone_key(NULL)",
            [phone_bidx, "1:not-hex", "no colon"],
        )
        key, malformed, no_colon, empty = cursor.fetchone()
    assert key.hex == phone_bidx.split(":", 1)[1]
    assert (malformed, no_colon, empty) == (None, None, None)  # matches nothing, fails nothing


def test_the_bulk_indexer_is_the_blind_index():
    index = codec().bulk_indexer(PHONE)
    for phone in ("+15185550142", "+12015550123"):
        assert f"{codec().current_index_version}:{index(phone.encode()).hex()}" == codec().blind_index(phone, PHONE)


def test_row_level_security_is_back_on_the_registry_after_a_full_import_and_after_a_failed_one(tmp_path):
    def registry_rls() -> bool:
        with service_context(), connection.cursor() as cursor:
            cursor.execute("SELECT relrowsecurity FROM pg_class WHERE relname = 'dnc_registry_numbers'")
            return cursor.fetchone()[0]

    full, empty = tmp_path / "full.txt", tmp_path / "empty.txt"
    full.write_text("5185550142\n5185550142\n")  # the duplicate path too
    empty.write_text("no number here\n")
    dnc_import(path=full, replace=True)
    assert registry_rls() is True
    with pytest.raises(DncFileError):
        dnc_import(path=empty, replace=True)  # fails after the switch was turned off: rolled back with the rest
    assert registry_rls() is True and set(numbers()) == {5185550142}
