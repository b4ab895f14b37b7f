"""No silent stall after a fault: a real worker process loses its database mid-upload — the server stopped
for 10 s, or its connection terminated — and finishes the upload by itself once the database answers again,
exactly once: one lead per property, the counts right, one `dedupe_success`, staging empty, exit code 0."""

from __future__ import annotations

import signal
import time

import pytest
from django.db import connection

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest.locks import APPLY_LOCK
from pipeline.models import LeadStaging, Upload
from tests.pg import backend_pid, blocked_by
from tests.pg import connect as second_connection
from tests.pipeline.ingest_helpers import accept, assert_invariant, csv_of, worker_process
from tests.throwaway_pg import throwaway_database
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

ROWS = 30_000
# A larger file where the server is stopped: stopping it takes a few process starts (runuser, pg_ctl), and the
# worker must still be staging when it goes.
ROWS_STOPPED = 60_000
OUTAGE_SECONDS = 10
LIVENESS_SECONDS = 120  # from the database's return to the upload being done
RETRY_LOGGED = b"transient database error"


def _rows(count: int) -> bytes:
    # every 10th row repeats an earlier MAK: count // 10 in-file duplicates, one lead per other row
    return csv_of(
        [
            {
                "mak": f"F{(i - 5) if i % 10 == 9 else i}",
                "property_address": f"{i} Fault Ave",
                "property_zip": "92101",
                "first_name": f"Name{i}",
                "phone": f"415555{i % 10000:04d}",
            }
            for i in range(count)
        ]
    )


def _stop(worker) -> tuple[bytes, bytes]:
    if worker.poll() is None:
        worker.send_signal(signal.SIGKILL)
    return worker.communicate()


def _done(worker, timeout: float) -> bytes:
    """Wait for the worker to exit by itself; its stderr. Fails with its output when it does not exit 0."""
    out, err = worker.communicate(timeout=timeout)
    assert worker.returncode == 0, (out + err).decode()[-3000:]
    assert b": done rows_total=" in out
    return err


# --- the server stopped for 10 s (a cluster of the test's own) ---------------------------------------------


def test_postgres_stopped_for_10_s_mid_upload_the_upload_finishes_by_itself_exactly_once(tmp_path):
    with throwaway_database(media_root=tmp_path) as db:
        upload_id = db.accept(_rows(ROWS_STOPPED))
        worker = db.manage_process("process_upload", upload_id, INGEST_STAGE_BATCH_ROWS="2000")
        try:
            wait_for(
                lambda: (
                    worker.poll() is not None
                    or db.query("SELECT count(*) FROM leads_staging WHERE upload_id = %s", [upload_id])[0][0] >= 2000
                ),
                timeout=60,
                message="the worker committed its first batch",
            )
            assert worker.poll() is None, _stop(worker)  # still staging when the server goes
            db.cluster.stop()  # pg_ctl stop -m fast: every session is terminated
            time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a result
            assert worker.poll() is None, _stop(worker)  # riding it out, not failed
            back = time.monotonic()
            db.cluster.start()
            wait_for(
                lambda: db.try_query("SELECT status FROM uploads WHERE id = %s", [upload_id]) == [("done",)],
                timeout=LIVENESS_SECONDS,
                message="the upload done after the server came back",
            )
            finished = time.monotonic() - back
            err = _done(worker, timeout=30)
        finally:
            _stop(worker)
        [(status, attempts, rows_total, created, merged, duplicates, rejected)] = db.query(
            "SELECT status, attempts, rows_total, leads_created, leads_merged, duplicates_in_file, rows_rejected"
            " FROM uploads WHERE id = %s",
            [upload_id],
        )
        [(leads, properties)] = db.query(
            "SELECT count(*), count(DISTINCT mak) FROM leads WHERE source_upload_id = %s", [upload_id]
        )
        events = dict(
            db.query("SELECT event_type, count(*) FROM pipeline_events WHERE upload_id = %s GROUP BY 1", [upload_id])
        )
        staged = db.query("SELECT count(*) FROM leads_staging")[0][0]
    print(f"\nserver back → upload done: {finished:.1f} s")
    assert attempts >= 2 and RETRY_LOGGED in err  # the stop hit the run, which started again by itself
    assert (status, rows_total, rejected) == ("done", ROWS_STOPPED, 0)
    assert (created, merged, duplicates) == (ROWS_STOPPED - ROWS_STOPPED // 10, 0, ROWS_STOPPED // 10)
    assert leads == properties == created  # one lead per property
    assert events["dedupe_success"] == 1 and events["upload_received"] == 1 and "upload_failed" not in events
    assert staged == 0


# --- a dropped connection (the shared test database) -------------------------------------------------------


def _staged(upload_id) -> int:
    with service_context():
        return LeadStaging.objects.filter(upload_id=upload_id).count()


def _ingest_backend(upload_id) -> int | None:
    """The server process of the session that ingests the upload (it names itself after the upload)."""
    with second_connection(admin=True) as admin:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [f"equity-connect ingest {upload_id}"]
        ).fetchone()
    return row[0] if row else None


def _terminate(pid: int) -> None:
    with second_connection(admin=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", [pid]).fetchone()[0]  # and wait for it


def _assert_exactly_once(upload_id, rows: int) -> None:
    with service_context():
        upload = Upload.objects.get(pk=upload_id)
        leads = Lead.objects.filter(source_upload_id=upload_id)
        count, properties = leads.count(), leads.values("mak").distinct().count()
        events = list(PipelineEvent.objects.filter(upload_id=upload_id).values_list("event_type", flat=True))
        assert not LeadStaging.objects.filter(upload_id=upload_id).exists()
    assert upload.status == "done" and upload.attempts == 2  # the dropped run, then its restart
    assert_invariant(upload)
    assert (upload.rows_total, upload.leads_created, upload.duplicates_in_file) == (rows, count, rows // 10)
    assert count == properties == rows - rows // 10
    assert events.count("dedupe_success") == 1 and events.count("upload_received") == 1
    assert "upload_failed" not in events


@pytest.mark.django_db(transaction=True)
def test_a_dropped_ingest_connection_while_staging_the_upload_finishes_by_itself_exactly_once(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    upload = accept(_rows(ROWS))
    worker = worker_process(upload.id, tmp_path, INGEST_STAGE_BATCH_ROWS="2000")
    try:
        wait_for(
            lambda: _staged(upload.id) >= 2000 or worker.poll() is not None,
            timeout=60,
            message="the worker committed its first batch",
        )
        assert worker.poll() is None, _stop(worker)
        _terminate(_ingest_backend(upload.id))
        dropped = time.monotonic()
        err = _done(worker, timeout=LIVENESS_SECONDS)
        print(f"\nconnection dropped → upload done: {time.monotonic() - dropped:.1f} s")
    finally:
        _stop(worker)
    assert RETRY_LOGGED in err
    _assert_exactly_once(upload.id, ROWS)


@pytest.mark.django_db(transaction=True)
def test_a_dropped_connection_inside_the_apply_transaction_the_upload_finishes_by_itself_exactly_once(
    tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path
    rows = 5_000
    upload = accept(_rows(rows))
    with connection.cursor() as cursor:  # hold the apply lock: the worker stages, then waits inside the apply
        cursor.execute("SELECT pg_advisory_lock(%s)", [APPLY_LOCK])
    holder = backend_pid()
    worker = worker_process(upload.id, tmp_path)
    try:
        try:
            wait_for(
                lambda: blocked_by(holder) or worker.poll() is not None,
                timeout=60,
                message="the worker waiting for the apply lock",
            )
            assert worker.poll() is None, _stop(worker)
            [waiting] = blocked_by(holder)
            assert waiting == _ingest_backend(upload.id)
            _terminate(waiting)
            wait_for(
                lambda: _ingest_backend(upload.id) not in (None, waiting),
                timeout=30,
                message="the worker back on a fresh connection",
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [APPLY_LOCK])
        err = _done(worker, timeout=LIVENESS_SECONDS)
    finally:
        _stop(worker)
    assert RETRY_LOGGED in err
    _assert_exactly_once(upload.id, rows)
