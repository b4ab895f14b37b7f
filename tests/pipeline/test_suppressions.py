"""The suppression list's services and command with the real ingestion: channels per reason, adding twice,
removing, an erased person's rows rejected with nothing kept, an address entry and a new owner, the CSV import,
and a do-not-contact that binds every other lead with the contact."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from equity_connect.db import service_context
from leads.contact_indexes import indexes_of
from leads.models import Lead, Suppression
from leads.services import lead_mark_do_not_contact
from leads.suppressions.rules import SuppressionInvalid, channels_for
from leads.suppressions.services import suppression_add, suppression_import_rows, suppression_remove
from pipeline.models import PipelineDLQ
from pipeline.suppressions.values import address_hash
from security.pii import EMAIL
from tests.pipeline.ingest_helpers import assert_invariant, csv_of, ingest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def row(mak: str, email: str = "", phone: str = "", first: str = "Ruth", street: str = "Pine") -> dict:
    return {"Address": f"{mak[-1]} {street} Street", "City": "Albany", "State": "NY", "Zip": "12207", "MAK": mak,
            "First Name": first, "Last Name": "Baker", "Email": email, "Phone": phone}  # fmt: skip


def lead(mak: str) -> Lead:
    with service_context():
        return Lead.objects.get(mak=mak)


@pytest.mark.parametrize(
    ("reason", "chosen", "expected"),
    [
        ("unsubscribe", None, ["email"]),
        ("bounce", None, ["email"]),
        ("complaint", None, ["email", "sms", "phone"]),
        ("dnc_registry", None, ["phone", "sms"]),
        ("litigator", None, ["phone", "sms"]),
        ("customer_request", None, ["email", "sms", "phone"]),
        ("erasure", None, ["email", "sms", "phone"]),
        ("manual", ["sms"], ["sms"]),
        ("manual", None, SuppressionInvalid),
        ("dnc_registry", ["email", "phone", "sms"], SuppressionInvalid),  # a do-not-call list never binds e-mail
        ("unsubscribe", ["phone"], SuppressionInvalid),
        ("gossip", None, SuppressionInvalid),
    ],
)
def test_the_channels_each_reason_binds(reason, chosen, expected):
    if expected is SuppressionInvalid:
        with pytest.raises(SuppressionInvalid):
            channels_for(reason, chosen)
    else:
        assert sorted(channels_for(reason, chosen)) == sorted(expected)


def test_adding_twice_changes_nothing_and_removing_unmarks():
    ingest(csv_of([row("TW-1", phone="518-555-0142")]))
    with service_context():
        first = suppression_add(kind="phone", value="+15185550142", reason="litigator", source="test")
        again = suppression_add(kind="phone", value="+15185550142", reason="litigator", source="test")
    assert first.created and first.leads_marked == 1 and not again.created and again.entry == first.entry
    assert lead("TW-1").suppressed_channels == {"phone": ["litigator"], "sms": ["litigator"]}
    with service_context():
        suppression_remove(entry=first.entry, note="listed by mistake", by="ops")
    assert lead("TW-1").suppressed_channels == {}
    with service_context():
        entry = Suppression.objects.get()
    assert entry.removed_at and entry.removed_by_name == "ops" and entry.removed_note == "listed by mistake"


def test_an_erased_persons_row_is_rejected_with_its_line_number_and_reason_only():
    with service_context():
        suppression_add(
            kind="email", indexes=indexes_of("gone@example.net", EMAIL), reason="erasure", source="privacy"
        )
        with pytest.raises(SuppressionInvalid):
            suppression_remove(entry=Suppression.objects.get(), note="oops")
    upload = ingest(csv_of([row("ER-1", " Gone@Example.net", "518-555-0100"), row("ER-2", "kept@example.net")]))
    assert_invariant(upload)
    assert (upload.leads_created, upload.rows_rejected) == (1, 1)
    with service_context():
        (dlq,) = PipelineDLQ.objects.filter(upload=upload)
        assert not Lead.objects.filter(mak="ER-1").exists()
    assert (dlq.line_number, dlq.reason, dlq.payload) == (2, "erased person", {})


def test_an_address_entry_never_binds_the_new_owner():
    ingest(csv_of([row("AD-1", "old.owner@example.net", first="Ruth")]))
    hashed = address_hash("1 Pine Street", city="Albany", state="NY", zip_code="12207")
    assert hashed == lead("AD-1").addr_hash  # the command hashes an address as the ingestion does
    with service_context():
        suppression_add(kind="address", value=hashed, reason="customer_request", source="test")
    assert lead("AD-1").suppressed_channels == {key: ["customer_request"] for key in ("email", "phone", "sms")}

    ingest(csv_of([{**row("AD-1", "new.owner@example.net", first="Oscar"), "Last Name": "Diaz"}]))  # a new owner

    new_owner = lead("AD-1")
    assert new_owner.email == "new.owner@example.net" and new_owner.owner_changed_at is not None
    assert new_owner.suppressed_channels == {}


def test_a_new_owner_loses_the_marks_of_the_old_owners_email():
    ingest(csv_of([row("NO-1", "old.owner@example.net", first="Ruth")]))
    with service_context():
        suppression_add(
            kind="email", indexes=indexes_of("old.owner@example.net", EMAIL), reason="unsubscribe", source="test"
        )
    assert lead("NO-1").suppressed_channels == {"email": ["unsubscribe"]}

    # The new owner's values meet no entry: only the owner change makes the ingestion look at the lead again.
    ingest(csv_of([{**row("NO-1", "new.owner@example.net", first="Oscar"), "Last Name": "Diaz"}]))

    new_owner = lead("NO-1")
    assert new_owner.email == "new.owner@example.net" and new_owner.owner_changed_at is not None
    assert new_owner.suppressed_channels == {}


def test_the_command_adds_lists_imports_and_removes(tmp_path, capsys):
    ingest(csv_of([row("CM-1", "a@example.net"), row("CM-2", phone="(518) 555-0142"), row("CM-3", "x@spam.example")]))
    call_command("suppression", "add", "--kind", "email", "--value", " A@Example.NET ", "--reason", "complaint")
    assert lead("CM-1").suppressed_channels == {key: ["complaint"] for key in ("email", "phone", "sms")}
    listing = tmp_path / "list.csv"
    listing.write_text(
        "kind,value,reason,channels,address,unit,city,state,zip\n"
        "phone,518.555.0142,manual,sms,,,,,\n"
        "email_domain,spam.example,manual,email,,,,,\n"
        "address,,customer_request,,3 Pine Street,,Albany,NY,12207\n"
        "email,a@example.net,complaint,,,,,,\n"  # already listed
    )
    call_command("suppression", "import", str(listing))
    assert "4 rows: 3 added, 1 already listed" in capsys.readouterr().out
    assert lead("CM-2").suppressed_channels == {"sms": ["manual"]}
    assert lead("CM-3").suppressed_channels == {key: ["customer_request", *(["manual"] if key == "email" else [])]
                                                for key in ("email", "phone", "sms")}  # fmt: skip
    call_command("suppression", "list", "--value", "a@example.net")
    out = capsys.readouterr().out
    assert "1 entries" in out and "a@example.net" not in out  # masked
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,value,reason\nemail,not-an-address,unsubscribe\n")
    with pytest.raises(CommandError, match="line 2"):
        call_command("suppression", "import", str(bad))
    with service_context():
        entry = Suppression.objects.get(kind="phone")
    call_command("suppression", "remove", str(entry.pk), "--note", "asked back in")
    assert lead("CM-2").suppressed_channels == {}


def test_an_import_keeps_every_character_of_its_notes_and_marks_the_leads_its_values_bind():
    ingest(csv_of([row("QN-1", "quote@example.net", "518-555-0199"), row("QN-2", "other@example.net")]))
    notes = ['says "never", twice', "back\\slash {braces}, NULL", "", "it's é"]
    rows = [
        {"kind": "email", "value": "quote@example.net", "reason": "customer_request", "note": notes[0]},
        {"kind": "phone", "value": "+15185550199", "reason": "customer_request", "note": notes[1]},
        {"kind": "email", "value": "nobody@example.net", "reason": "manual", "channels": "email", "note": notes[2]},
        {"kind": "email_domain", "value": "elsewhere.example", "reason": "manual", "channels": "email",
         "note": notes[3]},
    ]  # fmt: skip
    with service_context():
        counts = suppression_import_rows(rows=rows, source="test")
        stored = dict(Suppression.objects.values_list("label", "note"))
    assert counts == {"rows": 4, "added": 4, "already_listed": 0, "leads_marked": 1}
    assert sorted(stored.values()) == sorted(notes)
    assert lead("QN-1").suppressed_channels == {key: ["customer_request"] for key in ("email", "phone", "sms")}
    assert lead("QN-2").suppressed_channels == {}


def test_a_do_not_contact_binds_every_other_lead_with_that_contact():
    ingest(csv_of([row("DN-1", "pat@example.net", "518-555-0142"), row("DN-2", "", "+1 518 555 0142"),
                   row("DN-3", "pat@example.net")]))  # fmt: skip
    with service_context():
        lead_mark_do_not_contact(lead=lead("DN-1"), broker=None, reason="asked on the phone")
    for mak in ("DN-1", "DN-2", "DN-3"):
        assert lead(mak).suppressed_channels == {key: ["customer_request"] for key in ("email", "phone", "sms")}
