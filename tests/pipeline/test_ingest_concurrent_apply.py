"""No global apply lock: uploads apply at the same time, and those whose keys meet still make one lead per key,
add up, and never deadlock (pipeline/ingest/apply.py, the optimistic apply).

The deterministic tests hold one upload's apply transaction open in this test's own connection (staged, applied,
not committed) while a real worker process applies a second upload beside it; `blocked_by` and pg_stat_activity
show what the worker waits for, if anything."""

from __future__ import annotations

import signal
from contextlib import contextmanager

import pytest
from django.db import connection

from equity_connect.db import pipeline_writer_context, service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest import apply, staging
from pipeline.ingest.locks import APPLY_GATE, apply_gate, invisible_in
from pipeline.ingest.services import upload_ingest
from pipeline.models import PossibleDuplicate, Upload
from tests.pg import backend_pid, blocked_by, connect
from tests.pipeline.ingest_helpers import accept, assert_invariant, csv_of, worker_process
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
CONFLICT_LOGGED = b"upload apply conflict"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _mak_rows(keys, *, tag: str) -> list[dict]:
    # The same owner on both sides of a shared key: a plain merge (no new owner), the file's phone filled in.
    return [
        {
            "mak": f"{tag}-{key}",
            "property_address": f"{key} Race St",
            "property_zip": "92101",
            "first_name": f"Owner{key}",
            "last_name": "Race",
        }
        for key in keys
    ]


def _stage(upload: Upload) -> None:
    staging.stage_file(upload_id=str(upload.id), path=upload.file.path, broker_id=None, size_bytes=upload.size_bytes)


@contextmanager
def _apply_open(upload: Upload):
    """Stage `upload` and apply it in this test's connection, as the ingestion service does, leaving the
    transaction open (its new leads inserted, its targets locked, nothing committed) until the block ends."""
    _stage(upload)
    with pipeline_writer_context():
        apply_gate()
        counts = apply.apply_staged(upload_id=str(upload.id), source="test", lead_events_max=0)
        Upload.objects.filter(pk=upload.id).update(
            status="done", leads_created=counts.leads_created, leads_merged=counts.leads_merged
        )
        yield counts, backend_pid()


def _waiting_query(pid: int) -> str:
    with connect(admin=True) as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def _finish(worker) -> bytes:
    try:
        out, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
    assert worker.returncode == 0, err.decode()
    assert b"done" in out, (out + err).decode()
    return err


def _dedupe_success(upload_id) -> dict:
    with service_context():
        return PipelineEvent.objects.get(upload_id=upload_id, event_type="dedupe_success").event_data


def _leads_per_mak(prefix: str) -> dict[str, int]:
    with service_context():
        makes = Lead.objects.filter(mak__startswith=prefix).values_list("mak", flat=True)
        return {mak: list(makes).count(mak) for mak in set(makes)}


def test_an_insert_that_meets_another_uploads_uncommitted_key_waits_then_merges_into_its_lead(tmp_path):
    first = accept(csv_of(_mak_rows(range(0, 60), tag="R")))
    second = accept(csv_of(_mak_rows(range(40, 100), tag="R")))  # keys 40-59 in both
    with _apply_open(first) as (counts, holder):
        assert counts.leads_created == 60
        worker = worker_process(second.id, tmp_path)
        # The second upload stages, applies, and its insert waits on the first's uncommitted lead for R-40.
        wait_for(lambda: blocked_by(holder) or worker.poll() is not None, timeout=60, message="the insert waiting")
        assert worker.poll() is None, worker.communicate()[1].decode()
        [waiting] = blocked_by(holder)
        assert "INSERT INTO leads" in _waiting_query(waiting)
    err = _finish(worker)
    assert CONFLICT_LOGGED not in err  # no unique violation, no deadlock, no second apply
    assert set(_leads_per_mak("R-").values()) == {1} and len(_leads_per_mak("R-")) == 100
    with service_context():
        upload = Upload.objects.get(pk=second.id)
        assert Lead.objects.filter(source_upload_id=second.id).count() == 40
    assert_invariant(upload)
    assert (upload.leads_created, upload.leads_merged) == (40, 20)
    data = _dedupe_success(second.id)
    assert (data["insert_losers"], data["concurrent"]) == (20, True)


def test_merges_into_the_same_leads_queue_on_their_row_locks_in_id_order(tmp_path):
    upload_ingest(upload_id=accept(csv_of(_mak_rows(range(30), tag="Q"))).id)
    # Both merge into all 30 leads (new valuations), listed in opposite orders.
    rows = [{**row, "estimated_value": "500000"} for row in _mak_rows(range(30), tag="Q")]
    first = accept(csv_of(rows))
    second = accept(csv_of([{**row, "estimated_value": "600000"} for row in reversed(rows)]))
    with _apply_open(first) as (counts, holder):
        assert counts.leads_merged == 30
        worker = worker_process(second.id, tmp_path)
        wait_for(lambda: blocked_by(holder) or worker.poll() is not None, timeout=60, message="the lock waiting")
        assert worker.poll() is None, worker.communicate()[1].decode()
        [waiting] = blocked_by(holder)
        assert "FOR NO KEY UPDATE" in _waiting_query(waiting)  # all of them locked first, before any write
    err = _finish(worker)
    assert CONFLICT_LOGGED not in err
    with service_context():
        upload = Upload.objects.get(pk=second.id)
        values = set(Lead.objects.filter(mak__startswith="Q-").values_list("property_value", flat=True))
    assert_invariant(upload)
    assert (upload.leads_created, upload.leads_merged) == (0, 30)
    assert values == {600000}  # the second merge is the newest valuation
    assert set(_leads_per_mak("Q-").values()) == {1}


def test_uploads_whose_keys_do_not_meet_apply_at_the_same_time(tmp_path):
    first = accept(csv_of(_mak_rows(range(0, 50), tag="D")))
    second = accept(csv_of(_mak_rows(range(1000, 1050), tag="D")))
    with _apply_open(first) as (_, holder):
        worker = worker_process(second.id, tmp_path)
        seen_waiting = []

        def finished() -> bool:
            seen_waiting.extend(blocked_by(holder))
            return worker.poll() is not None

        # The second upload's whole apply commits while the first's transaction is still open: nothing waited.
        wait_for(finished, timeout=90, interval=0.1, message="the second upload applied beside the first")
        err = _finish(worker)
        assert seen_waiting == []
        with connect(admin=True) as other:  # its leads are committed: another session sees them
            [(visible,)] = other.execute(
                "SELECT count(*) FROM uploads WHERE id = %s AND status = 'done'", [second.id]
            ).fetchall()
        assert visible == 1
    assert CONFLICT_LOGGED not in err
    with service_context():
        assert Upload.objects.get(pk=second.id).leads_created == 50
    assert len(_leads_per_mak("D-")) == 100


def test_a_property_another_upload_created_beside_this_one_becomes_a_possible_duplicate_after_commit(tmp_path):
    # Same APN, one with a MAK and one without: no unique key shared (both inserted), but the match rule says they
    # may be one parcel. Each apply could not see the other's lead; the sweep after commit proposes the pair.
    first = accept(csv_of([{"apn": "777-01", "property_address": "1 Sweep Rd", "property_zip": "92101"}]))
    second = accept(
        csv_of([{"mak": "S-1", "apn": "777-01", "property_address": "1 Sweep Rd Unit B", "property_zip": "92101"}])
    )
    with _apply_open(first) as (counts, _):
        worker = worker_process(second.id, tmp_path)
        _finish(worker)  # never waited: no key in common
    with pipeline_writer_context():  # the first's sweep, as the service runs it after its commit
        found = apply.possible_duplicates_sweep(upload_id=str(first.id), counts=counts)
    assert found == 1
    with service_context():
        [pair] = PossibleDuplicate.objects.all()
        leads = set(Lead.objects.filter(apn="777-01").values_list("id", flat=True))
    assert {pair.lead_a_id, pair.lead_b_id} == leads and pair.key == "apn"


def test_concurrent_uploads_with_every_kind_of_shared_key_make_one_lead_per_key_without_a_retry(tmp_path):
    """Three workers released at once from the apply gate, on files that share MAKs, APN-only and address-only
    keys with each other and with existing leads, listed in different orders: a deadlock or a unique violation
    would show as an apply retry in a worker's log."""

    def rows(keys, round_):
        out = []
        for key in keys:
            out += [
                {"mak": f"K{round_}-{key}", "property_address": f"{key} Mak Way", "property_zip": "92101"},
                {"apn": f"{round_}-{key:04d}", "property_address": f"{key} Apn Way", "property_zip": "92101"},
                {"property_address": f"{key} Addr Way {round_}", "property_zip": "92101"},
            ]
        return out

    for round_ in range(2):
        with service_context():
            before = Lead.objects.count()
        upload_ingest(upload_id=accept(csv_of(rows(range(0, 20), round_))).id)  # existing leads
        files = [range(0, 80), reversed(range(40, 120)), range(100, 10, -1)]
        uploads = [accept(csv_of(rows(list(keys), round_))) for keys in files]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [APPLY_GATE])
        holder = backend_pid()
        try:
            workers = [worker_process(upload.id, tmp_path) for upload in uploads]
            wait_for(
                lambda: len(blocked_by(holder)) == 3 or any(w.poll() is not None for w in workers),  # noqa: B023
                timeout=120,
                message="the workers waiting at the gate",
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [APPLY_GATE])
        errors = [_finish(worker) for worker in workers]
        assert all(CONFLICT_LOGGED not in err for err in errors)
        with service_context():
            done = list(Upload.objects.filter(pk__in=[u.id for u in uploads]))
            makes = list(Lead.objects.filter(mak__startswith=f"K{round_}-").values_list("mak", flat=True))
            apns = list(Lead.objects.filter(apn__startswith=f"{round_}-").values_list("apn", flat=True))
            total = Lead.objects.count()
        for upload in done:
            assert_invariant(upload)
        assert len(makes) == len(set(makes)) == 120 and len(apns) == len(set(apns)) == 120
        # 120 keys of each kind, 20 existing: every other property of the three files is created once, and
        # merged in the other files (3 properties per key; 80 + 80 + 90 keys).
        assert total == before + 3 * 120
        assert sum(u.leads_created for u in done) == 3 * 100
        assert sum(u.leads_created + u.leads_merged for u in done) == 3 * (80 + 80 + 90)


@pytest.mark.parametrize(
    ("snapshot", "xid", "invisible"),
    [
        ("100:105:101,103", 99, False),  # committed before
        ("100:105:101,103", 101, True),  # running then
        ("100:105:101,103", 102, False),  # committed before the snapshot
        ("100:105:101,103", 105, True),  # began after
        ("100:105:", 200, True),
        ("4294967396:4294967400:", 98, False),  # epoch 1: xmax 4294967400 is xid 104
        ("4294967396:4294967400:", 110, True),
        ("100:105:", 2, False),  # frozen
    ],
)
def test_invisible_in_reads_the_snapshot_as_postgresql_does(snapshot, xid, invisible):
    assert invisible_in(snapshot, xid) is invisible


SAFE_MERGE = "first_name = coalesce(nullif(l.first_name, ''), m.first_name)"  # pipeline/ingest/sql/write.py


def test_an_upload_that_meets_no_lead_plans_no_merge_and_one_that_does_merges():
    # The first upload into new parcels (as the first of several concurrent uploads into an empty table) has
    # nothing to merge: planning the UPDATE for zero rows nested a scan of `ingest_resolved` in a scan of `leads`
    # (minutes at 250k rows), so it is not run at all.
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        first = upload_ingest(upload_id=accept(csv_of(_mak_rows(range(3), tag="solo"))).id)
    assert (first.leads_created, first.leads_merged) == (3, 0)
    assert not [sql for sql in statements if SAFE_MERGE in sql]

    statements.clear()
    again = [{**row, "phone": "5595550199"} for row in _mak_rows(range(3), tag="solo")]
    with connection.execute_wrapper(record):
        second = upload_ingest(upload_id=accept(csv_of(again)).id)
    assert (second.leads_created, second.leads_merged) == (0, 3)
    assert [sql for sql in statements if SAFE_MERGE in sql]
    assert_invariant(second)
