"""Many machines, one database (deploy/compose.yaml, run without Docker): web servers and two task clusters on a
real Redis broker, with the database straight or behind a real PgBouncer in transaction mode.

- four concurrent signed uploads through one web process, two clusters: all done, counts add up, one lead per
  key, no deadlock (five rounds), on both lanes; an upload stored by one machine is processed by the other;
- a worker killed mid-apply on Redis (its task is gone: the broker has no receipts): the sweeper queues the
  upload again and it finishes exactly once;
- two clusters run each due schedule once, and the feeder feeds a business day once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import signal
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.utils import timezone
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.models import Schedule, Task
from django_q.status import Stat

from clients.upload_leads import request
from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest.locks import APPLY_LOCK
from pipeline.models import Upload
from pipeline.schedules import SCHEDULES, next_run_after, schedules_sync
from tests.factories import PartnerKeyFactory
from tests.fakes.instantly import FakeInstantly
from tests.pg import backend_pid, blocked_by
from tests.pg import connect as second_connection
from tests.pipeline.ingest_helpers import assert_invariant
from tests.pipeline.jobs_support import CAMPAIGN_ID, mv_refresh, queued_leads
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
UPLOADS, ROWS, SHARED = 4, 500, 50  # each file: 450 keys of its own and the 50 keys all four share (10%)


def machines(tmp_path: Path) -> tuple[Path, Path]:
    """Two "machines" whose MEDIA_ROOTs are two paths to one shared folder (as two mounts of one share)."""
    shared = tmp_path / "shared-media"
    shared.mkdir()
    a, b = tmp_path / "machine-a-media", tmp_path / "machine-b-media"
    a.symlink_to(shared, target_is_directory=True)
    b.symlink_to(shared, target_is_directory=True)
    return a, b


def upload_file(tag: str, index: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["MAK", "Address", "City", "State", "Zip", "Owner 1 First Name", "Phone 1"])
    for row in range(ROWS):
        own = row < ROWS - SHARED
        key = f"{tag}-F{index}-{row}" if own else f"{tag}-S-{row}"
        number = abs(hash(key)) % 9_000_000 + 1_000_000
        writer.writerow(
            [
                key,
                f"{row} {tag} {'Own' if own else 'Shared'} {index if own else ''} St".replace("  ", " "),
                "Fresno",
                "CA",
                "93650",
                f"Owner{row}",
                f"559{number:07d}",
            ]
        )
    return buffer.getvalue().encode()


def send(base: str, key, body: bytes) -> str:
    status, answer = request(
        f"{base}/api/v1/uploads", method="POST", body=body, secret=key.plain_secret, key_id=key.key_id, retries=2
    )
    assert status == 202, answer
    return answer["upload_id"]


def all_done(upload_ids: list[str], lane) -> bool:
    with service_context():
        statuses = list(Upload.objects.filter(pk__in=upload_ids).values_list("status", flat=True))
    assert "failed" not in statuses, lane.log_tail()
    return len(statuses) == len(upload_ids) and set(statuses) == {"done"}


def quiet_schedules() -> None:
    """Only the uploads here: no scheduled job runs during the test (the clusters' start-up sweep still does)."""
    Schedule.objects.all().delete()


def test_four_concurrent_uploads_through_one_web_process_and_two_clusters(lane, tmp_path):
    quiet_schedules()
    media_a, media_b = machines(tmp_path)
    key = PartnerKeyFactory()
    web = lane.web(media_a)

    # Machine b's cluster alone: the file that machine a's web server stored is processed on machine b.
    lane.cluster(media_b, service_name="worker-2")
    first = send(web, key, upload_file("first", 0))
    wait_for(lambda: all_done([first], lane), timeout=120, interval=0.2, message=lane.log_tail)

    lane.cluster(media_a, service_name="worker-1")
    for round_number in range(5):
        tag = f"R{round_number}"
        bodies = [upload_file(tag, index) for index in range(UPLOADS)]
        with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
            upload_ids = list(pool.map(lambda body: send(web, key, body), bodies))
        wait_for(lambda ids=upload_ids: all_done(ids, lane), timeout=180, interval=0.2, message=lane.log_tail)

        distinct = UPLOADS * (ROWS - SHARED) + SHARED
        with service_context():
            uploads = list(Upload.objects.filter(pk__in=upload_ids))
            leads = Lead.objects.filter(mak__startswith=f"{tag}-")
            lead_count, distinct_maks = leads.count(), leads.values("mak").distinct().count()
            successes = PipelineEvent.objects.filter(event_type="dedupe_success", upload_id__in=upload_ids).count()
        for upload in uploads:
            assert_invariant(upload)
            assert (upload.rows_total, upload.rows_rejected, upload.duplicates_in_file) == (ROWS, 0, 0)
            assert upload.attempts == 1  # no run started again: no deadlock, no lost connection
        assert lead_count == distinct_maks == distinct  # one lead per key, however the four raced
        assert sum(upload.leads_created for upload in uploads) == distinct
        assert sum(upload.leads_merged for upload in uploads) == UPLOADS * ROWS - distinct
        assert successes == UPLOADS
    with service_context():
        assert not Upload.objects.exclude(status="done").exists()
    # No upload lock outlives its upload (e.g. on a pooled server session). A worker holds it a moment past the
    # upload's `done`, for the sweep after commit (cross-upload possible duplicates), then lets it go.
    wait_for(lambda: advisory_locks_held() == [], timeout=60, interval=0.2, message=lambda: str(advisory_locks_held()))
    assert advisory_locks_held() == []
    if lane.pgbouncer:
        assert lane.pgbouncer.logins() > 0  # the machines did talk to the database through PgBouncer


def advisory_locks_held() -> list[tuple]:
    with second_connection(admin=True) as other:
        return other.execute(
            "SELECT l.objid, a.application_name, a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND a.datname = current_database()"
        ).fetchall()


def worker_pids(redis_url: str) -> list[int]:
    """The task cluster's worker processes, as its sentinel reports them to the broker (django-q2's Stat)."""
    broker = RedisBroker.__new__(RedisBroker)
    broker.list_key, broker._info = "unused", None
    broker.connection = redis.from_url(redis_url)
    return [pid for stat in Stat.get_all(broker) for pid in stat.workers]


def test_a_worker_killed_mid_apply_on_redis_is_swept_and_the_upload_finishes_once(redis_lane, tmp_path):
    quiet_schedules()
    schedules_sync()
    Schedule.objects.exclude(name="uploads_sweep").delete()  # the sweeper alone, every minute
    key = PartnerKeyFactory()
    web = redis_lane.web(tmp_path)
    redis_lane.cluster(tmp_path, Q_WORKERS="1", UPLOAD_SWEEP_IDLE_SECONDS="5")
    with connection.cursor() as cursor:  # the worker will stage every row, then wait for this inside its apply
        cursor.execute("SELECT pg_advisory_lock(%s)", [APPLY_LOCK])
    holder = backend_pid()
    try:
        upload_id = send(web, key, upload_file("killed", 0))
        wait_for(lambda: blocked_by(holder), timeout=120, interval=0.2, message=redis_lane.log_tail)
        [worker] = wait_for(lambda: worker_pids(redis_lane.redis.url), timeout=30, message="the cluster's stats")
        os.kill(worker, signal.SIGKILL)  # mid-apply; Redis has no receipt, so its task is gone with it
        wait_for(lambda: not blocked_by(holder), timeout=60, message="the killed worker's backend went away")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [APPLY_LOCK])
    with service_context():
        assert Upload.objects.get(pk=upload_id).status == "processing"
        assert not Lead.objects.filter(source_upload_id=upload_id).exists()  # nothing half-applied

    wait_for(lambda: all_done([upload_id], redis_lane), timeout=180, interval=0.5, message=redis_lane.log_tail)
    with service_context():
        upload = Upload.objects.get(pk=upload_id)
        events = list(PipelineEvent.objects.filter(upload_id=upload_id).values_list("event_type", flat=True))
        leads = Lead.objects.filter(source_upload_id=upload_id).count()
    assert_invariant(upload)
    assert (upload.rows_total, upload.leads_created, leads) == (ROWS, ROWS, ROWS)
    assert upload.attempts == 2  # the killed run, and the one the sweeper's re-queue started
    assert events.count("dedupe_success") == 1 and events.count("upload_requeued") >= 1


def last_business_morning() -> dt.datetime:
    """The latest Monday to Friday 06:00 Los Angeles before now (the feeder's slot), in UTC."""
    day = timezone.now().astimezone(LA).date()
    while True:
        slot = dt.datetime.combine(day, dt.time(6, 0), tzinfo=LA)
        if day.weekday() < 5 and slot < timezone.now():
            return slot.astimezone(dt.UTC)
        day -= dt.timedelta(days=1)


def test_two_clusters_run_each_due_schedule_once_and_feed_a_business_day_once(redis_lane, tmp_path):
    quiet_schedules()
    schedules_sync()
    slot = last_business_morning()
    # Every job is due; the feeder twice for one day (its schedule and a one-off, as when an operator also
    # triggers it): two clusters race for them.
    Schedule.objects.update(next_run=slot)
    feeder = Schedule.objects.get(name="campaign_feeder")
    Schedule.objects.create(
        name="campaign_feeder_by_hand",
        func=feeder.func,
        schedule_type=Schedule.ONCE,
        next_run=slot,
        intended_date_kwarg="intended_date",
    )
    fed = queued_leads(30)
    mv_refresh()  # the feeder reads the contactable view: refreshed before the race, whichever job goes first
    media_a, media_b = machines(tmp_path)
    with FakeInstantly() as instantly:
        env = {
            "INSTANTLY_API_URL": instantly.url,
            "INSTANTLY_API_KEY": instantly.api_key,
            "INSTANTLY_CAMPAIGN_ID": CAMPAIGN_ID,
        }
        redis_lane.cluster(media_a, service_name="worker-1", **env)
        redis_lane.cluster(media_b, service_name="worker-2", **env)
        names = [spec.name for spec in SCHEDULES]

        def ran(name: str) -> int:
            return Task.objects.filter(group=name).count()

        wait_for(
            lambda: all(ran(name) for name in [*names, "campaign_feeder_by_hand"]),
            timeout=240,
            interval=1,
            message=lambda: f"{ {name: ran(name) for name in names} }\n{redis_lane.log_tail()}",
        )
        # Both schedulers have had their turns since (each polls every ~30 s): the sweep's next two slots ran.
        wait_for(lambda: ran("uploads_sweep") >= 3, timeout=240, interval=1, message=redis_lane.log_tail)
        received = instantly.lead_adds_received()
    # The due slot ran once: no second run of a job before its next slot (the frequent ones, alerts every five
    # minutes and the sweep every minute, may well have reached their next slot during the test).
    runs_in_the_due_slot = {}
    for spec in SCHEDULES:
        started = sorted(Task.objects.filter(group=spec.name).values_list("started", flat=True))
        next_slot = next_run_after(spec.cron, started[0])
        runs_in_the_due_slot[spec.name] = sum(1 for instant in started if instant < next_slot)
    assert runs_in_the_due_slot == dict.fromkeys(runs_in_the_due_slot, 1)
    assert ran("campaign_feeder_by_hand") == 1
    assert len(received) == len(fed) and set(received.values()) == {1}  # each lead sent once: one feed that day
    with service_context():
        runs = list(PipelineEvent.objects.filter(event_type="feeder_run").values_list("event_data", flat=True))
        skipped = PipelineEvent.objects.filter(event_type="job_skipped", event_data__job="campaign_feeder").count()
        active = Lead.objects.filter(pk__in=[lead.pk for lead in fed], campaign_status="active").count()
    assert [run["fed"] for run in runs] == [len(fed)] and skipped == 1
    assert active == len(fed)
