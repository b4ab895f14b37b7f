"""Accepting an upload: the replay guard, the `uploads` row with the raw file, `upload_received`, and the
ingestion task enqueued on commit. The signed API and the admin's "Upload a CSV" both call `upload_accept`.
"""

from __future__ import annotations

import uuid
from typing import BinaryIO

from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from equity_connect.events import record_event
from pipeline.models import IngestReplayGuard, Upload
from security.models import Broker

# Reason classes of `upload_rejected` events (`event_data["reason"]`, with the answer's `http_status`) that
# the alerts and /metrics count: a 401 means the signature, key or timestamp did not verify
# (security/upload_verification.py); a 409 is a replay of content received in the last REPLAY_GUARD_DAYS.
SIGNATURE_FAILURE_REASONS = frozenset(
    {"bad_signature", "v1_not_allowed", "unknown_key", "revoked_key", "timestamp_out_of_window"}
)
SIGNATURE_FAILURE_STATUS = 401
DUPLICATE_REASONS = frozenset({"replay"})
DUPLICATE_STATUS = 409


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


def upload_enqueue(upload_id) -> None:
    # By the task's dotted name: the worker runs pipeline/tasks.py `upload_process`.
    async_task("pipeline.tasks.upload_process", str(upload_id), task_name=f"upload {upload_id}", group="ingest")


def upload_broker_resolve(*, value: str | None, partner_key=None, signature_verified: bool = True) -> Broker | None:
    """The broker an `X-Broker-Id` header names, when the signing key may route to it (None when the header
    is empty, or ignored: a request the rollback escape hatch let through unsigned gets the key's default
    broker only, so an unsigned request cannot choose whose portal its leads land in).

    Raises UploadRejected: 400 for a value that is not a UUID or not an active broker, 403 for a broker the
    key may not route to (not its default broker and not in its `allowed_brokers`). Requests signed with the
    legacy single secret have no key and so no list: they may name any active broker."""
    value = (value or "").strip()
    if not value or not signature_verified:
        return None
    try:
        broker_id = uuid.UUID(value)
    except ValueError as error:
        raise UploadRejected("X-Broker-Id is not a UUID", reason="malformed_header") from error
    if partner_key is not None and not partner_key.may_route_to(broker_id):
        raise UploadRejected(
            "X-Broker-Id names a broker this key may not send leads to; ask us to add the broker to your key",
            status=403,
            reason="broker_not_allowed",
        )
    # The API may read no more of a broker than its id and whether it is active.
    broker = Broker.objects.active().filter(pk=broker_id).only("id").order_by("id").first()
    if broker is None:
        raise UploadRejected("X-Broker-Id is not an active broker", reason="unknown_broker")
    return broker


def upload_rejection_record(*, reason: str, http_status: int, method: str, path: str, key_id: str | None) -> None:
    """Record `upload_rejected` for a refused request: the reason class, key id, method and path — never a
    secret, a signature or the body. The HMAC-failure-rate and duplicate-rate alerts count these."""
    record_event(
        "upload_rejected",
        status="failure",
        error_message=reason,
        data={"reason": reason, "key_id": key_id, "method": method, "path": path, "http_status": http_status},
    )


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
    """Store the file, claim its content hash for its partner in `ingest_replay_guard`, create the `uploads` row and
    enqueue the ingestion on commit. Records `upload_received` (no body, no secret).

    Runs in the caller's database context (service role). Raises UploadDuplicate (409) with the earlier
    upload's id when the same partner (or, without a partner, the same no-partner sender) sent the same
    content within REPLAY_GUARD_DAYS; another partner's upload of the same bytes is accepted and never named."""
    with transaction.atomic():
        guard_id = IngestReplayGuard.objects.claim(content_sha256=content_sha256, partner=partner)
        if guard_id is None:
            raise UploadDuplicate(
                IngestReplayGuard.objects.upload_id_for(content_sha256=content_sha256, partner=partner)
            )
        effective_broker = broker or getattr(partner_key, "default_broker", None)
        upload = Upload(
            partner=partner,
            partner_key=partner_key,
            uploaded_by=uploaded_by,
            broker=effective_broker,
            source=(source or getattr(partner, "name", ""))[:200],
            filename=(filename or "upload.csv")[:255],
            size_bytes=size_bytes,
            content_sha256=content_sha256,
        )
        upload.file.save(f"{content_sha256[:16]}.csv", File(body), save=False)
        stored_path = upload.file.name
        try:
            upload.save()
            IngestReplayGuard.objects.filter(pk=guard_id).update(upload=upload)
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
            transaction.on_commit(lambda: upload_enqueue(upload_id))
    return upload
