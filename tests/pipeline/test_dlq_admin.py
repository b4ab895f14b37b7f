"""DLQ triage in the admin, through the real middleware as a staff member: list, filters, search, the
payload shown readably, edit + reprocess through the ingestion service (creates or merges the lead and
resolves the row; again does nothing), bulk reprocess, discard with a required note, CSV export, and the
drill-down and "run now" screens."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead, LeadAccessRecord
from pipeline.dlq import DLQError, dlq_discard
from pipeline.models import PipelineDLQ, Upload
from tests.factories import (
    LeadFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    RoleUserFactory,
    StaffUserFactory,
    UploadFactory,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/pipeline/pipelinedlq/"

BROKEN_ROW = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.org",
    "phone": "",
    "property_address": "",
    "property_city": "San Diego",
    "property_state": "CA",
    "property_zip": "92101",
}
FIXED_ROW = {**BROKEN_ROW, "phone": "(619) 555-0142", "property_address": "1815 Analytical Engine Way"}


@pytest.fixture
def staff(client):
    user = StaffUserFactory()
    client.force_login(user)
    return user


@pytest.fixture
def rejected_row():
    """What the ingestion leaves for a line without any dedupe key: a done upload with one rejected row."""
    upload = UploadFactory(status="done", rows_total=3, leads_created=2, rows_rejected=1, source="propstream-batch")
    return PipelineDLQFactory(
        upload=upload,
        line_number=4,
        payload=dict(BROKEN_ROW),
        reason="no dedupe key: the row has no MAK, no APN and no address",
    )


def reload(obj):
    with service_context():
        return type(obj).objects.get(pk=obj.pk)


def count(model, **filters):
    with service_context():
        return model.objects.filter(**filters).count()


def post_action(client, action, items, *, follow=False, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [item.pk for item in items], **extra}
    return client.post(CHANGELIST, data, follow=follow)


def messages_of(response):
    return [str(message) for message in response.context["messages"]] if response.context else []


def test_changelist_columns_filters_search_and_drilldown(client, staff, rejected_row):
    other_upload = UploadFactory()
    webhook = PipelineDLQFactory(source="webhook", upload=None, reason="unknown lead for reply_received")
    PipelineDLQFactory(upload=other_upload, reason="row has no address", status="discarded")

    body = client.get(CHANGELIST).content.decode()
    for text in ("no dedupe key", "upload_row", "webhook", "its DLQ rows", "age", "attempts"):
        assert text in body

    def listed(query):
        response = client.get(CHANGELIST + query)
        assert response.status_code == 200, query
        return {item.pk for item in response.context["cl"].result_list}

    assert listed("?source__exact=webhook") == {webhook.pk}
    assert listed("?status__in=open,retrying") == {rejected_row.pk, webhook.pk}
    assert listed(f"?upload__exact={rejected_row.upload_id}") == {rejected_row.pk}
    assert listed(f"?q={rejected_row.upload_id}") == {rejected_row.pk}
    assert listed(f"?q={webhook.pk}") == {webhook.pk}
    assert listed("?q=unknown+lead") == {webhook.pk}
    assert len(listed("?age=1d")) == 2  # the list opens on the open items
    assert len(listed("?age=1d&state=all")) == 3
    assert listed("?age=7d") == set()


def row_form_data(response, changes: dict, button: str = "_reprocess") -> dict:
    """The triage form as shown, with `changes` ({header or field: value}) typed in and `button` pressed."""
    form = response.context["form"]
    data = {}
    for name, row in zip(form.fields, form.rows, strict=True):
        data[f"row-{name}"] = changes.get(row.key, row.value)
    data[button] = "1"
    return data


def fix_row(client, item, changes: dict, button: str = "_reprocess", *, follow=True):
    url = reverse("admin:pipeline_pipelinedlq_change", args=[item.pk])
    return client.post(url, row_form_data(client.get(url), changes, button), follow=follow)


def test_change_page_shows_the_row_as_a_form(client, staff, rejected_row):
    rejected_row.payload = {"Owner 1 First Name": "Ada", "Address": "", "City": "San Diego", "Zip": "92101"}
    with service_context():
        rejected_row.save()
    response = client.get(reverse("admin:pipeline_pipelinedlq_change", args=[rejected_row.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    # Canonical names with the partner's header beside each; key fields the file lacked are offered.
    rows = [(row.label, row.key, row.in_file) for row in response.context["form"].rows]
    assert rows[:4] == [
        ("first_name", "Owner 1 First Name", True),
        ("property_address", "Address", True),
        ("property_city", "City", True),
        ("property_zip", "Zip", True),
    ]
    assert ("mak", "mak", False) in rows and ("apn", "apn", False) in rows
    assert "not in the file" in body and "Owner 1 First Name" in body
    # What is wrong is next to the field that causes it.
    [(_field, row, problem)] = [entry for entry in response.context["field_rows"] if entry[2]]
    assert row.field == "property_address" and "street address" in problem
    assert 'class="field-property_address has-problem"' in body
    # The raw row, read-only, and no JSON to edit.
    assert "&quot;City&quot;: &quot;San Diego&quot;" in body and "<textarea" not in body.split("dlq-discard-form")[0]
    for button in ('name="_reprocess"', 'name="_next"', 'name="_save"', 'name="_discard"'):
        assert button in body


def test_edit_and_reprocess_creates_the_lead_and_resolves_the_row(client, staff, rejected_row):
    leads_before = count(Lead)
    response = fix_row(
        client, rejected_row, {"phone": FIXED_ROW["phone"], "property_address": FIXED_ROW["property_address"]}
    )
    assert response.status_code == 200
    assert any("reprocessed (lead" in message for message in messages_of(response)), messages_of(response)

    item = reload(rejected_row)
    assert item.status == "resolved" and item.resolution == "reprocessed"
    assert item.resolved_by_id == staff.pk and item.resolved_at is not None
    assert item.payload == FIXED_ROW  # the file's columns, in its order; no key fields added empty
    assert count(Lead) == leads_before + 1
    with service_context():
        lead = Lead.objects.get(pk=item.lead_id)
    assert lead.phone == "+16195550142" and lead.first_name == "Ada"
    with service_context():
        upload = Upload.objects.get(pk=item.upload_id)
    # Moved from rejected to created, and counted as recovered: the invariant holds.
    assert (upload.rows_rejected, upload.leads_created, upload.rows_recovered) == (0, 3, 1)
    assert (
        upload.rows_total
        == upload.leads_created + upload.leads_merged + upload.duplicates_in_file + upload.rows_rejected
    )
    assert count(PipelineEvent, event_type="dlq_reprocessed") == 1

    # Again (the bulk action, and the page): nothing changes.
    post_action(client, "reprocess_selected", [item], follow=True)
    assert count(Lead) == leads_before + 1
    assert count(PipelineEvent, event_type="dlq_reprocessed") == 1
    assert reload(item).resolved_at == item.resolved_at
    url = reverse("admin:pipeline_pipelinedlq_change", args=[item.pk])
    data = {f"row-cell_{index}": "tampered" for index in range(10)}
    response = client.post(url, {**data, "_reprocess": "1"}, follow=True)
    assert response.status_code == 200
    assert reload(item).payload == item.payload  # a closed row is read-only
    assert count(Lead) == leads_before + 1
    with service_context():
        assert Upload.objects.get(pk=item.upload_id).rows_recovered == 1


def test_reprocess_merges_into_an_existing_lead(client, staff, rejected_row):
    existing = LeadFactory(mak="MAK-ADA-1815", phone=None, email=None)
    leads_before = count(Lead)
    fix_row(client, rejected_row, {"mak": "MAK-ADA-1815", "phone": "6195550199"})
    item = reload(rejected_row)
    assert item.status == "resolved" and item.lead_id == existing.pk
    assert item.payload["mak"] == "MAK-ADA-1815"  # a key field the file lacked, added under its name
    assert count(Lead) == leads_before
    assert reload(existing).phone == "+16195550199"  # the merge fills what the lead lacked
    with service_context():
        upload = Upload.objects.get(pk=item.upload_id)
    assert (upload.rows_rejected, upload.leads_merged, upload.rows_recovered) == (0, 1, 1)


def test_a_row_still_without_a_key_says_so_next_to_the_field(client, staff, rejected_row):
    response = fix_row(client, rejected_row, {"first_name": "Augusta"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "street address" in " ".join(form.errors[form.name_of("property_address")])
    item = reload(rejected_row)
    assert item.status == "open" and item.payload == BROKEN_ROW and item.attempts == 0  # nothing sent


def test_a_bad_state_or_zip_is_an_error_next_to_its_field(client, staff, rejected_row):
    response = fix_row(
        client, rejected_row, {"property_address": "1 Main St", "property_state": "Narnia", "property_zip": "921"}
    )
    form = response.context["form"]
    assert "not a US state" in " ".join(form.errors[form.name_of("property_state")])
    assert "not a ZIP code" in " ".join(form.errors[form.name_of("property_zip")])
    assert reload(rejected_row).payload == BROKEN_ROW


def test_save_only_keeps_the_edit_open(client, staff, rejected_row):
    fix_row(client, rejected_row, {"property_address": "1 Main St"}, "_save")
    item = reload(rejected_row)
    assert item.status == "open" and item.payload["property_address"] == "1 Main St" and item.attempts == 0


def test_save_and_next_open_item(client, staff, rejected_row):
    closed = PipelineDLQFactory(
        upload=rejected_row.upload, line_number=5, payload=dict(BROKEN_ROW), status="discarded"
    )
    following = PipelineDLQFactory(upload=rejected_row.upload, line_number=6, payload=dict(BROKEN_ROW))
    response = fix_row(client, rejected_row, {"property_address": "1 Main St"}, "_next", follow=False)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:pipeline_pipelinedlq_change", args=[following.pk])
    assert reload(rejected_row).status == "resolved" and reload(closed).status == "discarded"
    # The last open item: back to the list.
    response = fix_row(client, following, {"property_address": "2 Main St"}, "_next", follow=False)
    assert response["Location"] == reverse("admin:pipeline_pipelinedlq_changelist")


def test_discard_from_the_page_needs_a_note_and_opens_the_next(client, staff, rejected_row):
    following = PipelineDLQFactory(upload=rejected_row.upload, line_number=6)
    url = reverse("admin:pipeline_pipelinedlq_change", args=[rejected_row.pk])
    response = client.post(url, {"discard-note": " ", "_discard": "1"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert reload(rejected_row).status == "open"
    response = client.post(url, {"discard-note": "vendor test row", "_discard": "1"})
    assert response["Location"] == reverse("admin:pipeline_pipelinedlq_change", args=[following.pk])
    item = reload(rejected_row)
    assert (item.status, item.resolution_note, item.resolved_by_id) == ("discarded", "vendor test row", staff.pk)


def test_bulk_set_a_field_then_reprocess(client, staff, rejected_row):
    upload = rejected_row.upload
    with service_context():  # the upload rejected these rows too
        Upload.objects.filter(pk=upload.pk).update(rows_total=8, rows_rejected=6)
    no_state = {"Address": "", "City": "Sacramento", "State": "", "Owner 1 First Name": "Pat"}
    items = [
        PipelineDLQFactory(upload=upload, line_number=10 + n, payload={**no_state, "Address": f"{n} Capitol Mall"})
        for n in range(1, 4)
    ]
    webhook = PipelineDLQFactory(upload=None, source="webhook", payload={"event": "x"})
    response = post_action(client, "set_field_selected", [*items, webhook])
    assert response.status_code == 200 and 'id="set-field-form"' in response.content.decode()
    response = post_action(
        client, "set_field_selected", [*items, webhook], apply="1", field="property_state", value="CA", follow=True
    )
    assert any("Set property_state on 3 row(s); skipped 1" in message for message in messages_of(response)), (
        messages_of(response)
    )
    for item in items:
        payload = reload(item).payload
        assert payload["State"] == "CA" and "property_state" not in payload  # under the partner's header
    assert reload(webhook).payload == {"event": "x"}
    leads_before = count(Lead)
    post_action(client, "reprocess_selected", items, follow=True)
    assert {reload(item).status for item in items} == {"resolved"}
    assert count(Lead) == leads_before + 3
    # In one go: set and reprocess.
    more = [
        PipelineDLQFactory(upload=upload, line_number=20 + n, payload={**no_state, "Address": f"{n} K St"})
        for n in range(2)
    ]
    response = post_action(
        client, "set_field_selected", more, apply="1", field="property_state", value="CA", _reprocess="1", follow=True
    )
    assert any("Reprocessed 2 item(s); 0 failed" in message for message in messages_of(response)), messages_of(
        response
    )
    with service_context():
        assert Upload.objects.get(pk=upload.pk).rows_recovered == 5


def test_the_list_opens_on_open_items_with_a_preview_the_partner_and_reasons(client, staff, rejected_row):
    PipelineDLQFactory(upload=rejected_row.upload, status="resolved", reason="no dedupe key: old")
    PipelineDLQFactory(upload=None, source="webhook", reason="unknown lead for reply_received")
    PipelineDLQFactory(upload=None, source="webhook", reason="unknown lead for reply_received")
    response = client.get(CHANGELIST)
    listed = {item.pk for item in response.context["cl"].result_list}
    assert rejected_row.pk in listed and len(listed) == 3  # open items only
    body = response.content.decode()
    assert "Ada Lovelace · San Diego CA 92101 · no MAK/APN" in body
    assert rejected_row.upload.partner.name in body
    reasons = dict(response.context["cl"].filter_specs[1].lookup_choices)
    assert "2 · unknown lead for reply_received" in reasons.values()
    key = next(key for key, label in reasons.items() if "unknown lead" in label)
    assert len(client.get(CHANGELIST + f"?reason={key}").context["cl"].result_list) == 2
    assert len(client.get(CHANGELIST + "?state=all").context["cl"].result_list) == 4
    assert len(client.get(CHANGELIST + "?state=resolved").context["cl"].result_list) == 1


def test_bulk_reprocess(client, staff, rejected_row):
    second = PipelineDLQFactory(
        upload=rejected_row.upload,
        line_number=5,
        payload={**FIXED_ROW, "property_address": "12 Difference Engine Rd"},
        reason="no dedupe key",
    )
    with service_context():
        PipelineDLQ.objects.filter(pk=rejected_row.pk).update(payload=FIXED_ROW)
    response = post_action(client, "reprocess_selected", [rejected_row, second], follow=True)
    assert any("Reprocessed 2 item(s); 0 failed" in message for message in messages_of(response)), messages_of(
        response
    )
    assert {reload(rejected_row).status, reload(second).status} == {"resolved"}


def test_discard_needs_a_note(client, staff, rejected_row):
    # Choosing the action shows the confirmation form; nothing happens yet.
    response = post_action(client, "discard_selected", [rejected_row])
    assert response.status_code == 200 and 'id="discard-form"' in response.content.decode()
    assert reload(rejected_row).status == "open"
    # Applying it without a note is refused.
    response = post_action(client, "discard_selected", [rejected_row], apply="1", note="   ")
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert reload(rejected_row).status == "open"
    # With a note: discarded, and who/when/why are kept.
    post_action(client, "discard_selected", [rejected_row], apply="1", note="test data from the vendor's sandbox")
    item = reload(rejected_row)
    assert item.status == "discarded" and item.resolution == "discarded"
    assert item.resolution_note == "test data from the vendor's sandbox"
    assert item.resolved_by_id == staff.pk and item.resolved_at is not None
    assert count(PipelineEvent, event_type="dlq_discarded") == 1
    # The list shows the resolution.
    listing = client.get(CHANGELIST + "?status__exact=discarded").content.decode()
    assert f"discarded by {staff.get_username()}" in listing


def test_discard_service_rules(staff, rejected_row):
    with service_context(), pytest.raises(DLQError, match="note"):
        dlq_discard(item=rejected_row, note="", user=staff)
    with service_context():
        dlq_discard(item=rejected_row, note="duplicate of #1", user=staff)
    with service_context(), pytest.raises(DLQError, match="already discarded"):
        dlq_discard(item=rejected_row, note="again", user=staff)


def test_csv_export(client, staff, rejected_row):
    evil = PipelineDLQFactory(upload=None, reason='=HYPERLINK("http://x")', payload={"a": 1})
    response = post_action(client, "export_csv", [rejected_row, evil])
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(row["id"]) for row in rows] == sorted([rejected_row.pk, evil.pk])
    first = rows[0] if int(rows[0]["id"]) == rejected_row.pk else rows[1]
    assert first["upload_id"] == str(rejected_row.upload_id) and first["line_number"] == "4"
    assert json.loads(first["payload"]) == BROKEN_ROW
    assert any(row["reason"].startswith("'=") for row in rows)  # no formula injection


def test_no_add_and_no_delete(client, staff, rejected_row):
    assert client.get(CHANGELIST + "add/").status_code == 403
    assert client.get(reverse("admin:pipeline_pipelinedlq_delete", args=[rejected_row.pk])).status_code == 403


def test_events_drilldown_for_an_upload(client, staff, rejected_row):
    PipelineEventFactory(event_type="dedupe_success", upload_id=rejected_row.upload_id)
    PipelineEventFactory(event_type="dedupe_success", upload_id=UploadFactory().pk)
    response = client.get(f"/admin/equity_connect/pipelineevent/?upload_id__exact={rejected_row.upload_id}")
    assert response.status_code == 200
    assert [event.upload_id for event in response.context["cl"].result_list] == [rejected_row.upload_id]


def test_run_now_buttons(client, staff):
    response = client.get("/admin/pipeline/jobheartbeat/")
    body = response.content.decode()
    for job in ("mv_refresh", "feeder_dry_run", "alerts"):
        assert f"/admin/pipeline/jobheartbeat/run/{job}/" in body
    assert client.get("/admin/pipeline/jobheartbeat/run/alerts/").status_code == 405  # POST only

    response = client.post("/admin/pipeline/jobheartbeat/run/alerts/", follow=True)
    assert any("Alert rules evaluated" in message for message in messages_of(response))
    response = client.post("/admin/pipeline/jobheartbeat/run/mv_refresh/", follow=True)
    assert any(message.startswith("MV refresh: ") for message in messages_of(response)), messages_of(response)
    assert count(PipelineEvent, event_type="mv_refreshed", status="success") == 1
    response = client.post("/admin/pipeline/alert/run/alerts/", follow=True)
    assert response.status_code == 200


def test_feeder_dry_run_now(client, staff):
    LeadFactory(contactable=True)
    response = client.post("/admin/pipeline/jobheartbeat/run/feeder_dry_run/", follow=True)
    assert any(message.startswith("Feeder dry run") for message in messages_of(response)), messages_of(response)
    with service_context():
        assert Lead.objects.filter(added_to_campaign_at__isnull=False).count() == 0  # a dry run changes nothing
        assert Upload.objects.count() == 0


# --- personal data: ops give the reason once per session (leads/masking.py) --------------------------------------

EMAIL, PHONE = "jane.doe@example.net", "+14155550123"
SECRETS = ("jane.doe@example.net", "4155550123", "jane.doe")


@pytest.fixture
def ops(client):
    user = RoleUserFactory(role="ops")
    client.force_login(user)
    return user


def records(**filters) -> list[LeadAccessRecord]:
    with service_context():
        return list(LeadAccessRecord.objects.filter(**filters).order_by("id"))


def leaked(body: str) -> list[str]:
    return [secret for secret in SECRETS if secret in body]


ROW = {"first_name": "Jane", "email": EMAIL, "phone": PHONE, "property_address": ""}


def test_dlq_payloads_are_hidden_until_the_reason_is_given_once_per_session(client, ops):
    item = PipelineDLQFactory(payload=ROW, reason=f"Instantly sent 'reply' for {EMAIL}, but no lead has it")
    change = reverse("admin:pipeline_pipelinedlq_change", args=[item.pk])
    changelist = reverse("admin:pipeline_pipelinedlq_changelist")
    assert leaked(client.get(changelist).content.decode()) == []
    page = client.get(change).content.decode()
    assert leaked(page) == [] and "j•••@e•••.net" in page
    reveal = reverse("admin:pipeline_pipelinedlq_reveal_session")
    assert f"{reveal}?next=" in page
    assert client.post(reveal, {"reason": "triage", "next": change}).status_code == 200  # too short: asked again
    answer = client.post(reveal, {"reason": "Triage of today's rejected rows", "next": change})
    assert answer.status_code == 302 and answer["Location"] == change
    assert EMAIL in client.get(change).content.decode() and EMAIL in client.get(changelist).content.decode()
    client.get(change)
    [record] = records(action="reveal")  # once per session, not per page
    assert (record.via, record.lead_id, record.detail["scope"]) == ("admin.dlq", None, "session")
    client.logout()
    client.force_login(ops)
    assert leaked(client.get(change).content.decode()) == []  # a new session asks again


def test_the_reveal_goes_back_only_to_our_own_pages(client, ops):
    answer = client.post(
        reverse("admin:pipeline_pipelinedlq_reveal_session"),
        {"reason": "Triage of today's rejected rows", "next": "https://evil.example/"},
    )
    assert answer.status_code == 302 and answer["Location"] == reverse("admin:pipeline_pipelinedlq_changelist")


def test_the_dlq_export_is_masked_for_ops_and_recorded(client, ops):
    items = [PipelineDLQFactory(payload=ROW, reason=f"bad row of {EMAIL}") for _ in range(2)]
    response = client.post(
        reverse("admin:pipeline_pipelinedlq_changelist") + "?status__exact=open",
        {"action": "export_csv", ACTION_CHECKBOX_NAME: [item.pk for item in items]},
    )
    body = response.content.decode()
    assert response.status_code == 200 and leaked(body) == []
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2 and all("personal data" in row["payload"] for row in rows)
    [record] = records(action="export")
    assert (record.via, record.row_count, record.filters["status__exact"]) == ("admin.dlq_export", 2, "open")


def test_an_admin_exports_dlq_payloads_in_full(client):
    client.force_login(RoleUserFactory(role="admin"))
    item = PipelineDLQFactory(payload=ROW)
    response = client.post(
        reverse("admin:pipeline_pipelinedlq_changelist"), {"action": "export_csv", ACTION_CHECKBOX_NAME: [item.pk]}
    )
    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert json.loads(row["payload"]) == ROW


def test_the_discard_page_masks_the_reasons(client, ops):
    item = PipelineDLQFactory(payload=ROW, reason=f"bad row of {EMAIL}")
    response = client.post(
        reverse("admin:pipeline_pipelinedlq_changelist"),
        {"action": "discard_selected", ACTION_CHECKBOX_NAME: [item.pk]},
    )
    assert response.status_code == 200 and leaked(response.content.decode()) == []
