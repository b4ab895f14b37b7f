"""Texts sent and received (`sms_messages`). Imported by pipeline/models.py, so Django sees it as the pipeline
app's model."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from security import pii
from security.fields import EncryptedTextField


class SmsDirection(models.TextChoices):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class SmsKind(models.TextChoices):
    FIRST = "first", "first message (the feed)"
    REPLY = "reply", "reply"
    OPT_OUT = "opt_out", "opt-out word (STOP …)"
    OPT_IN = "opt_in", "opt-in word (START …)"


class SmsReview(models.TextChoices):
    PENDING = "pending", "to review: may be an opt-out"
    OPTED_OUT = "opted_out", "reviewed: opted out"
    DISMISSED = "dismissed", "reviewed: not an opt-out"


# Twilio's message statuses, and ours: `pending` (row written, request not answered yet), `not_sent` (a
# transient failure: the lead is offered again later), `uncertain` (the request timed out: Twilio may have sent
# it; never sent again).
SMS_STATUSES = (
    "pending",
    "not_sent",
    "uncertain",
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "canceled",
    "read",
    "received",
)


class SmsMessage(models.Model):
    """One text: a first message the feed sent (outbound) or a text a person sent us (inbound). The body is
    encrypted (a reply is the person's own words); the phone too, with its blind index for lookups."""

    id = models.BigAutoField(primary_key=True)
    direction = models.CharField(max_length=8, choices=SmsDirection.choices)
    kind = models.CharField(max_length=8, choices=SmsKind.choices)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="sms_messages"
    )
    broker_id = models.UUIDField(null=True, blank=True)
    phone = EncryptedTextField(kind=pii.PHONE, help_text="The lead's number (E.164)")
    phone_bidx = models.CharField(max_length=40, editable=False)
    body = EncryptedTextField(kind=pii.NOTES, blank=True, default="")
    twilio_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    status = models.CharField(max_length=16, default="pending")
    error = models.TextField(blank=True, default="", db_default="")
    error_code = models.IntegerField(null=True, blank=True)
    business_date = models.DateField(null=True, blank=True, help_text="Los Angeles date of a first message")
    review = models.CharField(max_length=16, choices=SmsReview.choices, blank=True, default="", db_default="")
    reviewed_by_name = models.TextField(blank=True, default="", db_default="")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "sms_messages"
        verbose_name = "text message"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=SMS_STATUSES), name="sms_messages_status_valid"),
            # A lead gets one first text, ever (a transient failure may be tried again).
            models.UniqueConstraint(
                fields=["lead"],
                condition=models.Q(kind="first") & ~models.Q(status="not_sent"),
                name="sms_messages_one_first_per_lead",
            ),
        ]
        indexes = [
            models.Index(fields=["phone_bidx", "-created_at"], name="sms_messages_phone_idx"),
            models.Index(fields=["business_date"], name="sms_messages_day_idx", condition=models.Q(kind="first")),
            models.Index(fields=["created_at"], name="sms_messages_review_idx", condition=models.Q(review="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} text #{self.pk} ({self.status})"
