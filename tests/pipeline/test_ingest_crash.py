"""Crash safety: a real worker process, killed with SIGKILL mid-upload, then re-run, finishes
the upload exactly once — counts right, no duplicate leads, no duplicate events."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.db import connection

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest.locks import APPLY_LOCK
from pipeline.ingest.services import upload_ingest
from pipeline.models import LeadStaging, Upload
from tests.pg import backend_pid, blocked_by
from tests.pipeline.ingest_helpers import accept, assert_invariant, csv_of, worker_process
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _rows(count: int) -> bytes:
    # every 10th row repeats an earlier key: in-file duplicates
    return csv_of(
        [
            {
                "mak": f"C{(i - 5) if i % 10 == 9 else i}",
                "property_address": f"{i} Crash Ave",
                "property_zip": "92101",
                "first_name": f"Name{i}",
                "phone": f"415555{i % 10000:04d}",
            }
            for i in range(count)
        ]
    )


def _staged(upload_id) -> int:
    with service_context():
        return LeadStaging.objects.filter(upload_id=upload_id).count()


def _assert_exactly_once(upload_id, rows: int):
    with service_context():
        upload = Upload.objects.get(pk=upload_id)
        leads = Lead.objects.filter(source_upload_id=upload_id).count()
        events = list(PipelineEvent.objects.filter(upload_id=upload_id).values_list("event_type", flat=True))
        assert not LeadStaging.objects.filter(upload_id=upload_id).exists()
    assert upload.status == "done"
    assert_invariant(upload)
    assert (upload.rows_total, upload.leads_created, upload.duplicates_in_file) == (rows, leads, rows // 10)
    assert leads == rows - rows // 10
    assert events.count("dedupe_success") == 1 and events.count("upload_received") == 1
    assert events.count("lead_created") in (0, leads)


def test_worker_killed_while_staging_then_rerun_finishes_once(tmp_path):
    rows = 30_000
    upload = accept(_rows(rows))
    worker = worker_process(upload.id, tmp_path, INGEST_STAGE_BATCH_ROWS="2000")
    try:
        wait_for(
            lambda: _staged(upload.id) >= 4000 or worker.poll() is not None,
            timeout=60,
            message="the worker staged 4000 rows",
        )
        assert worker.poll() is None, worker.stderr.read().decode()  # still staging when it is killed
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    with service_context():
        interrupted = Upload.objects.get(pk=upload.id)
        assert interrupted.status == "processing" and 0 < interrupted.progress < 1
        assert Lead.objects.filter(source_upload_id=upload.id).count() == 0  # nothing half-applied
    rerun = worker_process(upload.id, tmp_path)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    _assert_exactly_once(upload.id, rows)
    assert upload_ingest(upload_id=upload.id).status == "done"  # a third run changes nothing
    _assert_exactly_once(upload.id, rows)


def test_worker_killed_inside_the_apply_transaction_then_rerun_finishes_once(tmp_path):
    rows = 5_000
    upload = accept(_rows(rows))
    with connection.cursor() as cursor:  # hold the global apply lock: the worker stages, then waits inside apply
        cursor.execute("SELECT pg_advisory_lock(%s)", [APPLY_LOCK])
    holder = backend_pid()
    try:
        worker = worker_process(upload.id, tmp_path)
        try:
            # The worker has staged every row and is now blocked on the apply lock, inside the apply transaction.
            wait_for(
                lambda: blocked_by(holder) or worker.poll() is not None,
                timeout=60,
                message="the worker waiting for the apply lock",
            )
            assert worker.poll() is None, worker.stderr.read().decode()
            assert _staged(upload.id) == rows
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [APPLY_LOCK])
    with service_context():
        assert Lead.objects.filter(source_upload_id=upload.id).count() == 0
    rerun = worker_process(upload.id, tmp_path)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    assert b"status=done" not in err and b"done rows_total=5000" in out
    _assert_exactly_once(upload.id, rows)
