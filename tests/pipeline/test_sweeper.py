"""The upload sweeper: an upload whose task was lost is queued again (and a real cluster that starts picks it
up at once); an upload a worker holds, or one queued a moment ago, is left alone."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.ingest.locks import upload_lock_key
from pipeline.ingest.sweeper import uploads_sweep
from pipeline.models import Upload
from tests.pg import connect as second_connection
from tests.pipeline.ingest_helpers import accept, csv_of
from tests.processes import app_env
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def lost_upload(rows: int = 20, *, idle_minutes: float = 3, status: str = "received") -> Upload:
    """An accepted upload whose task never reached a worker (accept() does not enqueue), queued long ago."""
    street = uuid.uuid4().hex[:8]  # a file of its own (the replay guard refuses the same content twice)
    body = csv_of(
        [{"mak": f"{street}{i}", "property_address": f"{i} {street} St", "property_zip": "92101"} for i in range(rows)]
    )
    upload = accept(body)
    with service_context():
        Upload.objects.filter(pk=upload.pk).update(
            status=status, enqueued_at=timezone.now() - dt.timedelta(minutes=idle_minutes)
        )
    return upload


def queued_uploads() -> list[str]:
    return [q.task["args"][0] for q in OrmQ.objects.all() if q.task["func"] == "pipeline.tasks.upload_process"]


def requeued_events(upload) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(event_type="upload_requeued", upload_id=upload.pk))


def test_a_lost_upload_is_queued_again_once():
    lost = lost_upload()
    stalled = lost_upload(status="processing")  # its worker died: PostgreSQL dropped the lock with it
    fresh = lost_upload(idle_minutes=0.5)  # queued 30 s ago: its task is probably on its way

    first = uploads_sweep(idle_seconds=120)
    second = uploads_sweep(idle_seconds=120)  # a sweeper right after (or at the same time) queues nothing

    assert sorted(first) == sorted([str(lost.pk), str(stalled.pk)]) and second == []
    assert sorted(queued_uploads()) == sorted([str(lost.pk), str(stalled.pk)])
    [event] = requeued_events(lost)
    assert event.status == "retry" and event.event_data["status"] == "received"
    assert event.event_data["idle_seconds"] >= 180
    assert requeued_events(fresh) == []


def test_an_upload_a_worker_holds_is_left_alone():
    held = lost_upload(status="processing")
    worker = second_connection()  # another session holds the upload's lock, as a live worker does
    try:
        worker.execute("SELECT pg_advisory_lock(%s)", [upload_lock_key(held.pk)])

        assert uploads_sweep(idle_seconds=120) == []
        assert queued_uploads() == []
    finally:
        worker.close()
    assert uploads_sweep(idle_seconds=120) == [str(held.pk)]  # its worker is gone: now it is lost


def _cluster(tmp_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=app_env(tmp_path, UPLOAD_SWEEP_START_IDLE_SECONDS="0", Q_WORKERS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_cluster_that_starts_finishes_the_upload_whose_task_was_lost(tmp_path):
    Schedule.objects.all().delete()  # only the start-up sweep may act here
    lost = lost_upload(rows=50, idle_minutes=1)
    cluster = _cluster(tmp_path)
    try:

        def done():
            with service_context():
                return Upload.objects.filter(pk=lost.pk, status="done").exists() or cluster.poll() is not None

        wait_for(done, timeout=120, interval=0.5, message="the started cluster finished the lost upload")
        assert cluster.poll() is None, cluster.stderr.read().decode()[-3000:]
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
    with service_context():
        upload = Upload.objects.get(pk=lost.pk)
        assert (upload.status, upload.leads_created) == ("done", 50)
        assert Lead.objects.filter(source_upload_id=lost.pk).count() == 50
        assert PipelineEvent.objects.filter(event_type="dedupe_success", upload_id=lost.pk).count() == 1
    assert len(requeued_events(lost)) >= 1
