"""The campaigns' records: the feeder's ledger, the holiday calendar it honours, and Instantly's webhook
deliveries. Part of the `pipeline` app (re-exported by pipeline/models.py); tables and migrations are the app's."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from security import pii
from security.fields import EncryptedJSONField, EncryptedTextField

from ..querysets import FeederRunQuerySet, WebhookDeliveryQuerySet


class FeederRun(models.Model):
    """The feeder's ledger: one row per business day (Los Angeles date), so a day is fed at most once."""

    id = models.BigAutoField(primary_key=True)
    business_date = models.DateField()
    status = models.CharField(max_length=16, default="running")
    dry_run = models.BooleanField(default=False)
    leads_claimed = models.IntegerField(default=0)
    leads_pushed = models.IntegerField(default=0)
    leads_skipped = models.IntegerField(default=0)
    # Of the leads claimed, how many were drawn at random from all contactable leads (FEEDER_EXPLORATION_SHARE).
    leads_explored = models.IntegerField(default=0, db_default=0)
    error_message = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = FeederRunQuerySet.as_manager()

    class Meta:
        db_table = "feeder_runs"
        ordering = ["-business_date", "-started_at"]
        constraints = [
            # One real feed per business day (the ledger); dry runs leave rows of their own beside it.
            models.UniqueConstraint(
                fields=["business_date"], condition=models.Q(dry_run=False), name="feeder_runs_one_feed_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"feeder {self.business_date} ({self.status})"


class BusinessHoliday(models.Model):
    """A Los Angeles date the feeder does not feed (pipeline/campaigns/calendar.py; seeded by pipeline 0019)."""

    day = models.DateField(unique=True, help_text="The Los Angeles date on which nothing is fed")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "business_holidays"
        verbose_name = "holiday"

    def __str__(self) -> str:
        return f"{self.day:%a %Y-%m-%d} {self.name}"


class WebhookDelivery(models.Model):
    """Inbound Instantly events already applied, by the hash of (event_type, email, campaign, timestamp, step)."""

    dedupe_hash = models.CharField(max_length=64, primary_key=True)
    event_type = models.CharField(max_length=64)
    lead_email = EncryptedTextField(kind=pii.EMAIL, blank=True, default="")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = EncryptedJSONField(kind=pii.RAW_ROW, default=dict)
    received_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        db_table = "webhook_deliveries"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_type} for lead {self.lead_id or '(none)'}"  # the address is personal data
