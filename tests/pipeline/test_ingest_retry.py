"""Transient or permanent: which database errors the ingestion waits out (real errors from the real server),
the backoff, a transient fault that heals (the upload finishes once), and a permanent error, which fails the
upload at once: no retry, its replay guard released, `upload_failed` on its timeline, and the alert."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from django.db import DatabaseError, Error, connection, connections, transaction

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest import retry
from pipeline.ingest.reading import FileUnreadable
from pipeline.ingest.retry import Backoff, transient_database_error
from pipeline.ingest.services import upload_ingest
from pipeline.models import IngestReplayGuard, LeadStaging, Upload
from pipeline.monitoring.alerts import alerts_evaluate
from tests.pg import backend_pid
from tests.pg import connect as second_connection
from tests.pipeline.ingest_helpers import accept, assert_invariant, csv_of
from tests.waiting import wait_for

TRANSIENT = ["08000", "08001", "08003", "08006", "57P01", "57P02", "57P03", "40001", "40P01", "53300", "25006"]
PERMANENT = ["23505", "23514", "23502", "22P02", "42P01", "42501", "57014", "55P03", "25P02", "53100", "XX000"]


def _raise(code: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'a fault' USING ERRCODE = '{code}'; END $$"


def _error_from_django(code: str) -> DatabaseError:
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_raise(code))
    return raised.value


def _error_from_psycopg(code: str) -> psycopg.Error:
    with second_connection() as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute(_raise(code))
    return raised.value


# --- the classification ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("code", TRANSIENT + PERMANENT)
def test_the_servers_errors_by_sqlstate(code):
    for error in (_error_from_django(code), _error_from_psycopg(code)):
        assert retry.sqlstate(error) == code
        assert transient_database_error(error, connection) is (code in TRANSIENT), (code, type(error))


@pytest.mark.django_db
def test_a_real_statement_timeout_and_a_real_unique_violation_are_permanent():
    with pytest.raises(DatabaseError) as timeout, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '10ms'")
        cursor.execute("SELECT pg_sleep(1)")
    with pytest.raises(DatabaseError) as duplicate, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE once (id int PRIMARY KEY)")
        cursor.execute("INSERT INTO once VALUES (1), (1)")
    assert not transient_database_error(timeout.value, connection)
    assert not transient_database_error(duplicate.value, connection)


@pytest.mark.django_db
def test_a_terminated_connection_is_transient():
    victim = second_connection()
    with second_connection(admin=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", [victim.info.backend_pid])  # and wait for it
    with pytest.raises(psycopg.OperationalError) as terminated:  # 57P01, or no answer at all
        victim.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError) as closed:  # "the connection is closed": no SQLSTATE
        victim.execute("SELECT 1")
    assert retry.sqlstate(closed.value) is None
    assert transient_database_error(terminated.value) and transient_database_error(closed.value)


@pytest.mark.django_db
def test_a_refused_connection_is_transient(tmp_path):
    wrapper = type(connections["default"])
    nowhere = wrapper({**connection.settings_dict, "HOST": str(tmp_path), "PORT": "1"}, alias="nowhere")
    with pytest.raises(DatabaseError) as refused:  # no server listens there
        nowhere.ensure_connection()
    assert retry.sqlstate(refused.value) is None and nowhere.connection is None
    assert transient_database_error(refused.value, nowhere)


@pytest.mark.django_db
def test_an_interface_error_is_transient_only_without_a_usable_connection(tmp_path):
    cursor = connection.cursor()
    cursor.close()
    with pytest.raises(Error) as closed_cursor:  # an InterfaceError: the cursor is closed
        cursor.execute("SELECT 1")
    assert retry.connection_usable(connection)
    assert not transient_database_error(closed_cursor.value, connection)  # our misuse
    gone = type(connections["default"])({**connection.settings_dict}, alias="gone")  # never connected
    assert transient_database_error(closed_cursor.value, gone)


def test_errors_that_are_not_the_databases_are_permanent():
    for error in (ValueError("x"), RuntimeError("a normaliser process ended"), FileUnreadable("not CSV")):
        assert not transient_database_error(error)


def test_the_backoff_doubles_to_its_ceiling_with_jitter_and_ends_with_the_budget():
    backoff = Backoff(budget_seconds=3600)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True)), delays
    short = Backoff(budget_seconds=0.2)
    assert short.next_delay() <= 0.2  # never past the budget
    wait_for(lambda: short.next_delay() is None, timeout=5, message="the budget spent")


# --- faults from the real server, inside the ingestion ----------------------------------------------------


@pytest.fixture
def leads_insert_fault():
    """`fault(upload, code, times)`: the upload's next `times` INSERTs into `leads` fail with SQLSTATE `code`
    (every one when times is None) — a real error from the real server, raised by a trigger the schema owner
    adds. Only that upload's rows: a trigger left behind by a killed run touches no other test."""
    drop = (
        "DROP TRIGGER IF EXISTS test_fault ON leads; DROP FUNCTION IF EXISTS test_fault();"
        " DROP SEQUENCE IF EXISTS test_fault_count"
    )

    def fault(upload, code: str, times: int | None = None) -> None:
        limit = "true" if times is None else f"nextval('test_fault_count') <= {int(times)}"
        with second_connection(admin=True) as admin:
            admin.execute(drop)
            admin.execute("CREATE SEQUENCE test_fault_count")
            admin.execute(
                "CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
                f" SET search_path = public AS $$ BEGIN IF NEW.source_upload_id = '{upload.id}' AND {limit} THEN"
                f" RAISE EXCEPTION 'a test fault' USING ERRCODE = '{code}'; END IF; RETURN NEW; END $$"
            )
            admin.execute(
                "CREATE TRIGGER test_fault BEFORE INSERT ON leads FOR EACH ROW EXECUTE FUNCTION test_fault()"
            )

    yield fault
    with second_connection(admin=True) as admin:
        admin.execute(drop)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.ALERT_WEBHOOK_URL = ""
    settings.ALERT_EMAILS = []


def _body(count: int = 20) -> bytes:
    rows = [{"mak": f"R{i}", "property_address": f"{i} Retry Rd", "property_zip": "92101"} for i in range(count)]
    return csv_of(rows)


def _events(upload_id) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(upload_id=upload_id).order_by("id"))


def _retries(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "transient database error (" in r.getMessage()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("code", "times", "runs"),
    [
        ("57P01", 1, 2),  # the server went away: the run starts again on a fresh connection
        ("53300", 1, 2),  # too many connections
        ("40P01", 2, 1),  # a deadlock: the apply alone runs again, in the same run
        ("40P01", 3, 2),  # ... and when it keeps losing, the run starts again
    ],
)
def test_a_transient_fault_that_heals_the_upload_finishes_once(leads_insert_fault, caplog, code, times, runs):
    upload = accept(_body())
    leads_insert_fault(upload, code, times)
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        done = upload_ingest(upload_id=upload.id)
    assert done.status == "done" and done.attempts == runs
    assert len(_retries(caplog)) == runs - 1
    assert_invariant(done)
    with service_context():
        assert Lead.objects.filter(source_upload_id=upload.id).count() == done.leads_created == 20
        assert not LeadStaging.objects.filter(upload_id=upload.id).exists()
        assert IngestReplayGuard.objects.filter(upload_id=upload.id).exists()  # kept: the upload did not fail
    types = [event.event_type for event in _events(upload.id)]
    assert types.count("dedupe_success") == 1 and "upload_failed" not in types


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_while_idle_is_replaced_by_a_fresh_one(settings, caplog):
    # A worker's kept connection that a restart or failover ended between two tasks: Django does not notice
    # until it is used, and then never reconnects by itself.
    settings.INGEST_TRANSIENT_RETRY_SECONDS = 5
    upload = accept(_body())
    idle = backend_pid()
    with second_connection(admin=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", [idle])
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        done = upload_ingest(upload_id=upload.id)
    assert done.status == "done" and done.leads_created == 20
    assert len(_retries(caplog)) == 1 and backend_pid() != idle


@pytest.mark.django_db(transaction=True)
def test_a_permanent_error_fails_the_upload_at_once_releases_its_guard_and_alerts(
    leads_insert_fault, caplog, running_system
):
    upload = accept(_body())
    leads_insert_fault(upload, "23514")  # a check the data breaks, on every try: no race, nothing to wait for
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"), pytest.raises(DatabaseError):
        upload_ingest(upload_id=upload.id)
    assert _retries(caplog) == [] and not [r for r in caplog.records if "apply conflict" in r.getMessage()]
    with service_context():
        failed = Upload.objects.get(pk=upload.id)
        assert not IngestReplayGuard.objects.filter(content_sha256=upload.content_sha256).exists()
        assert not Lead.objects.filter(source_upload_id=upload.id).exists()
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error_message == "internal error (IntegrityError); the upload can be re-run"
    [event] = [event for event in _events(upload.id) if event.event_type == "upload_failed"]
    assert event.status == "failure"
    assert event.event_data == {
        "reason": "internal_error",
        "error_class": "IntegrityError",
        "replay_guard_released": True,
    }
    summary = alerts_evaluate()
    assert summary["fired"] == ["upload_failed"]
    assert f"{upload.id} (internal error, IntegrityError)" in _alert_message()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_fault_that_outlasts_the_budget_fails_the_upload_and_alerts(
    leads_insert_fault, caplog, settings, running_system
):
    settings.INGEST_TRANSIENT_RETRY_SECONDS = 3
    upload = accept(_body())
    leads_insert_fault(upload, "57P03")  # "the database system is starting up", for ever
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"), pytest.raises(DatabaseError):
        upload_ingest(upload_id=upload.id)
    elapsed = time.monotonic() - started
    print(f"\ngave up after {elapsed:.1f} s, {len(_retries(caplog))} retries")
    assert 3 <= elapsed < 3 + 5  # the budget, and not much more
    assert len(_retries(caplog)) >= 2
    with service_context():
        failed = Upload.objects.get(pk=upload.id)
        assert not IngestReplayGuard.objects.filter(content_sha256=upload.content_sha256).exists()
    assert failed.status == "failed" and failed.attempts == len(_retries(caplog)) + 1
    assert failed.error_message.startswith("the database stayed unavailable for 3 s (OperationalError)")
    [event] = [event for event in _events(upload.id) if event.event_type == "upload_failed"]
    assert event.event_data["reason"] == "database_unavailable"
    assert alerts_evaluate()["fired"] == ["upload_failed"]
    assert f"{upload.id} (the database stayed unavailable, OperationalError)" in _alert_message()


def _alert_message() -> str:
    from pipeline.models import Alert

    with service_context():
        return Alert.objects.get(rule="upload_failed", state="firing").message
