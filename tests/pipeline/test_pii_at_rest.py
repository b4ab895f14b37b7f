"""PII encrypted at rest (issue 13, must-show 4): a planted e-mail and phone go through an ingest, a DLQ reprocess,
a webhook and a consent; then neither is in a `pg_dump` of the database nor in MEDIA_ROOT outside the documented
list (the stored upload files, kept UPLOAD_FILE_RETENTION_DAYS), while dedupe, the webhook and exact search still
work. Key rotation (`manage.py reencrypt`) re-encrypts without losing a row."""

from __future__ import annotations

import importlib
import io
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from equity_connect.db import broker_context, service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from leads.consent.services import consent_link_create
from leads.consent.texts import CURRENT_VERSION
from leads.contact_indexes import contact_indexes_fill, indexes_of
from leads.models import Lead, LeadConsentAudit
from leads.selectors import LeadFilters, lead_list
from pipeline.ingest.services import dlq_row_reprocess
from pipeline.models import PipelineDLQ, Upload, WebhookDelivery
from security.fields import EncryptedLookupError, looks_encrypted, open_notes, seal_note
from security.pii import EMAIL, PHONE, codec, new_key_entry
from tests.factories import BrokerFactory
from tests.pg import conninfo
from tests.pipeline.ingest_helpers import csv_of, ingest

WEBHOOK_URL = "/api/v1/webhooks/instantly"
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"  # settings/test.py


def _row(mak: str, email: str, phone: str, **extra) -> dict:
    return {"Address": "12 Quiet Lane", "City": "Albany", "State": "NY", "Zip": "12207", "MAK": mak,
            "First Name": "Pat", "Last Name": "Planted", "Email": email, "Phone": phone, **extra}  # fmt: skip


def _pg_dump() -> bytes:
    tools = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), key=lambda path: int(path.parts[-3]))
    if not tools:
        pytest.skip("pg_dump not found")
    admin = conninfo(admin=True)
    dsn = f"host={admin['host']} port={admin['port'] or 5432} user={admin['user']} dbname={admin['dbname']}"
    done = subprocess.run(
        [str(tools[-1]), "--dbname", dsn],
        env={**os.environ, "PGPASSWORD": admin["password"] or ""},
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture
def committed_db(transactional_db):
    """A test whose writes are committed (pg_dump reads only what is), and the seed rows put back after the
    flush that ends it (contact windows, migration 0011)."""
    yield
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contact_windows")
        if not cursor.fetchone()[0]:
            cursor.execute(importlib.import_module("leads.migrations.0011_contact_windows").SEED)


@pytest.mark.slow
def test_a_planted_email_and_phone_are_nowhere_in_plaintext(committed_db, settings, tmp_path, client):
    settings.MEDIA_ROOT = tmp_path
    settings.INGEST_SUBPROCESS_MIN_BYTES = 0  # the normaliser child processes encrypt, as in production
    email = f"planted.{secrets.token_hex(6)}@example.org"
    national = f"518{secrets.randbelow(8_000_000) + 2_000_000}"
    phone = f"+1{national}"
    typed_phone = f"({national[:3]}) {national[3:6]}-{national[6:]}"
    broker = BrokerFactory()

    # 1. ingest: one row becomes a lead; two (no MAK, no address) are rejected into the DLQ with the contact in
    # them (one is reprocessed below, one stays open)
    unkeyed = _row("", email, typed_phone, Address="", Zip="")
    first = ingest(csv_of([_row("PII-1", email, typed_phone), unkeyed, {**unkeyed, "Age": "80"}]), broker=broker)
    assert (first.leads_created, first.rows_rejected) == (1, 2)
    with service_context():
        lead = Lead.objects.get(mak="PII-1")
        rejected = PipelineDLQ.objects.filter(upload_id=first.id).order_by("line_number").first()
    assert (lead.email, lead.phone) == (email, phone)  # the ORM decrypts
    assert rejected.payload["Email"] == email  # the DLQ payload decrypts for the code (and the allowed staff)

    # 2. a DLQ reprocess of the corrected row (a MAK added): it lands on a second lead with the same contact
    lead_id = dlq_row_reprocess(rejected.pk, payload={**rejected.payload, "MAK": "PII-2", "Address": "14 Quiet Lane"})
    assert lead_id is not None

    # 3. dedupe still works: the same property again merges, it does not create a lead
    again = ingest(csv_of([_row("PII-1", email, typed_phone, Age="70")]), broker=broker)
    assert (again.leads_created, again.leads_merged) == (0, 1)

    # 4. a webhook finds the leads by the address (its blind index)
    delivery = {"timestamp": "2026-01-06T17:04:05Z", "event_type": "email_bounced", "lead_email": email.upper()}
    response = client.post(
        WEBHOOK_URL, data=json.dumps(delivery), content_type="application/json", HTTP_X_WEBHOOK_SECRET=WEBHOOK_SECRET
    )
    assert response.status_code == 200 and response.json()["leads"] == 2, response.content
    unknown = {**delivery, "lead_email": "nobody." + email}  # dead-lettered with its payload
    assert (
        client.post(
            WEBHOOK_URL,
            data=json.dumps(unknown),
            content_type="application/json",
            HTTP_X_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ).json()["status"]
        == "dead_lettered"
    )

    # 5. a consent on the public form (the link is bound to the lead's blind indexes)
    with service_context():
        url = consent_link_create(lead=Lead.objects.get(mak="PII-1"), broker=broker.pk)
    answer = {"choice": "consent", "channels": ["email"], "text_version": CURRENT_VERSION}
    assert client.post(url, answer).status_code == 200
    with service_context():
        assert LeadConsentAudit.objects.filter(lead__mak="PII-1", consent=True).exists()
        assert WebhookDelivery.objects.filter(lead__mak__in=["PII-1", "PII-2"]).get().lead_email == email
    # exact search (portal): the e-mail, the phone as typed, the last four digits; and no lookup by value
    with broker_context(broker.pk):
        for term in (email.upper(), typed_phone, national[-4:]):
            found = set(lead_list(broker=broker, filters=LeadFilters(search=term)).values_list("mak", flat=True))
            assert found == {"PII-1", "PII-2"}, term
    with service_context(), pytest.raises(EncryptedLookupError):
        Lead.objects.filter(email=email).exists()
    with service_context():
        assert Lead.objects.filter(email_bidx__in=indexes_of(email, EMAIL)).count() == 2

    # neither value in plaintext anywhere in the database
    dump = _pg_dump()
    for value in (email, email.upper(), phone, national, typed_phone):
        assert value.encode() not in dump, f"{value} is in the pg_dump"
    assert email.split("@")[0].encode() not in dump

    # nor in MEDIA_ROOT, outside the documented list: the stored upload files (UPLOAD_FILE_RETENTION_DAYS)
    with service_context():
        stored = {Path(tmp_path, name).resolve() for name in Upload.objects.values_list("file", flat=True) if name}
    assert stored, "the uploads keep their file"
    for path in Path(tmp_path).rglob("*"):
        if path.is_file() and path.resolve() not in stored:
            content = path.read_bytes()
            assert email.encode() not in content and national.encode() not in content, path


def _stored(sql: str, params: list) -> list:
    with service_context(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.mark.django_db
def test_key_rotation_reencrypts_every_row_and_everything_still_matches(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    rows = [_row(f"ROT-{index}", f"rot{index}@example.org", f"518555{index:04d}") for index in range(7)]
    rows.append(_row("", "rejected@example.org", "5185559999", Address="", Zip=""))  # a DLQ row
    ingest(csv_of(rows))
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT upsert_lead(p_mak => 'ROT-SEED', p_email => 'seed@example.org')")
        contact_indexes_fill()
        record_event("lead_outcome", data={"outcome": "callback", "note": seal_note("call after 5")})
    before = _stored("SELECT id, email, phone, email_bidx FROM leads ORDER BY id", [])
    old_key, old_index = codec().current_key_id, codec().current_index_version

    settings.PII_ENCRYPTION_KEYS = [new_key_entry("k9"), *settings.PII_ENCRYPTION_KEYS]
    settings.BLIND_INDEX_KEYS = [new_key_entry("9"), *settings.BLIND_INDEX_KEYS]
    out = io.StringIO()
    call_command("reencrypt", "--batch", "3", stdout=out)
    assert "leads: 8 rows done" in out.getvalue() and "pipeline_dlq.payload: 1 rows done" in out.getvalue()

    after = _stored("SELECT id, email, phone, email_bidx FROM leads ORDER BY id", [])
    assert [row[0] for row in after] == [row[0] for row in before]  # no row lost
    for _, email, phone, email_bidx in after:
        assert email.startswith("k9:") and email_bidx.startswith("9:") and (phone is None or phone.startswith("k9:"))
    assert not _stored(
        "SELECT 1 FROM leads WHERE email LIKE %s OR email_bidx LIKE %s", [old_key + ":%", old_index + ":%"]
    )
    (payload,) = _stored("SELECT payload ->> 'encrypted' FROM pipeline_dlq", [])[0]
    assert payload.startswith("k9:")
    (note,) = _stored("SELECT event_data ->> 'note' FROM pipeline_events WHERE event_type = 'lead_outcome'", [])[0]
    assert note.startswith("k9:")  # a sealed note on the event trail is rotated too
    # the old key can go: everything decrypts and matches under the new ones alone
    settings.PII_ENCRYPTION_KEYS = settings.PII_ENCRYPTION_KEYS[:1]
    with service_context():
        assert Lead.objects.get(mak="ROT-3").email == "rot3@example.org"
        assert Lead.objects.get(mak="ROT-SEED").email == "seed@example.org"
        assert Lead.objects.filter(phone_bidx__in=indexes_of("+15185550005", PHONE)).get().mak == "ROT-5"
        assert PipelineDLQ.objects.get().payload["Email"] == "rejected@example.org"
        event = PipelineEvent.objects.get(event_type="lead_outcome")
        assert open_notes(event.event_data)["note"] == "call after 5"
    out = io.StringIO()
    call_command("reencrypt", stdout=out)  # resumable: a second run finds nothing left
    assert "nothing was left under an old key" in out.getvalue()


@pytest.mark.django_db
def test_the_seed_function_rows_are_encrypted_by_the_sweep():
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT upsert_lead(p_mak => 'SW-1', p_email => 'legacy@example.org', p_phone => '+15185550123')"
        )
        (lead_id,) = cursor.fetchone()
        cursor.execute("SELECT email FROM leads WHERE id = %s", [lead_id])
        assert cursor.fetchone()[0] == "legacy@example.org"  # the legacy path writes plaintext
        assert Lead.objects.get(pk=lead_id).email == "legacy@example.org"  # read as it is until the sweep
    from pipeline.tasks import contacts_encrypt_task

    assert contacts_encrypt_task() == "encrypted the contacts of 1 leads"
    (email, phone, bidx), *_ = _stored("SELECT email, phone, email_bidx FROM leads WHERE id = %s", [lead_id])
    assert looks_encrypted(email) and looks_encrypted(phone) and bidx in indexes_of("legacy@example.org", EMAIL)
    with service_context():
        assert (Lead.objects.get(pk=lead_id).email, Lead.objects.get(pk=lead_id).phone) == (
            "legacy@example.org",
            "+15185550123",
        )
    assert contacts_encrypt_task() == "nothing to encrypt"
