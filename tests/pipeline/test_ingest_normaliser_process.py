"""Large files are parsed and normalised in a child process (pipeline/ingest/normaliser.py) while the
worker feeds COPY: the staged rows are the same as when the worker does it all, a dying normaliser fails
the upload cleanly, and a re-run finishes it exactly once."""

from __future__ import annotations

import json
import sys

import pytest
from django.db import connection

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest import staging as stage
from pipeline.ingest.services import upload_ingest
from pipeline.models import PipelineDLQ, UploadStatus
from security.fields import decrypt_stored, open_document
from security.pii import EMAIL, PHONE, RAW_ROW
from tests.pipeline.ingest_helpers import accept, assert_invariant, csv_of

pytestmark = pytest.mark.django_db

STAGED = "line_number, raw::text, melissa_payload::text, " + ", ".join(
    f"{name}::text" for name in stage.NORMALISED_NAMES
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.INGEST_STAGE_BATCH_ROWS = 7  # several batches, so batch boundaries are crossed


def rows(count: int) -> list[dict]:
    return [
        {
            "Address": f"{n} Main Street" if n % 5 else f"{n} MAIN ST.",
            "City": "San Diego",
            "State": "California" if n % 2 else "CA",
            "Zip": "92101-0001",
            "APN": f"apn-{n % 23}",  # in-file duplicates
            "Owner 1 First Name": "JANE" if n % 3 else "é\\x",
            "Phone 1": "(415) 555-0101" if n % 4 else "+44 20 7946 0958",
            "Email 1": f"Owner{n}@Example.com",
            "Est. Value": "$650,000",
            "Bedrooms": str(n % 4),
            "": "" if n % 6 else "no key at all",
        }
        | ({"APN": "", "Address": ""} if n % 11 == 0 else {})  # rejected: no dedupe key
        for n in range(1, count + 1)
    ]


def staged(upload_id) -> list[tuple]:
    """The staged rows, decrypted (each encryption has its own nonce: the ciphertexts of two runs differ)."""
    with service_context(), connection.cursor() as cursor:
        cursor.execute(f"SELECT {STAGED} FROM leads_staging WHERE upload_id = %s ORDER BY line_number", [upload_id])
        names = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    kinds = {"email": EMAIL, "phone": PHONE}
    return [
        tuple(
            open_document(json.loads(value), RAW_ROW)
            if name == "raw" and value is not None  # only a rejected row keeps its raw row
            else decrypt_stored(value, kinds[name])
            if name in kinds
            else value
            for name, value in zip(names, row, strict=True)
        )
        for row in rows
    ]


def test_the_process_stages_exactly_what_the_worker_stages(settings):
    body = csv_of(rows(40))
    results = {}
    for mode, threshold in (("worker", -1), ("process", 0)):
        settings.INGEST_SUBPROCESS_MIN_BYTES = threshold
        upload = accept(body + (b"\n" * len(results)))  # a distinct file (blank lines are not data)
        result = stage.stage_file(
            upload_id=str(upload.id), path=upload.file.path, broker_id=None, size_bytes=upload.size_bytes
        )
        results[mode] = (result.rows_total, result.rows_rejected, staged(upload.id))
        assert (result.normaliser_peak_rss_kb > 0) is (mode == "process")
    assert results["worker"][:2] == (40, 3)
    assert results["process"] == results["worker"]


def test_only_a_rejected_row_stages_its_raw_row_and_the_dlq_gets_it_whole(settings):
    settings.INGEST_SUBPROCESS_MIN_BYTES = 0
    records = rows(22)
    upload = accept(csv_of(records))
    stage.stage_file(upload_id=str(upload.id), path=upload.file.path, broker_id=None, size_bytes=upload.size_bytes)
    reason_at = STAGED.split(", ").index("reject_reason::text")
    raws = {row[0]: (row[1], row[reason_at]) for row in staged(upload.id)}
    assert {line for line, (_, reason) in raws.items() if reason} == {12, 23}  # n = 11 and 22: no key
    for line, (raw, reason) in raws.items():
        # A valid row's raw record is not sealed nor sent; a rejected one's is, and opens to the record.
        assert (raw is None) is (reason is None)
        if reason:
            record = records[line - 2]
            assert (raw["Address"], raw["APN"], raw["Email 1"]) == ("", "", record["Email 1"])
    upload_ingest(upload_id=upload.id)  # stages again, then applies
    with service_context():
        payloads = {item.line_number: item.payload for item in PipelineDLQ.objects.filter(upload=upload)}
    assert payloads == {line: raw for line, (raw, reason) in raws.items() if reason}


def test_a_dying_normaliser_fails_the_upload_and_a_rerun_finishes_it_once(settings, monkeypatch):
    settings.INGEST_SUBPROCESS_MIN_BYTES = 0
    upload = accept(csv_of(rows(30)))
    # A normaliser that sends half a frame and dies.
    monkeypatch.setattr(
        stage.SubprocessSource,
        "command",
        (sys.executable, "-c", "import sys; sys.stdin.read(); sys.stdout.buffer.write(b'D\\x00\\x00'); sys.exit(3)"),
    )
    with pytest.raises(RuntimeError, match="exit code 3"):
        upload_ingest(upload_id=upload.id)
    with service_context():
        upload.refresh_from_db()
        assert upload.status == UploadStatus.FAILED
        assert "re-run" in upload.error_message
        assert not upload.staging_rows.exists()
        assert not Lead.objects.filter(source_upload_id=upload.id).exists()
    monkeypatch.undo()
    done = upload_ingest(upload_id=upload.id)
    assert done.status == UploadStatus.DONE
    assert (done.rows_total, done.rows_rejected, done.duplicates_in_file) == (30, 2, 7)
    assert_invariant(done)
    with service_context():
        assert Lead.objects.filter(source_upload_id=upload.id).count() == done.leads_created == 21
        event = PipelineEvent.objects.get(upload_id=upload.id, event_type="dedupe_success")
        assert event.event_data["normaliser_peak_rss_kb"] > 0


def test_a_file_the_normaliser_cannot_read_fails_the_upload_with_its_reason(settings, monkeypatch):
    settings.INGEST_SUBPROCESS_MIN_BYTES = 0
    upload = accept(csv_of(rows(12)))
    message = "the file is not valid CSV after data row 3: test"
    script = (
        "import json, struct, sys; sys.stdin.read();"
        f" p = json.dumps({{'message': {message!r}}}).encode();"
        " sys.stdout.buffer.write(struct.pack('>cI', b'E', len(p)) + p)"
    )
    monkeypatch.setattr(stage.SubprocessSource, "command", (sys.executable, "-c", script))
    failed = upload_ingest(upload_id=upload.id)
    assert failed.status == UploadStatus.FAILED
    assert failed.error_message == message
    with service_context():
        assert not failed.staging_rows.exists()
