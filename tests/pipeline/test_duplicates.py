"""Possible duplicates, decided in the admin through the real middleware as staff: the list (open pairs by
default, filters, search, a bounded number of queries), the side-by-side page and its three decisions, the
bulk actions, staff only, CSRF, no editing; a pair kept apart is never proposed again by an upload; and the
tombstone a merge leaves behind, in the broker portal (sent on to the survivor, never to another broker's
lead, never listed or exported) and in the lead admin."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.duplicates.services import possible_duplicate_merge
from pipeline.models import PossibleDuplicate
from tests.factories import (
    BrokerFactory,
    ConsentTokenFactory,
    LeadConsentAuditFactory,
    LeadFactory,
    PartnerFactory,
    PossibleDuplicateFactory,
    StaffUserFactory,
    UploadFactory,
    UserFactory,
)
from tests.pipeline.ingest_helpers import csv_of, ingest

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/pipeline/possibleduplicate/"


def change_url(pair) -> str:
    return reverse("admin:pipeline_possibleduplicate_change", args=[pair.pk])


def portal_url(lead) -> str:
    return reverse("portal:lead_detail", kwargs={"lead_id": lead.pk})


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def reload(obj):
    with service_context():
        return type(obj).objects.get(pk=obj.pk)


def events(event_type: str, lead) -> int:
    with service_context():
        return PipelineEvent.objects.filter(event_type=event_type, lead_id=lead.pk).count()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def listed(client, query: str = "") -> set[int]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200, query
    return {pair.pk for pair in response.context["cl"].result_list}


def button_value(body: str, button_id: str) -> str:
    return re.search(rf'value="([^"]+)"[^>]*id="{button_id}"', body).group(1)


@pytest.fixture
def staff(client):
    user = StaffUserFactory()
    client.force_login(user)
    return user


@pytest.fixture
def ann_and_bo():
    """One address, two parcels: Ann (older, broker A, gaps in her record) and Bo (newer, broker B, with a
    consent, a consent record and link, and an Instantly sequence)."""
    broker_a, broker_b = BrokerFactory(name="Alice Broker"), BrokerFactory(name="Bob Broker")
    ann = LeadFactory(
        created_at=days_ago(3),
        assigned_broker=broker_a,
        first_name="Ann",
        last_name="Lee",
        email="ann@x.com",
        phone="+15595550101",
        property_address="12 Oak St",
        apn="123-45",
        mak="MAK-ANN",
        property_type=None,
        age=None,
        email_verified=True,
    )
    bo = LeadFactory(
        created_at=days_ago(1),
        assigned_broker=broker_b,
        first_name="Bo",
        last_name="Kim",
        email="bo@x.com",
        phone="+15595550202",
        property_address="12 Oak St",
        apn="678-90",
        mak="MAK-BO",
        property_type="Condo",
        age=81,
        owner2_name="Cy Kim",
        phone_verified=True,
        consent=True,
        consented_at=days_ago(1),
        consent_method="form",
        instantly_lead_id="inst-bo",
    )
    audit = LeadConsentAuditFactory(lead=bo, ip_address="198.51.100.77", channels=["email", "sms"])
    token = ConsentTokenFactory(lead=bo)
    pair = PossibleDuplicateFactory(lead_a=ann, lead_b=bo, reason=f"same address as lead {bo.pk}, APN 123-45 ≠ 678-90")
    return SimpleNamespace(ann=ann, bo=bo, pair=pair, audit=audit, token=token, broker_a=broker_a, broker_b=broker_b)


# --- the change page ----------------------------------------------------------------------------------------


def test_the_change_page_shows_both_leads_side_by_side_with_the_differences(client, staff, ann_and_bo):
    d = ann_and_bo
    response = client.get(change_url(d.pair))
    assert response.status_code == 200
    rows = {row["label"]: row for row in response.context["rows"]}
    assert (rows["APN"]["left"], rows["APN"]["right"], rows["APN"]["differs"]) == ("123-45", "678-90", True)
    assert (rows["property city"]["differs"], rows["name"]["left"], rows["name"]["right"]) == (
        False,
        "Ann Lee",
        "Bo Kim",
    )
    assert rows["consent links"]["right"] == 1 and rows["consent links"]["differs"]
    body = response.content.decode()
    assert body.count('class="pd-differs"') >= 10 and "same address" in body
    assert button_value(body, "merge-left") == str(d.ann.pk)  # the older lead is on the left
    assert button_value(body, "merge-right") == str(d.bo.pk)
    assert 'id="keep-apart"' in body and 'name="csrfmiddlewaretoken"' in body
    assert reverse("admin:leads_lead_change", args=[d.ann.pk]) in body


def test_merge_into_the_left_lead(client, staff, ann_and_bo, django_capture_on_commit_callbacks):
    d = ann_and_bo
    body = client.get(change_url(d.pair)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            change_url(d.pair), {"_merge_into": button_value(body, "merge-left"), "note": "one house"}, follow=True
        )
    assert response.status_code == 200
    assert f"lead {d.bo.pk} was merged into lead {d.ann.pk}." in " ".join(messages_of(response))

    ann, bo, pair = reload(d.ann), reload(d.bo), reload(d.pair)
    # The survivor keeps its broker, contact data and keys, and fills what it lacked.
    assert (ann.assigned_broker_id, ann.email, ann.phone) == (d.broker_a.pk, "ann@x.com", "+15595550101")
    assert (ann.apn, ann.mak, ann.addr_hash, ann.merged_into_id) == ("123-45", "MAK-ANN", d.ann.addr_hash, None)
    assert (ann.property_type, ann.age, ann.owner2_name) == ("Condo", 81, "Cy Kim")
    assert ann.email_verified
    assert not ann.phone_verified  # Bo's phone was verified, not Ann's: a verification follows its phone
    assert ann.lead_score == ann.score_breakdown["total"]  # re-scored with what it gained
    # The merged-away lead is a tombstone: it points to the survivor and keeps no keys or contact data.
    assert bo.merged_into_id == ann.pk
    assert (bo.mak, bo.apn, bo.addr_hash, bo.email, bo.phone) == (None, None, None, None, None)
    assert (bo.consent, bo.instantly_lead_id) == (False, None)
    # Its consent links now belong to the survivor; its consent records stay where they were given (nobody may
    # change them), and the survivor's history shows them (below).
    assert reload(d.audit).lead_id == bo.pk and reload(d.token).lead_id == ann.pk
    # Both timelines, the pair, and the tombstone's Instantly sequence stopped after commit.
    assert (events("lead_merged", ann), events("lead_merged_away", bo)) == (1, 1)
    assert (pair.status, pair.survivor_id, pair.decided_by_id, pair.note) == ("merged", ann.pk, staff.pk, "one house")
    (task,) = [queued.task for queued in OrmQ.objects.all() if queued.task["func"].endswith("sequences_stop")]
    assert [list(item) for item in task["args"][0]] == [[str(bo.pk), "inst-bo"]]

    # Decided: the page shows the decision, read-only.
    body = client.get(change_url(d.pair)).content.decode()
    assert "Decided: merged" in body and "one house" in body
    assert 'name="_merge_into"' not in body and 'name="_keep_apart"' not in body

    # A second decision on the same pair: an error message, nothing changes.
    response = client.post(change_url(d.pair), {"_merge_into": str(d.bo.pk)}, follow=True)
    assert response.status_code == 200
    assert any("already decided" in message for message in messages_of(response)), messages_of(response)
    response = client.post(change_url(d.pair), {"_keep_apart": "1"}, follow=True)
    assert any("already decided" in message for message in messages_of(response)), messages_of(response)
    assert reload(d.ann).updated_at == ann.updated_at and reload(d.ann).merged_into_id is None
    assert reload(d.bo).merged_into_id == ann.pk and reload(d.pair).status == "merged"
    assert (events("lead_merged", ann), events("lead_merged_away", bo), events("lead_kept_apart", ann)) == (1, 1, 0)


def test_the_survivors_broker_sees_the_consent_history_of_the_lead_merged_into_it(client, staff, ann_and_bo):
    d = ann_and_bo
    body = client.get(change_url(d.pair)).content.decode()
    client.post(change_url(d.pair), {"_merge_into": button_value(body, "merge-left")})
    client.force_login(d.broker_a.user)  # Ann's broker; Bo (the tombstone) is another broker's lead
    page = client.get(portal_url(d.ann)).content.decode()
    history = page[page.index("<h3>History</h3>") :]
    assert "198.51.100.77" in history and "email, sms" in history
    client.force_login(d.broker_b.user)  # Bo's broker sees neither Ann nor her history
    assert client.get(portal_url(d.ann)).status_code == 404
    assert reload(d.audit).lead_id == d.bo.pk


def test_merge_into_the_right_lead(client, staff, ann_and_bo):
    d = ann_and_bo
    body = client.get(change_url(d.pair)).content.decode()
    client.post(change_url(d.pair), {"_merge_into": button_value(body, "merge-right")})
    ann, bo = reload(d.ann), reload(d.bo)
    assert ann.merged_into_id == bo.pk and bo.merged_into_id is None
    assert (bo.assigned_broker_id, bo.email, bo.apn, bo.consent) == (d.broker_b.pk, "bo@x.com", "678-90", True)
    assert (ann.email, ann.apn, ann.mak) == (None, None, None)
    assert reload(d.pair).survivor_id == bo.pk


def test_a_lead_outside_the_pair_is_refused_with_a_message(client, staff, ann_and_bo):
    stranger = LeadFactory()
    response = client.post(change_url(ann_and_bo.pair), {"_merge_into": str(stranger.pk)}, follow=True)
    assert response.status_code == 200
    assert any("must be one of the pair" in message for message in messages_of(response))
    assert reload(ann_and_bo.pair).status == "open" and reload(ann_and_bo.bo).merged_into_id is None


def test_keep_apart(client, staff, ann_and_bo):
    d = ann_and_bo
    response = client.post(change_url(d.pair), {"_keep_apart": "1", "note": "two parcels"}, follow=True)
    assert any("kept apart" in message for message in messages_of(response)), messages_of(response)
    pair, ann, bo = reload(d.pair), reload(d.ann), reload(d.bo)
    assert (pair.status, pair.decided_by_id, pair.note, pair.survivor_id) == (
        "kept_apart",
        staff.pk,
        "two parcels",
        None,
    )
    assert (ann.merged_into_id, bo.merged_into_id, bo.email, bo.apn) == (None, None, "bo@x.com", "678-90")
    assert (events("lead_kept_apart", ann), events("lead_kept_apart", bo), events("lead_merged", ann)) == (1, 1, 0)
    body = client.get(change_url(d.pair)).content.decode()
    assert "Decided: kept apart" in body and 'name="_merge_into"' not in body


def test_a_pair_kept_apart_is_not_proposed_again_when_its_rows_come_again(client, staff, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    place = {"property_city": "Fresno", "property_state": "CA", "property_zip": "93650"}
    rows = [
        {"apn": "123-45", "property_address": "12 Oak St", **place, "first_name": "Ann", "email": "ann@x.com"},
        {"apn": "678-90", "property_address": "12 OAK STREET", **place, "first_name": "Bo", "email": "bo@x.com"},
    ]
    first = ingest(csv_of(rows))
    assert (first.leads_created, first.possible_duplicates) == (2, 1)
    with service_context():
        (pair,) = PossibleDuplicate.objects.all()
    client.post(change_url(pair), {"_keep_apart": "1"})
    assert reload(pair).status == "kept_apart"

    second = ingest(csv_of(rows[::-1]))  # the same two leads' rows again (other bytes: not a replay)
    assert (second.leads_merged, second.leads_created, second.possible_duplicates) == (2, 0, 0)
    with service_context():
        assert list(PossibleDuplicate.objects.values_list("pk", "status")) == [(pair.pk, "kept_apart")]


# --- the list and its bulk actions --------------------------------------------------------------------------


def test_the_list_opens_on_the_open_pairs_and_filters_and_searches(client, staff):
    partner = PartnerFactory(name="PropStream Exports")
    upload = UploadFactory(partner=partner)
    by_address = PossibleDuplicateFactory(upload=upload, lead_a=LeadFactory(first_name="Zora", apn="777-01"))
    by_apn = PossibleDuplicateFactory(key="apn", reason="same APN 555-55 as lead x")
    merged = PossibleDuplicateFactory(status="merged")
    kept = PossibleDuplicateFactory(status="kept_apart")

    assert listed(client) == {by_address.pk, by_apn.pk}  # open by default
    assert listed(client, "?status=all") == {by_address.pk, by_apn.pk, merged.pk, kept.pk}
    assert listed(client, "?status=kept_apart") == {kept.pk}
    assert listed(client, "?status=merged") == {merged.pk}
    assert listed(client, "?key=apn") == {by_apn.pk}
    assert listed(client, f"?upload__partner__id__exact={partner.pk}") == {by_address.pk}
    assert listed(client, f"?upload__id__exact={upload.pk}") == {by_address.pk}
    assert listed(client, f"?q={by_address.lead_b_id}") == {by_address.pk}
    assert listed(client, "?q=777-01") == {by_address.pk}
    assert listed(client, "?q=555-55") == {by_apn.pk}
    assert listed(client, f"?status=all&q={kept.lead_a_id}") == {kept.pk}

    body = client.get(CHANGELIST).content.decode()
    assert 'href="?status=all"' in body  # the default can be cleared
    facets = client.get(CHANGELIST + "?_facets=True").content.decode()
    assert "Open (2)" in facets and "Kept apart (1)" in facets and "All (4)" in facets
    for text in ("Zora", "777-01", "PropStream Exports", "same address", "same APN", "Left lead (older)"):
        assert text in body, text
    assert reverse("admin:leads_lead_change", args=[by_address.lead_a_id]) in body
    assert reverse("admin:pipeline_upload_change", args=[upload.pk]) in body


def test_the_list_of_50_pairs_takes_a_bounded_number_of_queries(client, staff, django_assert_max_num_queries):
    brokers = BrokerFactory.create_batch(3)
    uploads = [UploadFactory(partner=PartnerFactory()) for _ in range(3)]
    for i in range(50):
        lead_a, lead_b = (LeadFactory(assigned_broker=brokers[(i + side) % 3]) for side in (0, 1))
        PossibleDuplicateFactory(lead_a=lead_a, lead_b=lead_b, upload=uploads[i % 3])
    with django_assert_max_num_queries(20):
        response = client.get(CHANGELIST)
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 50


def test_bulk_merge_each_pair_into_its_older_lead(client, staff):
    broker = BrokerFactory()
    a, b, g = (
        LeadFactory(created_at=days_ago(n), assigned_broker=broker, property_address="5 Elm St") for n in (9, 8, 7)
    )
    c, d = LeadFactory(created_at=days_ago(6)), LeadFactory(created_at=days_ago(5))
    ab = PossibleDuplicateFactory(lead_a=a, lead_b=b)
    bg = PossibleDuplicateFactory(lead_a=b, lead_b=g)  # after a ← b it is about a and g
    dc = PossibleDuplicateFactory(lead_a=d, lead_b=c)
    kept = PossibleDuplicateFactory(status="kept_apart")
    data = {"action": "merge_into_older", ACTION_CHECKBOX_NAME: [ab.pk, bg.pk, dc.pk, kept.pk]}
    response = client.post(CHANGELIST + "?status=all", data, follow=True)
    (message,) = messages_of(response)
    assert message.startswith("Merged 3 pair(s) into their older lead. Skipped 1: ")
    assert f"#{kept.pk} was already decided" in message
    assert [reload(lead).merged_into_id for lead in (a, b, g, c, d)] == [None, a.pk, a.pk, None, c.pk]
    assert [(reload(p).status, reload(p).survivor_id) for p in (ab, bg, dc)] == [("merged", a.pk)] * 2 + [
        ("merged", c.pk)
    ]
    assert reload(kept).status == "kept_apart" and events("lead_merged", a) == 2


def test_bulk_keep_apart(client, staff):
    first, second = PossibleDuplicateFactory(), PossibleDuplicateFactory()
    merged = PossibleDuplicateFactory(status="merged")
    data = {"action": "keep_apart_selected", ACTION_CHECKBOX_NAME: [first.pk, second.pk, merged.pk]}
    response = client.post(CHANGELIST + "?status=all", data, follow=True)
    (message,) = messages_of(response)
    assert message.startswith("Kept 2 pair(s) apart. Skipped 1: ") and f"#{merged.pk} was already decided" in message
    assert [reload(pair).status for pair in (first, second, merged)] == ["kept_apart", "kept_apart", "merged"]
    assert reload(first).decided_by_id == staff.pk
    assert all(events("lead_kept_apart", lead) == 1 for lead in (first.lead_a, first.lead_b, second.lead_b))


# --- who may, and what may not be done ----------------------------------------------------------------------


def test_staff_only(client, ann_and_bo):
    d = ann_and_bo
    client.force_login(d.broker_a.user)  # a broker: the admin's login page, never a 500
    for url in (CHANGELIST, change_url(d.pair)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    response = client.post(change_url(d.pair), {"_merge_into": str(d.ann.pk)})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert reload(d.pair).status == "open" and reload(d.bo).merged_into_id is None

    client.force_login(UserFactory(is_staff=True))  # staff without the permission: 403
    assert client.get(CHANGELIST).status_code == 403
    assert client.post(change_url(d.pair), {"_keep_apart": "1"}).status_code == 403

    viewer = UserFactory(is_staff=True)  # allowed to look, not to decide
    viewer.user_permissions.add(Permission.objects.get(codename="view_possibleduplicate"))
    client.force_login(viewer)
    body = client.get(change_url(d.pair)).content.decode()
    assert "Ann Lee" in body and 'name="_merge_into"' not in body
    assert client.post(change_url(d.pair), {"_keep_apart": "1"}).status_code == 403
    assert reload(d.pair).status == "open"


def test_decisions_need_the_csrf_token(ann_and_bo):
    pair = ann_and_bo.pair
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(StaffUserFactory())
    assert browser.post(change_url(pair), {"_keep_apart": "1"}).status_code == 403
    assert reload(pair).status == "open"
    body = browser.get(change_url(pair)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    assert browser.post(change_url(pair), {"_keep_apart": "1", "csrfmiddlewaretoken": token}).status_code == 302
    assert reload(pair).status == "kept_apart"


def test_a_pair_is_never_added_edited_or_deleted_by_hand(client, staff, ann_and_bo):
    pair = ann_and_bo.pair
    edit = {"lead_a": str(pair.lead_b_id), "status": "merged", "reason": "edited", "key": "apn", "note": "x"}
    response = client.post(change_url(pair), edit, follow=True)
    assert any("Choose" in message for message in messages_of(response)), messages_of(response)
    after = reload(pair)
    assert (after.lead_a_id, after.status, after.reason, after.key) == (
        pair.lead_a_id,
        "open",
        pair.reason,
        "addr_hash",
    )
    assert client.get(CHANGELIST + "add/").status_code == 403
    assert client.get(reverse("admin:pipeline_possibleduplicate_delete", args=[pair.pk])).status_code == 403
    actions = client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert {name for name, _ in actions} == {"", "merge_into_older", "keep_apart_selected"}


# --- tombstones -------------------------------------------------------------------------------------------


def _merged(*, survivor_broker, tombstone_broker):
    survivor = LeadFactory(assigned_broker=survivor_broker, created_at=days_ago(2), first_name="Sue", last_name="Vive")
    twin = LeadFactory(assigned_broker=tombstone_broker, first_name="Twin", last_name="Tomb")
    pair = PossibleDuplicateFactory(lead_a=survivor, lead_b=twin)
    with service_context():
        possible_duplicate_merge(pair=pair, survivor_id=survivor.pk)
    return survivor, twin


def test_the_portal_sends_a_tombstone_to_its_survivor_and_never_lists_or_exports_it(client):
    broker = BrokerFactory()
    survivor, twin = _merged(survivor_broker=broker, tombstone_broker=broker)
    client.force_login(broker.user)
    response = client.get(portal_url(twin))
    assert response.status_code == 302 and response["Location"] == portal_url(survivor)
    response = client.get(portal_url(twin), follow=True)
    assert response.status_code == 200 and "merged into this one" in " ".join(messages_of(response))

    for params in ({}, {"q": "Tomb"}, {"q": "Twin Tomb"}):
        page = client.get(reverse("portal:lead_list"), params)
        assert str(twin.pk) not in {str(lead.pk) for lead in page.context["page"].leads}, params
        export = b"".join(client.get(reverse("portal:lead_export"), params).streaming_content).decode()
        assert str(twin.pk) not in {row["id"] for row in csv.DictReader(io.StringIO(export))}, params
    page = client.get(reverse("portal:lead_list"))
    assert [lead.pk for lead in page.context["page"].leads] == [survivor.pk]


def test_a_tombstone_merged_into_another_brokers_lead_is_a_404(client):
    mine, theirs = BrokerFactory(), BrokerFactory()
    survivor, twin = _merged(survivor_broker=theirs, tombstone_broker=mine)
    client.force_login(mine.user)
    response = client.get(portal_url(twin))
    assert response.status_code == 404 and str(survivor.pk) not in response.content.decode()
    client.force_login(theirs.user)  # the tombstone is not theirs either
    assert client.get(portal_url(twin)).status_code == 404


def test_the_lead_admin_links_a_tombstone_to_its_survivor_and_filters_tombstones(client, staff):
    survivor, twin = _merged(survivor_broker=BrokerFactory(), tombstone_broker=BrokerFactory())
    body = client.get(reverse("admin:leads_lead_change", args=[twin.pk])).content.decode()
    link = re.search(r'<a href="([^"]+)" id="merged-into-link">', body)
    assert link and link.group(1) == reverse("admin:leads_lead_change", args=[survivor.pk])
    assert (
        'id="merged-into-link"'
        not in client.get(reverse("admin:leads_lead_change", args=[survivor.pk])).content.decode()
    )

    def leads(query):
        return {lead.pk for lead in client.get("/admin/leads/lead/" + query).context["cl"].result_list}

    assert leads("?tombstone=yes") == {twin.pk}
    assert twin.pk not in leads("?tombstone=no") and survivor.pk in leads("?tombstone=no")
    with service_context():
        assert Lead.objects.live().filter(pk=twin.pk).count() == 0


# --- personal data: masked for ops, revealed against a reason (leads/masking.py) -----------------------------


def test_ops_see_both_leads_email_and_phone_masked_and_reveal_them_with_a_reason(client):
    from leads.models import LeadAccessRecord
    from tests.factories import RoleUserFactory

    left = LeadFactory(email="left.owner@example.net", phone="+14155550101")
    right = LeadFactory(email="right.owner@example.net", phone="+14155550199")
    pair = PossibleDuplicateFactory(lead_a=left, lead_b=right)
    ops = RoleUserFactory(role="ops")
    client.force_login(ops)
    secrets = ("left.owner@", "right.owner@", "4155550101", "4155550199")
    listing = client.get(reverse("admin:pipeline_possibleduplicate_changelist")).content.decode()
    page = client.get(change_url(pair)).content.decode()
    assert [secret for secret in secrets if secret in listing + page] == []
    assert 'id="merge-left"' in page  # ops still decide the pair
    # whether they differ is still shown: worked out on the real values
    assert re.search(r'class="pd-differs"[^>]*>\s*<th scope="row">email</th>', page)
    reveal = reverse("admin:pipeline_possibleduplicate_reveal", args=[pair.pk])
    assert reveal in page
    shown = client.post(reveal, {"reason": "Deciding whether these are one owner"}).content.decode()
    assert all(secret in shown for secret in secrets)
    with service_context():
        records = list(LeadAccessRecord.objects.filter(user_id=ops.pk).values_list("action", "lead_id"))
    assert sorted(records, key=str) == sorted(
        [("view", left.pk), ("view", right.pk), ("reveal", left.pk), ("reveal", right.pk)], key=str
    )
