"""A person's rights: `manage.py privacy export` finds them everywhere, `privacy erase` leaves nothing readable
(the database's tables and views, and MEDIA_ROOT's files, searched for the planted e-mail and phone), and the
fake Instantly recorded the deletion."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from leads.models import Lead, LeadAccessRecord, LeadConsentAudit
from leads.suppressions.models import Suppression
from leads.suppressions.services import suppression_add
from pipeline.campaigns.instantly import InstantlyClient
from pipeline.models import LeadStaging, PipelineDLQ
from tests.factories import LeadAccessRecordFactory, LeadConsentAuditFactory, StaffUserFactory, WebhookDeliveryFactory
from tests.pipeline.ingest_helpers import csv_of, ingest
from tests.pipeline.jobs_support import CAMPAIGN_ID, fake_instantly  # noqa: F401 (a fixture)

EMAIL = "Planted.Person-7731@Example.org"
PHONE = "(212) 555-0143"
E164 = "+12125550143"
# What must not be found anywhere afterwards: the address (any case) and the number in the forms it was written.
NEEDLES = ("planted.person-7731@example.org", "2125550143", "555-0143", "planted")
OTHER_EMAIL = "someone.else@example.net"


def row(**values):
    base = {"mak": "", "property_address": "", "property_city": "", "property_state": "", "property_zip": ""}
    return {**base, "first_name": "", "last_name": "", "email": "", "phone": "", **values}


@pytest.fixture
def planted(settings, tmp_path, fake_instantly):  # noqa: F811
    """The person in leads (with an Instantly id), a rejected row (DLQ), staging, the upload file, events, a
    consent record, access records and a webhook delivery; and someone else beside them."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INGEST_KEEP_STAGING = True
    body = csv_of(
        [
            row(
                mak="PRIV1",
                first_name="Planted",
                last_name="Person",
                email=EMAIL,
                phone=PHONE,
                property_address="12 Quiet Lane",
                property_city="Albany",
                property_state="NY",
                property_zip="12207",
            ),
            row(first_name="Planted", email=EMAIL.upper(), phone="212.555.0143"),  # no dedupe key: the DLQ
            row(
                mak="OTHER1",
                first_name="Other",
                email=OTHER_EMAIL,
                phone="4155550101",
                property_address="9 Elm St",
                property_city="Fresno",
                property_state="CA",
                property_zip="93650",
            ),
        ]
    )
    upload = ingest(body)
    assert (upload.leads_created, upload.rows_rejected) == (2, 1)
    pushed = InstantlyClient().add_leads([{"email": EMAIL.lower()}, {"email": OTHER_EMAIL}])
    assert not pushed.failed_batches
    ids = fake_instantly.lead_ids(CAMPAIGN_ID)
    staff = StaffUserFactory()
    with service_context():
        lead = Lead.objects.get(mak="PRIV1")
        Lead.objects.filter(pk=lead.pk).update(instantly_lead_id=ids[EMAIL.lower()])
        Lead.objects.filter(mak="OTHER1").update(instantly_lead_id=ids[OTHER_EMAIL])
        record_event("email_bounced", lead_id=lead.pk, data={"email": EMAIL.lower(), "phone": E164})
    LeadConsentAuditFactory(lead=lead, ip_address="198.51.100.7", user_agent="PlantedBrowser/1.0")
    LeadAccessRecordFactory(lead_id=lead.pk, user_id=staff.pk, username=staff.username, via="admin.lead")
    LeadAccessRecordFactory(
        lead_id=None, user_id=staff.pk, action="export", via="admin.leads", filters={"search": EMAIL.lower()}
    )
    WebhookDeliveryFactory(lead_email=EMAIL.lower(), payload={"lead_email": EMAIL.lower(), "event": "reply"})
    return {
        "lead": lead,
        "upload": upload,
        "staff": staff,
        "other_instantly_id": ids[OTHER_EMAIL],
        "instantly_id": ids[EMAIL.lower()],
    }


def database_text_mentions(needles) -> dict[str, list[str]]:
    """Every table and materialized view of the test database, each row as text, read as the schema owner (no
    row-level security), searched for the needles. {relation: [needles found]}."""
    admin = settings.DATABASE_ADMIN
    found = {}
    with psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        user=admin["USER"],
        password=admin["PASSWORD"],
        host=admin["HOST"],
        port=admin["PORT"],
    ) as conn:
        relations = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'm')"
        ).fetchall()
        for (relation,) in relations:
            text = "\n".join(value or "" for (value,) in conn.execute(f'SELECT t::text FROM "{relation}" t')).lower()
            hits = [needle for needle in needles if needle in text]
            if hits:
                found[relation] = hits
    return found


def media_mentions(root: Path, needles) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace").lower()
            hits = [needle for needle in needles if needle in text]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


@pytest.mark.django_db(transaction=True)
def test_export_holds_every_record_and_erase_leaves_nothing_readable(planted, tmp_path, fake_instantly, capsys):  # noqa: F811
    lead = planted["lead"]
    assert database_text_mentions(NEEDLES)  # the search finds the planted person before the erasure
    assert media_mentions(Path(settings.MEDIA_ROOT), NEEDLES)

    call_command("privacy", "export", "--email", EMAIL, "--output", str(tmp_path / "out"))

    files = {path.name: json.loads(path.read_text()) for path in (tmp_path / "out").iterdir()}
    [document] = [value for name, value in files.items() if name.startswith("privacy-export-")]
    records = document["records"]
    assert [item["id"] for item in records["leads"]] == [str(lead.pk)]
    assert {event["event_type"] for event in records["events"]} >= {"lead_created", "email_bounced"}
    assert [row["line_number"] for row in records["dlq_rows"]] == [3]
    assert records["dlq_rows"][0]["payload"]["email"] == EMAIL.upper()
    assert sorted(row["line_number"] for row in records["staging_rows"]) == [2, 3]
    assert [record["user_agent"] for record in records["consent_records"]] == ["PlantedBrowser/1.0"]
    assert {record["via"] for record in records["access_records"]} == {"admin.lead"}
    assert [delivery["lead_email"] for delivery in records["webhook_deliveries"]] == [EMAIL.lower()]
    [file_rows] = records["upload_file_rows"]
    assert (file_rows["upload_id"], file_rows["lines"]) == (str(planted["upload"].pk), [2, 3])
    assert OTHER_EMAIL not in json.dumps(document)
    proof = files[f"consent-proof-{lead.pk}.json"]
    assert proof["contact"]["email"] == EMAIL.lower() and proof["contact"]["phone"] == E164
    assert [record["ip_address"] for record in proof["consent_records"]] == ["198.51.100.7"]
    with service_context():
        exported = LeadAccessRecord.objects.get(action="export", via="privacy.export")
        assert exported.lead_id == lead.pk and exported.filters == {"by": "email"}
        assert PipelineEvent.objects.filter(event_type="person_exported").count() == 1

    with service_context():  # an earlier unsubscribe keeps the address, encrypted, until the erasure
        unsubscribed = suppression_add(kind="email", reason="unsubscribe", source="test", value=EMAIL).entry
        assert unsubscribed.value_encrypted

    call_command("privacy", "erase", "--email", EMAIL, "--phone", PHONE, "--yes")

    assert fake_instantly.erased_ids() == [planted["instantly_id"]]
    assert fake_instantly.lead_ids(CAMPAIGN_ID) == {OTHER_EMAIL: planted["other_instantly_id"]}
    assert database_text_mentions(NEEDLES) == {}
    assert media_mentions(Path(settings.MEDIA_ROOT), NEEDLES) == {}
    with service_context():
        assert list(Lead.objects.values_list("mak", flat=True)) == ["OTHER1"]  # the other person is untouched
        proof_kept = LeadConsentAudit.objects.get()
        assert (proof_kept.consent, proof_kept.ip_address, proof_kept.user_agent) == (True, None, "")
        assert proof_kept.lead_id != lead.pk
        dlq = PipelineDLQ.objects.get()
        assert (dlq.line_number, dlq.payload) == (3, {"_redacted": "erasure"})
        assert not any("planted" in (email or "") for email in LeadStaging.objects.values_list("email", flat=True))
        assert OTHER_EMAIL in LeadStaging.objects.values_list("email", flat=True)
        erased = LeadAccessRecord.objects.get(action="erase")
        assert erased.via == "privacy.erase" and erased.detail["counts"]["leads_deleted"] == 1
        assert PipelineEvent.objects.get(event_type="person_erased").event_data["counts"]["dlq_rows_redacted"] == 1
    upload_file = Path(settings.MEDIA_ROOT) / planted["upload"].file.name
    lines = upload_file.read_text().splitlines()
    assert len(lines) == 4 and lines[1].strip(",") == "" and lines[2].strip(",") == "" and OTHER_EMAIL in lines[3]
    with service_context():
        # The earlier entry still binds but can no longer be read back; the erasure entries hold indexes only.
        unsubscribed = Suppression.objects.get(pk=unsubscribed.pk)
        assert (unsubscribed.value_encrypted, unsubscribed.label) == ("", "(erased person)")
        erasures = Suppression.objects.filter(reason="erasure").order_by("kind")
        assert [(entry.kind, entry.value_encrypted) for entry in erasures] == [("email", ""), ("phone", "")]

    # The person is never imported again: their row is rejected, and its DLQ row holds the line and the reason.
    again = ingest(csv_of([row(mak="PRIV9", first_name="Planted", email=EMAIL.upper(), phone="212 555 0143")]))
    assert (again.leads_created, again.rows_rejected) == (0, 1)
    with service_context():
        rejected = PipelineDLQ.objects.get(upload_id=again.pk)
        assert (rejected.line_number, rejected.reason, rejected.payload) == (2, "erased person", {})
        assert not Lead.objects.filter(mak="PRIV9").exists()
    assert database_text_mentions(NEEDLES) == {}


@pytest.mark.django_db(transaction=True)
def test_a_failed_instantly_deletion_erases_nothing(planted, fake_instantly, settings):  # noqa: F811
    settings.INSTANTLY_API_KEY = "a-key-instantly-refuses"
    with pytest.raises(CommandError, match="Instantly did not delete"):
        call_command("privacy", "erase", "--email", EMAIL, "--yes")
    with service_context():
        assert Lead.objects.filter(mak="PRIV1").exists()
    assert media_mentions(Path(settings.MEDIA_ROOT), NEEDLES)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--email", "not-an-address"], "not a valid e-mail"),
        (["--phone", "12"], "not a valid phone"),
        ([], "e-mail address or phone number"),
    ],
)
def test_the_command_refuses_what_is_not_a_person(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("privacy", "export", *arguments)


URL = "/admin/privacy/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "expected"),
    [("ops", 403), ("admin", 200), ("superuser", 200), ("anonymous", 302)],
)
def test_the_privacy_page_is_for_the_admin_role_only(client, role, expected):
    from tests.factories import RoleUserFactory

    if role in ("ops", "admin"):
        client.force_login(RoleUserFactory(role=role))
    elif role == "superuser":
        client.force_login(StaffUserFactory())
    assert client.get(URL).status_code == expected
    if role == "ops":
        assert client.post(URL, {"email": EMAIL, "action": "erase", "confirm_value": EMAIL}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_admin_exports_and_erases_after_a_confirmation(client, planted, fake_instantly):  # noqa: F811
    import io
    import zipfile

    from tests.factories import RoleUserFactory

    client.force_login(RoleUserFactory(role="admin"))
    exported = client.post(URL, {"email": EMAIL, "action": "export"})
    assert exported["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    assert f"consent-proof-{planted['lead'].pk}.json" in names and len(names) == 2

    asked = client.post(URL, {"email": EMAIL, "action": "erase"})
    assert b"erase-confirm-form" in asked.content
    wrong = client.post(URL, {"email": EMAIL, "action": "erase", "confirm_value": OTHER_EMAIL})
    assert b"does not match" in wrong.content
    with service_context():
        assert Lead.objects.filter(mak="PRIV1").exists()  # nothing erased before the confirmation

    done = client.post(URL, {"email": EMAIL, "phone": PHONE, "action": "erase", "confirm_value": PHONE})
    assert b'id="erased"' in done.content
    assert fake_instantly.erased_ids() == [planted["instantly_id"]]
    assert database_text_mentions(NEEDLES) == {}
    with service_context():
        record = LeadAccessRecord.objects.get(action="erase")
        assert record.via == "privacy.erase" and record.ip_address is not None
