"""The event trail every layer writes: `pipeline_events` (the seed's table name).

It lives at the bottom of the import order, beside its one recorder (equity_connect/events.py), so that
security (partner keys), leads (consent, portal actions) and pipeline (ingestion, jobs, webhooks) record
events the same way without importing each other. Event types: equity_connect/events.py `EVENT_TYPES`.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class EventStatus(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"
    RETRY = "retry"


class PipelineEvent(models.Model):
    """The audit trail and the funnel's source. Written only through equity_connect/events.py (append-only).

    The table is partitioned by month on `created_at` (pipeline migration 0018): in the database its primary key
    is (id, created_at), as PostgreSQL requires of a partitioned table; `id` comes from one identity sequence and
    is unique on its own, so Django keeps it as the model's primary key. Filter on `created_at` where you can:
    the planner then reads only the months asked for."""

    id = models.BigAutoField(primary_key=True)
    event_type = models.CharField(max_length=64)
    lead_id = models.UUIDField(null=True, blank=True)
    broker_id = models.UUIDField(null=True, blank=True)
    upload_id = models.UUIDField(null=True, blank=True)
    event_data = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()))
    duration_ms = models.IntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.SUCCESS, db_default="success"
    )
    error_message = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "pipeline_events"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["event_type", "created_at"], name="pipeline_events_type_idx"),
            models.Index(
                fields=["lead_id", "created_at"],
                name="pipeline_events_lead_idx",
                condition=models.Q(lead_id__isnull=False),
            ),
            models.Index(
                fields=["broker_id", "created_at"],
                name="pipeline_events_broker_idx",
                condition=models.Q(broker_id__isnull=False),
            ),
            models.Index(
                fields=["upload_id"], name="pipeline_events_upload_idx", condition=models.Q(upload_id__isnull=False)
            ),
            models.Index(fields=["created_at"], name="pipeline_events_created_idx"),
            # The funnel's "fed, then replied / booked" (pipeline/monitoring/dashboard.py) from the index alone in
            # every monthly partition: only these three event types (created by pipeline migration 0018).
            models.Index(
                fields=["event_type", "lead_id"],
                include=["broker_id", "created_at"],
                condition=models.Q(
                    event_type__in=["campaign_added", "email_replied", "appointment_booked"], lead_id__isnull=False
                ),
                name="pipeline_events_outcome_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.status}) at {self.created_at:%Y-%m-%d %H:%M}"


class Throttle(models.Model):
    """One rate limit's counter for one key (a client address, an e-mail address; stored as a digest): how many
    hits its current window has seen. In PostgreSQL so every web process shares it; written only through
    equity_connect/throttle.py (one atomic upsert per hit)."""

    id = models.BigAutoField(primary_key=True)
    scope = models.CharField(max_length=32)
    key_digest = models.CharField(max_length=64)
    window_started_at = models.DateTimeField()
    hits = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key_digest"], name="throttle_scope_key_uniq")]
        indexes = [models.Index(fields=["window_started_at"], name="throttle_window_idx")]

    def __str__(self) -> str:
        return f"{self.scope}: {self.hits} since {self.window_started_at:%Y-%m-%d %H:%M}"
