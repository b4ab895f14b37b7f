"""Load: 20 concurrent signed uploads of 10,000 rows each, with keys overlapping between files (and
inside each file), sent over HTTP to the live test server and processed by concurrent workers: all
finish, counts add up per upload, no deadlock, one lead per key."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from clients.upload_leads import request
from equity_connect.db import service_context
from leads.models import Lead
from pipeline.ingest.services import upload_ingest
from pipeline.models import Upload
from tests.factories import PartnerKeyFactory
from tests.pipeline.ingest_helpers import assert_invariant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FILES, ROWS, STRIDE = 20, 10_000, 5_000  # file i covers keys i*STRIDE …: half of each file is in the next


def _key(file: int, row: int) -> int:
    if row < 9_000:
        return file * STRIDE + row
    return file * STRIDE + (row - 9_000) * 3  # the last 1,000 rows repeat keys of the same file


def _file(file: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["MAK", "Address", "City", "State", "Zip", "Owner 1 First Name", "Phone 1", "Est. Value"])
    for row in range(ROWS):
        k = _key(file, row)
        writer.writerow(
            [
                f"L{k:07d}",
                f"{k} Load Street",
                "Fresno",
                "CA",
                "93650",
                f"Owner{row}",
                f"559{k % 9_000_000 + 1_000_000:07d}",
                str(100_000 + k),
            ]
        )
    return buffer.getvalue().encode()


def _process(upload_id):
    try:
        return upload_ingest(upload_id=upload_id)
    finally:
        connection.close()


def test_twenty_concurrent_uploads_with_overlapping_keys(live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    key = PartnerKeyFactory()
    bodies = [_file(i) for i in range(FILES)]
    url = live_server.url + "/api/v1/uploads"
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda body: request(
                    url, method="POST", body=body, secret=key.plain_secret, key_id=key.key_id, retries=2
                ),
                bodies,
            )
        )
    assert [code for code, _ in answers] == [202] * FILES
    upload_ids = [answer["upload_id"] for _, answer in answers]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_process, upload_ids))
    assert all(result is not None and result.status == "done" for result in results)
    distinct = {_key(file, row) for file in range(FILES) for row in range(ROWS)}
    with service_context():
        uploads = list(Upload.objects.filter(pk__in=upload_ids))
        lead_count = Lead.objects.count()
        distinct_maks = Lead.objects.values("mak").distinct().count()
        distinct_addresses = Lead.objects.values("addr_hash").distinct().count()
    for upload in uploads:
        assert_invariant(upload)
        assert (upload.rows_total, upload.rows_rejected, upload.duplicates_in_file) == (ROWS, 0, 1_000)
    assert lead_count == distinct_maks == distinct_addresses == len(distinct)
    assert sum(upload.leads_created for upload in uploads) == len(distinct)
    assert sum(upload.leads_merged for upload in uploads) == FILES * 9_000 - len(distinct)
    status_code, status = request(
        f"{url}/{upload_ids[0]}", method="GET", body=b"", secret=key.plain_secret, key_id=key.key_id
    )
    assert status_code == 200 and status["status"] == "done" and status["progress"] == 1.0
