"""Uploads, staging, the dead-letter queue, the replay guard, and the jobs' bookkeeping.

Names are the seed's where it has them (`leads_staging`, `pipeline_dlq`, `ingest_replay_guard`); `uploads`
and the rest are ours. The event trail (`pipeline_events`) lives in equity_connect/models.py, beside its one
recorder, because every layer writes it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from security import pii
from security.fields import EncryptedJSONField, EncryptedTextField

from .alert_models import Alert, AlertState, AlertThreshold, AlertThresholdChange  # noqa: F401 - models of this app
from .campaigns.models import BusinessHoliday, FeederRun, WebhookDelivery  # noqa: F401  (the campaigns' records)
from .fields import EncryptedRawRowField
from .querysets import JobHeartbeatQuerySet, ReplayGuardQuerySet


class UploadStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class Upload(models.Model):
    """One received file. Invariant when done:
    rows_total = leads_created + leads_merged + duplicates_in_file + rows_rejected, and
    rows_recovered <= leads_created + leads_merged (a recovered row moved from rejected to created or merged)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey("security.Partner", null=True, blank=True, on_delete=models.SET_NULL)
    partner_key = models.ForeignKey("security.PartnerKey", null=True, blank=True, on_delete=models.SET_NULL)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Staff member, for uploads made in the admin",
    )
    broker = models.ForeignKey(
        "security.Broker",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="X-Broker-Id: assign the file's leads to this broker",
    )
    source = models.CharField(max_length=200, blank=True, default="", help_text="X-Upload-Source")
    filename = models.CharField(max_length=255, blank=True, default="")
    file = models.FileField(upload_to="uploads/%Y/%m/%d/", max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    content_sha256 = models.CharField(max_length=64, db_index=True)
    encoding = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default=UploadStatus.RECEIVED)
    rows_total = models.IntegerField(default=0)
    leads_created = models.IntegerField(default=0)
    leads_merged = models.IntegerField(default=0)
    duplicates_in_file = models.IntegerField(default=0)
    rows_rejected = models.IntegerField(default=0)
    rows_recovered = models.IntegerField(default=0, db_default=0, help_text="Rejected rows fixed in the DLQ since")
    possible_duplicates = models.IntegerField(default=0, help_text="Pairs of leads this upload put up for review")
    blank_lines = models.IntegerField(default=0, help_text="Blank lines in the file (not part of rows_total)")
    unrecognised_columns = ArrayField(
        models.TextField(), default=list, blank=True, help_text="Columns we do not map (kept in the raw rows)"
    )
    columns = ArrayField(models.TextField(), default=list, blank=True, help_text="The file's header, in order")
    progress = models.FloatField(default=0.0)
    attempts = models.IntegerField(default=0)
    error_message = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True, help_text="Cancelled by a person (status failed)")
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enqueued_at = models.DateTimeField(
        db_default=Now(), editable=False, help_text="When its ingestion task was last queued (the sweeper re-queues)"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "uploads"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="uploads_status_created_idx")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """`PropStream · leads.csv · 2026-11-30 14:05`: who sent which file when (the id is on the page)."""
        sender = self.partner.name if self.partner_id else (self.source or "staff upload")
        when = f"{timezone.localtime(self.created_at):%Y-%m-%d %H:%M}" if self.created_at else "not saved"
        return f"{sender} · {self.filename or 'upload.csv'} · {when}"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class LeadStaging(models.Model):
    """One data line of an upload, as received (`raw`) and as normalised. Filled by COPY."""

    id = models.BigAutoField(primary_key=True)
    # No foreign key in the database: it would cost one deferred check per staged row at every batch's
    # commit (~15% of staging). Django still cascades an upload's deletion to its rows.
    upload = models.ForeignKey(
        Upload, on_delete=models.CASCADE, related_name="staging_rows", db_index=False, db_constraint=False
    )
    line_number = models.IntegerField()
    # The raw row of a rejected line (what the DLQ keeps), sealed by the normaliser; NULL for a valid line.
    raw = EncryptedRawRowField(null=True, blank=True)
    first_name = models.TextField(null=True, blank=True)
    last_name = models.TextField(null=True, blank=True)
    # Encrypted by the normaliser (pipeline/ingest/rows.py), as the leads' columns they become.
    email = EncryptedTextField(kind=pii.EMAIL, null=True, blank=True)
    phone = EncryptedTextField(kind=pii.PHONE, null=True, blank=True)
    # The blind indexes of e-mail and phone (security/pii.py), computed by the normaliser.
    email_bidx = models.TextField(null=True, blank=True)
    email_domain_bidx = models.TextField(null=True, blank=True)
    phone_bidx = models.TextField(null=True, blank=True)
    phone_last4_bidx = models.TextField(null=True, blank=True)
    property_address = models.TextField(null=True, blank=True)
    property_city = models.TextField(null=True, blank=True)
    property_state = models.TextField(null=True, blank=True)
    property_zip = models.TextField(null=True, blank=True)
    mak = models.TextField(null=True, blank=True)
    apn = models.TextField(null=True, blank=True)
    addr_hash = models.TextField(null=True, blank=True)
    owner2_name = models.TextField(null=True, blank=True)
    mailing_address = models.TextField(null=True, blank=True)
    mailing_city = models.TextField(null=True, blank=True)
    mailing_state = models.TextField(null=True, blank=True)
    mailing_zip = models.TextField(null=True, blank=True)
    reject_reason = models.TextField(null=True, blank=True)
    # Normalised by the ingestion while the file streams in (pipeline/ingest/staging.py).
    property_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    estimated_equity = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    property_type = models.TextField(null=True, blank=True)
    age = models.IntegerField(null=True, blank=True)
    owner_occupied = models.BooleanField(null=True, blank=True)
    email_verified = models.BooleanField(null=True, blank=True)
    phone_verified = models.BooleanField(null=True, blank=True)
    email_verification_codes = ArrayField(models.TextField(), null=True, blank=True)
    phone_verification_codes = ArrayField(models.TextField(), null=True, blank=True)
    melissa_payload = models.JSONField(null=True, blank=True, help_text="Columns we do not map, as given")
    assigned_broker_id = models.UUIDField(null=True, blank=True, help_text="From the upload or territory rules")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "leads_staging"
        verbose_name = "staging row"
        constraints = [
            models.UniqueConstraint(fields=["upload", "line_number"], name="leads_staging_upload_line_uniq"),
        ]

    def __str__(self) -> str:
        return f"line {self.line_number} of {self.upload_id}"


class DLQSource(models.TextChoices):
    UPLOAD_ROW = "upload_row"
    UPLOAD = "upload"
    INSTANTLY_PUSH = "instantly_push"
    WEBHOOK = "webhook"
    REVIEW = "review"  # a person must decide (e.g. a new owner on a lead the old owner asked not to contact)


class DLQStatus(models.TextChoices):
    OPEN = "open"
    RETRYING = "retrying"
    RESOLVED = "resolved"
    DISCARDED = "discarded"


class PipelineDLQ(models.Model):
    """Something the pipeline could not finish, kept with what a person needs to act on it."""

    id = models.BigAutoField(primary_key=True)
    source = models.CharField(max_length=32, choices=DLQSource.choices)
    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="dlq_rows")
    line_number = models.IntegerField(null=True, blank=True)
    # Encrypted at rest (security/fields.py): a raw row, a webhook delivery or a push batch holds personal data.
    payload = EncryptedJSONField(kind=pii.RAW_ROW, default=dict)
    reason = models.TextField(help_text="What is wrong, in words a person can act on")
    error_detail = models.TextField(blank=True, default="")
    broker = models.ForeignKey("security.Broker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=DLQStatus.choices, default=DLQStatus.OPEN)
    attempts = models.IntegerField(default=0)
    max_attempts = models.IntegerField(default=5)
    retry_after = models.DateTimeField(null=True, blank=True, help_text="Transient failures: retry after this")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=32, blank=True, default="", help_text="reprocessed|discarded|retried")
    resolution_note = EncryptedTextField(kind=pii.NOTES, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "pipeline_dlq"
        verbose_name = "DLQ item"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="pipeline_dlq_status_idx"),
            models.Index(fields=["upload", "line_number"], name="pipeline_dlq_upload_idx"),
            models.Index(
                fields=["retry_after"],
                name="pipeline_dlq_retry_idx",
                condition=models.Q(status__in=["open", "retrying"], retry_after__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        # Not the reason: it may quote a row's e-mail address, and this name shows on every admin page of the row.
        return f"DLQ #{self.id} {self.source}"


class PossibleDuplicateStatus(models.TextChoices):
    OPEN = "open"
    MERGED = "merged"
    KEPT_APART = "kept_apart"


class PossibleDuplicate(models.Model):
    """Two leads that may be one property: they share a key while a stronger key differs (or the match was
    ambiguous), so ingestion kept them apart and asks a person. `lead_a` < `lead_b`: one row per pair, so a
    pair decided once (merged or kept apart) is never proposed again."""

    id = models.BigAutoField(primary_key=True)
    lead_a = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    lead_b = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=16, help_text="The key they share: mak, apn or addr_hash")
    reason = models.TextField()
    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(
        max_length=16, choices=PossibleDuplicateStatus.choices, default=PossibleDuplicateStatus.OPEN
    )
    survivor = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = EncryptedTextField(kind=pii.NOTES, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "possible_duplicates"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["lead_a", "lead_b"], name="possible_duplicates_pair_uniq"),
            models.CheckConstraint(
                condition=models.Q(lead_a__lt=models.F("lead_b")), name="possible_duplicates_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="possible_duplicates_status_idx"),
            models.Index(fields=["lead_b"], name="possible_duplicates_lead_b_idx"),
            models.Index(fields=["upload"], name="possible_duplicates_upload_idx"),
        ]

    def __str__(self) -> str:
        return f"possible duplicate {self.lead_a_id} / {self.lead_b_id} ({self.status})"


class IngestReplayGuard(models.Model):
    """Content hashes each partner sent in the last REPLAY_GUARD_DAYS: the same file twice from one partner is
    a 409. Per partner, so that two partners sending the same file both get it processed and neither learns of
    the other's upload; uploads without a partner (the legacy secret, staff) share one NULL partner."""

    id = models.BigAutoField(primary_key=True)
    content_sha256 = models.CharField(max_length=64)
    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A partner's guards go with it: set to NULL they could collide with the legacy (no partner) ones.
    partner = models.ForeignKey("security.Partner", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    objects = ReplayGuardQuerySet.as_manager()

    class Meta:
        db_table = "ingest_replay_guard"
        indexes = [models.Index(fields=["created_at"], name="replay_guard_created_idx")]
        constraints = [
            # NULLS NOT DISTINCT: the no-partner uploads are one sender (pipeline/querysets.py claims on it).
            models.UniqueConstraint(
                fields=["partner", "content_sha256"], name="replay_guard_partner_content_uniq", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        return self.content_sha256


class JobHeartbeat(models.Model):
    """Last time each scheduled job (and the scheduler itself) ran: /healthz reads it."""

    name = models.CharField(max_length=64, primary_key=True)
    last_seen_at = models.DateTimeField()
    last_status = models.CharField(max_length=16, blank=True, default="")
    last_duration_ms = models.IntegerField(null=True, blank=True)

    objects = JobHeartbeatQuerySet.as_manager()

    class Meta:
        db_table = "job_heartbeats"

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen_at:%Y-%m-%d %H:%M}"


# The SMS channel's and the experiments' models live in their packages (pipeline/sms, pipeline/experiments).
from .experiments.models import Experiment, ExperimentAssignment, ExperimentVariant  # noqa: E402, F401
from .sms.models import SmsMessage  # noqa: E402, F401
