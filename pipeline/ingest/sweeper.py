"""The upload sweeper: an upload whose ingestion task was lost is queued again, so nothing waits in silence.

A task can be lost: django-q2's Redis broker has no receipts (a killed worker's task is simply gone), and
its ORM broker hands a task out again only after `Q_CLUSTER["retry"]` (35 minutes). The sweeper runs at
cluster start and every minute after (pipeline/tasks.py `uploads_sweep_task`, pipeline/schedules.py). It
queues again each upload that is `received` or `processing`, that no worker holds (the upload's advisory
lock tells: a worker holds it from start to finish, and PostgreSQL drops it with a dead worker's connection),
and that was last queued at least `idle_seconds` ago (UPLOAD_SWEEP_IDLE_SECONDS; the wait keeps the sweeper
from racing the queue of a healthy cluster). A copy too many is harmless: a done upload returns at once, a
busy one is skipped. Each re-queue is an `upload_requeued` event on the upload's timeline.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from pipeline.intake.services import upload_enqueue
from pipeline.models import Upload, UploadStatus

from .locks import upload_lock_held

logger = logging.getLogger("pipeline.ingest")

UNFINISHED = (UploadStatus.RECEIVED, UploadStatus.PROCESSING)
SWEEP_BATCH = 200  # uploads looked at per sweep; the next sweep takes the rest


def uploads_sweep(*, idle_seconds: float) -> list[str]:
    """Queue again every unfinished upload no worker holds, last queued `idle_seconds` ago or more.

    Changes `uploads.enqueued_at`; records `upload_requeued`; enqueues on commit. Returns the upload ids."""
    cutoff = timezone.now() - dt.timedelta(seconds=idle_seconds)
    with service_context():
        candidates = list(
            Upload.objects.filter(status__in=UNFINISHED, enqueued_at__lte=cutoff)
            .order_by("enqueued_at")
            .values_list("id", "status", "broker_id", "enqueued_at")[:SWEEP_BATCH]
        )
    requeued = []
    for upload_id, status, broker_id, enqueued_at in candidates:
        if upload_lock_held(upload_id):
            continue  # a worker is on it
        with service_context():
            # Conditional on the time read above: of two sweepers at once, one queues it.
            claimed = Upload.objects.filter(pk=upload_id, status__in=UNFINISHED, enqueued_at=enqueued_at).update(
                enqueued_at=timezone.now()
            )
            if not claimed:
                continue
            idle = int((timezone.now() - enqueued_at).total_seconds())
            record_event(
                "upload_requeued",
                upload_id=upload_id,
                broker_id=broker_id,
                status="retry",
                data={"status": status, "idle_seconds": idle, "reason": "no worker held it"},
            )
            transaction.on_commit(lambda upload_id=upload_id: upload_enqueue(upload_id))
        logger.warning(
            "upload %s with no worker for %ss: queued again", status, idle, extra={"upload_id": str(upload_id)}
        )
        requeued.append(str(upload_id))
    return requeued
