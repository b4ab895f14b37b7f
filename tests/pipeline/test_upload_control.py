"""Cancel and re-run an upload (pipeline/ingest/control.py) and the uploads admin that calls them: a cancelled upload
is `failed` "cancelled by <user>" with its replay guard released, a worker that is running it stops and applies
nothing, a re-run applies a failed or stuck upload exactly once and is refused when that would apply a file twice."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from django.urls import reverse

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest.control import UploadControlError, upload_cancel, upload_rerun
from pipeline.ingest.locks import upload_lock_key
from pipeline.ingest.services import upload_ingest
from pipeline.models import IngestReplayGuard, LeadStaging, Upload
from tests.factories import PartnerFactory, RoleUserFactory, StaffUserFactory
from tests.pipeline.ingest_helpers import accept, assert_invariant, csv_of, worker_process
from tests.waiting import wait_for

BODY = csv_of([{"mak": f"K{i}", "property_address": f"{i} Cancel St", "property_zip": "92101"} for i in range(20)])


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def fresh(upload_id) -> Upload:
    with service_context():
        return Upload.objects.get(pk=upload_id)


def events(upload_id, event_type: str) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(upload_id=upload_id, event_type=event_type))


def leads_of(upload_id) -> int:
    with service_context():
        return Lead.objects.filter(source_upload_id=upload_id).count()


def guard_of(upload_id):
    with service_context():
        return IngestReplayGuard.objects.filter(upload_id=upload_id).first()


@pytest.mark.django_db
def test_cancel_a_received_upload_releases_its_guard_and_a_late_worker_does_nothing():
    staff = StaffUserFactory(username="ops-anna")
    partner = PartnerFactory()
    upload = accept(BODY, partner=partner)
    assert guard_of(upload.id) is not None
    upload_cancel(upload_id=upload.id, user=staff)
    cancelled = fresh(upload.id)
    assert (cancelled.status, cancelled.error_message) == ("failed", "cancelled by ops-anna")
    assert cancelled.cancelled_by_id == staff.pk and cancelled.cancelled_at is not None
    assert guard_of(upload.id) is None
    [event] = events(upload.id, "upload_cancelled")
    assert event.event_data["by"] == "ops-anna" and event.event_data["replay_guard_released"] is True
    assert events(upload.id, "upload_failed") == []  # a decision, not a fault: the alert does not count it
    # The task that was already queued runs later: it leaves the cancelled upload alone.
    assert upload_ingest(upload_id=upload.id).status == "failed"
    assert leads_of(upload.id) == 0
    # The partner may send the same bytes again.
    again = accept(BODY, partner=partner)
    assert again.id != upload.id
    # Cancelling twice, or a done upload, is refused.
    with pytest.raises(UploadControlError, match="this one is failed"):
        upload_cancel(upload_id=upload.id, user=staff)
    upload_ingest(upload_id=again.id)
    with pytest.raises(UploadControlError, match="this one is done"):
        upload_cancel(upload_id=again.id, user=staff)


@pytest.mark.django_db
def test_rerun_a_cancelled_upload_applies_it_once_and_refuses_when_the_file_came_again():
    staff = StaffUserFactory()
    partner = PartnerFactory()
    upload = accept(BODY, partner=partner)
    upload_cancel(upload_id=upload.id, user=staff)
    rerun = upload_rerun(upload_id=upload.id, user=staff)
    assert (rerun.status, rerun.error_message, rerun.cancelled_at) == ("received", "", None)
    assert guard_of(upload.id) is not None  # claimed again: the same bytes are refused as a replay meanwhile
    assert len(events(upload.id, "upload_rerun")) == 1
    done = upload_ingest(upload_id=upload.id)
    assert (done.status, done.rows_total, done.leads_created) == ("done", 20, 20)
    assert_invariant(done)
    assert leads_of(upload.id) == 20 and len(events(upload.id, "dedupe_success")) == 1
    assert upload_ingest(upload_id=upload.id).leads_created == 20  # again: nothing more
    with pytest.raises(UploadControlError, match="is done"):
        upload_rerun(upload_id=upload.id, user=staff)

    # Cancelled, then the partner sends the file again: re-running the first would apply it twice.
    other = csv_of([{"mak": "Z1", "property_address": "1 Z St", "property_zip": "92101"}])
    first = accept(other, partner=partner)
    upload_cancel(upload_id=first.id, user=staff)
    second = accept(other, partner=partner)
    with pytest.raises(UploadControlError, match=f"as upload {second.id}"):
        upload_rerun(upload_id=first.id, user=staff)
    assert fresh(first.id).status == "failed"


@pytest.mark.django_db(transaction=True)
def test_rerun_a_stuck_upload_but_not_one_a_worker_holds():
    staff = StaffUserFactory()
    upload = accept(BODY)
    with service_context():
        Upload.objects.filter(pk=upload.id).update(status="processing")  # its worker died
    # A worker holds it: not stuck.
    holder = psycopg.connect(**{**connection.get_connection_params(), "autocommit": True})
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [upload_lock_key(upload.id)])
        with pytest.raises(UploadControlError, match="a worker is processing"):
            upload_rerun(upload_id=upload.id, user=staff)
    finally:
        holder.close()
    rerun = upload_rerun(upload_id=upload.id, user=staff)
    assert rerun.status == "received" and guard_of(upload.id) is not None
    done = upload_ingest(upload_id=upload.id)
    assert (done.status, done.leads_created) == ("done", 20)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_cancel_stops_a_running_worker_which_applies_nothing(tmp_path):
    rows = 60_000
    body = csv_of([{"mak": f"R{i}", "property_address": f"{i} Run Ave", "property_zip": "92101"} for i in range(rows)])
    upload = accept(body)
    worker = worker_process(upload.id, tmp_path, INGEST_STAGE_BATCH_ROWS="2000")
    try:
        wait_for(
            lambda: fresh(upload.id).rows_total >= 4000 or worker.poll() is not None,
            timeout=90,
            message="the worker staged 4000 rows",
        )
        assert worker.poll() is None, worker.stderr.read().decode()
        upload_cancel(upload_id=upload.id, user=StaffUserFactory(username="ops-ben"))
        assert worker.wait(timeout=90) == 0, worker.stderr.read().decode()
    finally:
        if worker.poll() is None:
            worker.kill()
    cancelled = fresh(upload.id)
    assert (cancelled.status, cancelled.error_message) == ("failed", "cancelled by ops-ben")
    assert leads_of(upload.id) == 0 and events(upload.id, "dedupe_success") == []
    with service_context():
        assert not LeadStaging.objects.filter(upload_id=upload.id).exists()
    assert guard_of(upload.id) is None


# --- the admin ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_upload_page_its_status_json_and_the_buttons(client):
    ops = RoleUserFactory(role="ops", username="ops-cleo")
    client.force_login(ops)
    upload = accept(BODY, partner=PartnerFactory(name="PropStream Exports"), filename="march.csv")
    page = client.get(reverse("admin:pipeline_upload_change", args=[upload.id]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "PropStream Exports · march.csv · " in body and 'id="upload-progress"' in body
    assert 'data-running="1"' in body and "ops/upload_progress.js" in body
    for link in ("link-dlq", "link-duplicates", "link-events", "link-leads"):
        assert f'id="{link}"' in body
    assert 'name="_save"' not in body and "deletelink" not in body.replace("deletelink-box", "")
    status = client.get(reverse("admin:pipeline_upload_status", args=[upload.id])).json()
    assert (status["status"], status["running"], status["percent"]) == ("received", True, 0.0)

    assert client.get(reverse("admin:pipeline_upload_cancel", args=[upload.id])).status_code == 405
    response = client.post(reverse("admin:pipeline_upload_cancel", args=[upload.id]), follow=True)
    assert any("cancelled" in str(message) for message in response.context["messages"])
    assert fresh(upload.id).error_message == "cancelled by ops-cleo"
    status = client.get(reverse("admin:pipeline_upload_status", args=[upload.id])).json()
    assert (status["status"], status["running"], status["error"]) == ("failed", False, "cancelled by ops-cleo")
    response = client.post(reverse("admin:pipeline_upload_cancel", args=[upload.id]), follow=True)
    assert any("this one is failed" in str(message) for message in response.context["messages"])

    client.post(reverse("admin:pipeline_upload_rerun", args=[upload.id]))
    assert fresh(upload.id).status == "received"
    done = upload_ingest(upload_id=upload.id)
    listing = client.get(reverse("admin:pipeline_upload_changelist")).content.decode()
    assert "PropStream Exports · march.csv" in listing and "20" in listing
    page = client.get(reverse("admin:pipeline_upload_change", args=[done.id])).content.decode()
    assert "Insert new leads" in page and "Total" in page and 'data-running="0"' in page
    assert 'id="upload-cancel"' not in page and 'id="upload-rerun"' not in page


@pytest.mark.django_db
def test_bulk_rerun_and_cancel_actions_and_thousands_separators(client):
    client.force_login(StaffUserFactory())
    first, second = accept(BODY), accept(csv_of([{"mak": "Q1"}]))
    with service_context():
        Upload.objects.filter(pk=second.id).update(rows_total=1_234_567)
    listing = client.get(reverse("admin:pipeline_upload_changelist")).content.decode()
    assert "1,234,567" in listing and "delete_selected" not in listing
    response = client.post(
        reverse("admin:pipeline_upload_changelist"),
        {"action": "cancel_selected", "_selected_action": [first.id, second.id]},
        follow=True,
    )
    assert any("Cancelled 2 upload(s)" in str(message) for message in response.context["messages"])
    response = client.post(
        reverse("admin:pipeline_upload_changelist"),
        {"action": "rerun_selected", "_selected_action": [first.id, second.id]},
        follow=True,
    )
    assert any("Queued 2 upload(s) again" in str(message) for message in response.context["messages"])
    assert {fresh(first.id).status, fresh(second.id).status} == {"received"}


@pytest.mark.django_db
def test_every_link_on_the_upload_page_lands_on_that_uploads_rows(client):
    client.force_login(RoleUserFactory(role="ops"))
    body = csv_of(
        [
            {"mak": "L1", "property_address": "1 Link St", "property_zip": "92101"},
            {"mak": "", "property_address": "", "property_zip": "92101"},  # rejected: no key
        ]
    )
    upload = upload_ingest(upload_id=accept(body, partner=PartnerFactory()).id)
    other = upload_ingest(
        upload_id=accept(csv_of([{"mak": "X", "first_name": "A"}, {"mak": "", "first_name": "B"}])).id
    )
    assert other.rows_rejected == 1
    page = client.get(reverse("admin:pipeline_upload_change", args=[upload.id]))
    links = page.context["links"]
    dlq = client.get(links["dlq"])
    assert dlq.status_code == 200 and [item.upload_id for item in dlq.context["cl"].result_list] == [upload.id]
    events = client.get(links["events"])
    assert events.status_code == 200
    assert {event.upload_id for event in events.context["cl"].result_list} == {upload.id}
    leads = client.get(links["leads"])
    assert leads.status_code == 200
    assert [lead.mak for lead in leads.context["cl"].result_list] == ["L1"]
    assert client.get(links["duplicates"]).status_code == 200
    listing = client.get(reverse("admin:pipeline_upload_changelist"))
    assert links["open_dlq"] in listing.content.decode()  # the rejected count links to them
    assert client.get(links["open_dlq"]).status_code == 200
