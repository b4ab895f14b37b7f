"""Staff uploads through the admin (same pipeline, staff auth) and the partner-key admin."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.ingest.services import upload_ingest
from pipeline.models import Upload
from security.models import PartnerKey
from tests.factories import PartnerFactory, PartnerKeyFactory, StaffUserFactory

pytestmark = pytest.mark.django_db
BODY = b"mak,first_name\nA1,Ann\nA2,Bob\n"


@pytest.fixture
def staff_client(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(StaffUserFactory())
    return client


def test_staff_upload_runs_the_pipeline_and_shows_status(staff_client):
    page = staff_client.get("/admin/pipeline/upload/upload-csv/")
    assert page.status_code == 200
    response = staff_client.post(
        "/admin/pipeline/upload/upload-csv/",
        {"file": SimpleUploadedFile("leads.csv", BODY, "text/csv"), "source": "desk"},
    )
    assert response.status_code == 302
    with service_context():
        upload = Upload.objects.get()
        assert upload.uploaded_by_id is not None and upload.partner_id is None and upload.source == "desk"
        assert PipelineEvent.objects.filter(event_type="upload_received", upload_id=upload.id).exists()
    upload = upload_ingest(upload_id=upload.id)
    assert (upload.status, upload.leads_created) == ("done", 2)
    detail = staff_client.get(f"/admin/pipeline/upload/{upload.id}/change/")
    assert detail.status_code == 200 and b"done" in detail.content
    assert b"Upload a CSV" in staff_client.get("/admin/pipeline/upload/").content
    again = staff_client.post(
        "/admin/pipeline/upload/upload-csv/", {"file": SimpleUploadedFile("again.csv", BODY, "text/csv")}, follow=True
    )
    assert b"already received" in again.content


def test_partner_key_admin_shows_the_secret_once_and_revokes(staff_client):
    partner = PartnerFactory()
    response = staff_client.post("/admin/security/partnerkey/add/", {"partner": partner.pk, "label": "x"})
    assert response.status_code == 200
    with service_context():
        key = PartnerKey.objects.get(partner=partner)
    assert key.key_id.encode() in response.content and b"shown only now" in response.content
    change = staff_client.get(f"/admin/security/partnerkey/{key.pk}/change/")
    assert b"shown only now" not in change.content
    other = PartnerKeyFactory(partner=partner)
    staff_client.post("/admin/security/partnerkey/", {"action": "rotate_keys", "_selected_action": [other.pk]})
    staff_client.post("/admin/security/partnerkey/", {"action": "revoke_keys", "_selected_action": [other.pk]})
    with service_context():
        other.refresh_from_db()
        assert other.status == "revoked"
        assert PartnerKey.objects.filter(partner=partner, status="active").count() == 2  # the first and the rotation
