"""A broker's own portal rows: their settings (notifications on or off, the list's columns) and their
notifications (a lead of theirs replied, booked an appointment or gave consent). Re-exported by leads/models.py."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class BrokerPortalSettings(models.Model):
    """A broker's own portal settings (one row, made on first change): e-mail notifications on or off, the lead
    list's columns, and when the last notification e-mail went (the batch job's pace). Written only by
    leads/preferences.py; RLS lets a broker read and write their own row (migration 0018)."""

    broker = models.OneToOneField("security.Broker", primary_key=True, on_delete=models.CASCADE, related_name="+")
    notify_by_email = models.BooleanField(default=True, db_default=True)
    list_columns = ArrayField(models.TextField(), default=list, db_default=models.Value([]), blank=True)
    notifications_mailed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "broker_portal_settings"
        verbose_name_plural = "broker portal settings"

    def __str__(self) -> str:
        return f"portal settings of {self.broker_id}"


class BrokerNotification(models.Model):
    """One thing a broker is told about: a lead of theirs replied, booked an appointment or gave consent. A
    trigger on `pipeline_events` adds the row (migration 0018), whoever recorded the event; the batch job
    (leads/notifications.py) e-mails them, the portal's badge counts those not seen."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.BigIntegerField(unique=True)
    broker = models.ForeignKey("security.Broker", on_delete=models.CASCADE, related_name="+", db_index=False)
    lead_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    mailed_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "broker_notifications"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["broker", "-created_at"], name="broker_notifications_idx"),
            # The batch job's work list: only rows not yet mailed.
            models.Index(
                fields=["broker", "created_at"],
                name="broker_notifications_unmailed",
                condition=models.Q(mailed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} for {self.broker_id}"
