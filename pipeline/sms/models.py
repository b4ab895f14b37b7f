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
    FOLLOW_UP = "followup", "follow-up (SMS_SEQUENCE)"
    REPLY = "reply", "reply"
    OPT_OUT = "opt_out", "opt-out word (STOP …)"
    OPT_IN = "opt_in", "opt-in word (START …)"


class SmsReview(models.TextChoices):
    PENDING = "pending", "to review: may be an opt-out"
    OPTED_OUT = "opted_out", "reviewed: opted out"
    DISMISSED = "dismissed", "reviewed: not an opt-out"


class SmsSendState(models.TextChoices):
    """Where an outbound text is in the outbox (`status` is Twilio's view of it once Twilio answered)."""

    QUEUED = "queued", "queued: committed, Twilio not asked yet"
    SENDING = "sending", "sending: Twilio asked, its answer not recorded yet"
    SENT = "sent", "sent: Twilio accepted it (sid recorded)"
    REFUSED = "refused", "refused by Twilio (final)"
    NOT_SENT = "not_sent", "not sent (offered again)"
    UNKNOWN = "unknown", "unknown: Twilio may have sent it; ops decide"


# Twilio's message statuses, and ours: `pending` (row written, request not answered yet), `not_sent` (a
# transient failure: the lead is offered again later), `uncertain` (the request timed out: Twilio may have sent
# it; never sent again).
# The statuses Twilio gives an outbound message (its answer to the send, and its status callbacks).
TWILIO_SEND_STATUSES = (
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "canceled",
)
SMS_STATUSES = ("pending", "not_sent", "uncertain", *TWILIO_SEND_STATUSES, "read", "received")


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
    business_date = models.DateField(null=True, blank=True, help_text="Los Angeles date of an outbound text")
    step = models.PositiveSmallIntegerField(
        default=0, db_default=0, help_text="0: the first text; n: SMS_SEQUENCE[n-1]"
    )
    send_state = models.CharField(
        max_length=8, choices=SmsSendState.choices, blank=True, default="", db_default="", help_text="outbound only"
    )
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    sending_at = models.DateTimeField(null=True, blank=True, help_text="when Twilio was asked (the database clock)")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="when Twilio accepted it (the run's clock)")
    body_erased_at = models.DateTimeField(null=True, blank=True, help_text="SMS_BODY_RETENTION_DAYS emptied it")
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
            # One text per step of the sequence, ever (a transient failure may be tried again).
            models.UniqueConstraint(
                fields=["lead", "step"],
                condition=models.Q(kind="followup") & ~models.Q(status="not_sent"),
                name="sms_messages_one_per_step",
            ),
        ]
        indexes = [
            models.Index(fields=["phone_bidx", "-created_at"], name="sms_messages_phone_idx"),
            models.Index(fields=["business_date"], name="sms_messages_day_idx", condition=models.Q(kind="first")),
            models.Index(fields=["created_at"], name="sms_messages_review_idx", condition=models.Q(review="pending")),
            models.Index(
                fields=["send_state"],
                name="sms_messages_outbox_idx",
                condition=models.Q(send_state__in=["queued", "sending", "unknown"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} text #{self.pk} ({self.status})"
