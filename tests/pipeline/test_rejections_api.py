"""Partners see their rejects: `GET /api/v1/uploads/<id>/rejections`, signed like the status, returns the
rejected rows as CSV (line number, reason, the row as sent), formula-safe, and only to the partner who sent
them."""

from __future__ import annotations

import csv
import io

import pytest

from equity_connect.db import service_context
from pipeline.ingest.services import dlq_row_reprocess, upload_ingest
from pipeline.models import PipelineDLQ
from tests.factories import PartnerKeyFactory
from tests.security.signing_helpers import UPLOADS, get_status, post_upload, signed_headers

pytestmark = pytest.mark.django_db

BODY = (
    b"mak,property_address,first_name,notes\n"
    b"M1,1 Main St,Ann,fine\n"
    b',,=HYPERLINK("http://evil"),no key\n'
    b"M2,2 Oak St,Bo,fine\n"
    b",,@SUM(1),also no key,extra cell\n"
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HMAC_SECRET_KEY = ""


def rejections(client, key, upload_id):
    path = f"{UPLOADS}/{upload_id}/rejections"
    return client.get(path, **signed_headers(key.plain_secret, b"", method="GET", path=path, key_id=key.key_id))


@pytest.fixture
def uploaded(client):
    key = PartnerKeyFactory()
    response = post_upload(client, key.plain_secret, BODY, key_id=key.key_id)
    assert response.status_code == 202
    upload_id = response.json()["upload_id"]
    upload = upload_ingest(upload_id=upload_id)
    assert (upload.rows_total, upload.rows_rejected) == (4, 2)
    return key, upload_id


def test_the_rejected_rows_come_back_as_csv_exactly_and_formula_safe(client, uploaded):
    key, upload_id = uploaded
    response = rejections(client, key, upload_id)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["line_number", "reason", "mak", "property_address", "first_name", "notes", "_extra_values"]
    assert [row[0] for row in rows[1:]] == ["3", "5"]  # exactly the rejected lines
    assert rows[1][1].startswith("no dedupe key") and rows[1][4] == '\'=HYPERLINK("http://evil")'
    assert rows[2][4:] == ["'@SUM(1)", "also no key", "extra cell"]
    status = get_status(client, key.plain_secret, upload_id, key_id=key.key_id).json()
    assert status["rejections_url"].endswith(f"/api/v1/uploads/{upload_id}/rejections")


def test_a_fixed_row_is_no_longer_listed(client, uploaded):
    key, upload_id = uploaded
    with service_context():
        item = PipelineDLQ.objects.filter(upload_id=upload_id).order_by("line_number").first()
    dlq_row_reprocess(item, payload={**item.payload, "mak": "M9"})
    rows = list(csv.reader(io.StringIO(b"".join(rejections(client, key, upload_id).streaming_content).decode())))
    assert [row[0] for row in rows[1:]] == ["5"]


def test_another_partner_or_an_unsigned_request_gets_nothing(client, uploaded):
    _, upload_id = uploaded
    other = PartnerKeyFactory()
    assert rejections(client, other, upload_id).status_code == 404
    assert client.get(f"{UPLOADS}/{upload_id}/rejections").status_code == 400  # no signature headers
    path = f"{UPLOADS}/{upload_id}/rejections"
    forged = signed_headers("x" * 40, b"", method="GET", path=path, key_id=other.key_id)
    assert client.get(path, **forged).status_code == 401
