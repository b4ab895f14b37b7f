"""Accepting an upload (DESIGN §6/§7 step 1): the replay guard, the `uploads` row with the raw file,
`upload_received`, and the ingestion task enqueued on commit. Used by the signed API and the admin.

Also the body spool the API streams into: hashed while read, on disk past INGEST_SPOOL_BYTES, never
held twice in memory.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.utils import timezone

from equity_connect.events import record_event
from pipeline.models import Upload

CHUNK = 256 * 1024


class UploadRejected(Exception):
    """The upload is refused; `status` is the HTTP status, the message is safe to show."""

    def __init__(self, message: str, *, status: int = 400, reason: str = "invalid", upload_id=None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.upload_id = upload_id


class UploadDuplicate(UploadRejected):
    def __init__(self, upload_id):
        super().__init__("this content was already received", status=409, reason="replay", upload_id=upload_id)


class UploadTooLarge(UploadRejected):
    def __init__(self):
        super().__init__(
            f"the body is over the limit of {settings.UPLOAD_MAX_BYTES} bytes", status=413, reason="too_large"
        )


@dataclass
class SpooledBody:
    file: BinaryIO
    size: int
    sha256: str
    extra_digests: dict[str, str]


def body_spool(read, *, max_bytes: int, hashers: dict | None = None) -> SpooledBody:
    """Read `read(n)` to the end into a spool (memory, then disk past INGEST_SPOOL_BYTES), computing its
    SHA-256 and any extra incremental hashers (the v1 HMAC) on the way. Raises UploadTooLarge."""
    spool = tempfile.SpooledTemporaryFile(max_size=settings.INGEST_SPOOL_BYTES)  # noqa: SIM115 (returned)
    sha = hashlib.sha256()
    hashers = hashers or {}
    size = 0
    try:
        while chunk := read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge()
            sha.update(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return SpooledBody(spool, size, sha.hexdigest(), {name: h.hexdigest() for name, h in hashers.items()})


def _enqueue(upload_id) -> None:
    from django_q.tasks import async_task

    async_task("pipeline.tasks_ingest.upload_process", str(upload_id), task_name=f"upload {upload_id}", group="ingest")


def upload_accept(
    *,
    body: BinaryIO,
    content_sha256: str,
    size_bytes: int,
    filename: str = "",
    source: str = "",
    partner=None,
    partner_key=None,
    broker=None,
    uploaded_by=None,
    enqueue: bool = True,
) -> Upload:
    """Store the file, claim its content hash in `ingest_replay_guard`, create the `uploads` row and
    enqueue the ingestion on commit. Records `upload_received` (no body, no secret).

    Runs in the caller's database context (service role). Raises UploadDuplicate (409) with the earlier
    upload's id when the same content arrived within REPLAY_GUARD_DAYS."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Race-free claim: one of two concurrent identical uploads inserts, the other waits on the
            # unique key and then sees the conflict. An entry older than the window is taken over.
            cursor.execute(
                "INSERT INTO ingest_replay_guard (content_sha256, partner_id, created_at) VALUES (%s, %s, now())"
                " ON CONFLICT (content_sha256) DO UPDATE SET created_at = now(), upload_id = NULL,"
                "  partner_id = EXCLUDED.partner_id"
                "  WHERE ingest_replay_guard.created_at < now() - make_interval(days => %s)"
                " RETURNING content_sha256",
                [content_sha256, getattr(partner, "pk", None), settings.REPLAY_GUARD_DAYS],
            )
            claimed = cursor.fetchone() is not None
            if not claimed:
                cursor.execute("SELECT upload_id FROM ingest_replay_guard WHERE content_sha256 = %s", [content_sha256])
                row = cursor.fetchone()
                raise UploadDuplicate(row[0] if row else None)
        effective_broker = broker or getattr(partner_key, "default_broker", None)
        upload = Upload(
            partner=partner,
            partner_key=partner_key,
            uploaded_by=uploaded_by,
            broker=effective_broker,
            source=source[:200],
            filename=(filename or "upload.csv")[:255],
            size_bytes=size_bytes,
            content_sha256=content_sha256,
        )
        upload.file.save(f"{content_sha256[:16]}.csv", File(body), save=False)
        stored_path = upload.file.name
        try:
            upload.save()
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE ingest_replay_guard SET upload_id = %s WHERE content_sha256 = %s",
                    [str(upload.id), content_sha256],
                )
            if partner_key is not None:
                type(partner_key).objects.filter(pk=partner_key.pk).update(last_used_at=timezone.now())
            record_event(
                "upload_received",
                upload_id=upload.id,
                broker_id=getattr(effective_broker, "pk", None),
                data={
                    "size_bytes": size_bytes,
                    "content_sha256": content_sha256,
                    "source": source[:200],
                    "key_id": getattr(partner_key, "key_id", None),
                    "partner": getattr(partner, "name", None),
                    "staff_user": getattr(uploaded_by, "pk", None),
                },
            )
        except BaseException:
            upload.file.storage.delete(stored_path)
            raise
        if enqueue:
            upload_id = upload.id
            transaction.on_commit(lambda: _enqueue(upload_id))
    return upload
