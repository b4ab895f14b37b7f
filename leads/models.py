"""Leads, consent, the verification-code map and the contact windows.

Table and column names are the seed's: its SQL runs against them verbatim. What Django cannot
declare (the `campaign_status` enum type, row-level security, the materialized view, SQL functions and
triggers) lives in RunSQL migrations.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from security import pii
from security.fields import EncryptedTextField

from .compliance.zones import STATE_ZONES
from .fields import PgEnumField
from .querysets import LeadQuerySet
from .statuses import CampaignStatus


class Lead(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    first_name = models.TextField(null=True, blank=True)
    last_name = models.TextField(null=True, blank=True)
    # Encrypted at rest (security/fields.py): exact lookups go through the blind indexes below.
    email = EncryptedTextField(kind=pii.EMAIL, null=True, blank=True)
    phone = EncryptedTextField(kind=pii.PHONE, null=True, blank=True, help_text="E.164")
    # Keyed blind indexes (security/pii.py) for exact lookups of the e-mail, its domain, the phone and its last
    # four digits: written where rows are normalised, by the services that change a contact, and by the sweep
    # for rows the seed's `upsert_lead()` wrote (leads/contact_indexes.py).
    email_bidx = models.CharField(max_length=40, null=True, blank=True, editable=False)
    email_domain_bidx = models.CharField(max_length=40, null=True, blank=True, editable=False)
    phone_bidx = models.CharField(max_length=40, null=True, blank=True, editable=False)
    phone_last4_bidx = models.CharField(max_length=40, null=True, blank=True, editable=False)
    property_address = models.TextField(null=True, blank=True)
    property_city = models.TextField(null=True, blank=True)
    property_state = models.CharField(max_length=2, null=True, blank=True)
    property_zip = models.CharField(max_length=10, null=True, blank=True)
    property_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    estimated_equity = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    property_type = models.TextField(null=True, blank=True)
    age = models.IntegerField(null=True, blank=True)
    owner_occupied = models.BooleanField(null=True, blank=True)
    assigned_broker = models.ForeignKey(
        "security.Broker", null=True, blank=True, on_delete=models.SET_NULL, related_name="leads", db_index=False
    )
    lead_score = models.IntegerField(null=True, blank=True, default=0, db_default=0)
    score_breakdown = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)
    status = models.TextField(null=True, blank=True, help_text="Legacy free-text status (before campaign_status)")
    campaign_status = PgEnumField(
        enum_name="campaign_status",
        choices=CampaignStatus.choices,
        null=True,
        blank=True,
        default=CampaignStatus.NEW,
        db_default=models.Value("new"),
    )
    email_verified = models.BooleanField(default=False, db_default=False)
    phone_verified = models.BooleanField(default=False, db_default=False)
    # A contact point a broker typed in the portal (leads/contact_edit.py): unverified, so no consent link goes to
    # it and the lead is not fed, until a partner file brings the same value (the ingestion's merge) or a
    # verification confirms it. Otherwise a broker could route consent to an address of their own.
    email_unconfirmed = models.BooleanField(default=False, db_default=False, editable=False)
    phone_unconfirmed = models.BooleanField(default=False, db_default=False, editable=False)
    email_verification_codes = ArrayField(models.TextField(), default=list, db_default=models.Value([]), blank=True)
    phone_verification_codes = ArrayField(models.TextField(), default=list, db_default=models.Value([]), blank=True)
    added_to_campaign_at = models.DateTimeField(null=True, blank=True)
    current_sequence_step = models.IntegerField(null=True, blank=True)
    last_reply_at = models.DateTimeField(null=True, blank=True)
    vapi_call_id = models.TextField(null=True, blank=True)
    call_attempt_count = models.IntegerField(default=0, db_default=0)
    melissa_payload = models.JSONField(
        default=dict, db_default=models.Value({}, models.JSONField()), blank=True, help_text="Skip-trace payload"
    )
    mak = models.TextField("MAK", null=True, blank=True, help_text="Melissa address key")
    apn = models.TextField("APN", null=True, blank=True, help_text="Assessor's parcel number")
    addr_hash = models.CharField(max_length=64, null=True, blank=True, help_text="sha256(line1|city|state|zip5)")
    # The seed's `consent` is true exactly when one channel is: a trigger keeps it so (migration 0008), also for
    # writers that set `consent` alone (a legacy consent counts as e-mail).
    consent = models.BooleanField(default=False, db_default=False)
    consent_email = models.BooleanField("consent to e-mails", default=False, db_default=False)
    consent_sms = models.BooleanField("consent to text messages", default=False, db_default=False)
    consent_phone = models.BooleanField("consent to phone calls", default=False, db_default=False)
    consented_at = models.DateTimeField(null=True, blank=True)
    consent_method = models.TextField(null=True, blank=True)
    source = models.TextField(null=True, blank=True, help_text="Where the lead first came from")
    source_upload_id = models.UUIDField(null=True, blank=True, help_text="The upload that created the lead")
    instantly_lead_id = models.TextField(null=True, blank=True)
    do_not_contact_reason = EncryptedTextField(kind=pii.NOTES, null=True, blank=True)
    # The channels the suppression list binds for this lead's e-mail, phone or address, each with its reasons:
    # {"email": ["unsubscribe"], "phone": ["dnc_registry"], …}. Kept by leads/suppressions/sql.py in sets (the
    # ingestion, every addition or removal of an entry, the DNC import); never contacted on a channel listed here.
    # When the ingestion last found a new owner on the lead's parcel (pipeline/ingest/sql/write.py): an address
    # suppression made before then was about the previous owner and does not bind this one.
    owner_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    suppressed_channels = models.JSONField(
        default=dict, db_default=models.Value({}, models.JSONField()), blank=True, editable=False
    )
    owner2_name = models.TextField("co-owner", null=True, blank=True, help_text="Owner 2, as the partner listed them")
    # Where the owner gets their mail (PropStream's Mailing columns): an absentee owner's state there decides
    # their contact window (leads/compliance/contact_windows.py).
    mailing_address = models.TextField(null=True, blank=True)
    mailing_city = models.TextField(null=True, blank=True)
    mailing_state = models.CharField(max_length=2, null=True, blank=True)
    mailing_zip = models.CharField(max_length=10, null=True, blank=True)
    # A lead merged into another (possible duplicates): kept as a tombstone so links and events still resolve.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_leads", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)
    # Not indexed on purpose: an index on a column every update touches defeats HOT updates.
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    objects = LeadQuerySet.as_manager()

    class Meta:
        db_table = "leads"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(consent=False) | models.Q(consented_at__isnull=False),
                name="consent_requires_timestamp",
            ),
            models.CheckConstraint(
                condition=models.Q(lead_score__gte=0, lead_score__lte=100) | models.Q(lead_score__isnull=True),
                name="lead_score_range",
            ),
            # Dedupe keys, in order of trust: MAK is unique. Two parcels may share an APN only when their MAKs
            # differ, and an address only when a stronger key differs (migration 0007 says why these indexes).
            models.UniqueConstraint(fields=["mak"], condition=models.Q(mak__isnull=False), name="leads_mak_uniq"),
            models.UniqueConstraint(
                fields=["apn", "mak"],
                condition=models.Q(apn__isnull=False),
                nulls_distinct=False,
                name="leads_apn_mak_uniq",
            ),
            models.UniqueConstraint(
                fields=["addr_hash", "apn", "mak"],
                condition=models.Q(addr_hash__isnull=False),
                nulls_distinct=False,
                name="leads_addr_apn_mak_uniq",
            ),
        ]
        indexes = [
            # The broker portal: a broker's leads, newest first.
            models.Index(fields=["assigned_broker", "-created_at"], name="leads_broker_created_idx"),
            # Live leads by broker and status: the dashboards count them from this index alone (migration 0025).
            models.Index(
                fields=["assigned_broker", "campaign_status"],
                name="leads_live_broker_status_idx",
                condition=models.Q(merged_into__isnull=True),
            ),
            # No index on what a merge changes (valuations, score, payload, `updated_at`): with the fillfactor (0005)
            # re-sent leads are HOT updates. The feeder ranks by score on the materialized view's own index.
            # Exact lookups by e-mail or phone (suppression, webhooks, privacy requests, portal search).
            models.Index(
                fields=["email_bidx"], name="leads_email_bidx_idx", condition=models.Q(email_bidx__isnull=False)
            ),
            models.Index(
                fields=["phone_bidx"], name="leads_phone_bidx_idx", condition=models.Q(phone_bidx__isnull=False)
            ),
            # The leads merged into one (its consent history): tombstones only, so ingestion never touches it.
            models.Index(
                fields=["merged_into"], name="leads_merged_into_idx", condition=models.Q(merged_into__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        name = " ".join(part for part in (self.first_name, self.last_name) if part) or "(no name)"
        return f"{name} — {self.property_address or 'no address'}"

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class ConsentToken(models.Model):
    """One signed consent link. Only sha256(nonce) is stored; `used_at` makes it single-use; `fingerprint`
    binds it to the lead's broker, e-mail and phone when it was issued (security/consent_tokens.py)."""

    id = models.BigAutoField(primary_key=True)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="consent_tokens")
    broker = models.ForeignKey("security.Broker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="", db_default="")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "consent_tokens"
        indexes = [models.Index(fields=["created_at"], name="consent_tokens_created_idx")]

    def __str__(self) -> str:
        return f"consent token for {self.lead_id}"


class LeadConsentAudit(models.Model):
    """The consent audit trail (the seed project's `lead_consent_audit`): append-only.

    A trigger refuses UPDATE and DELETE to every role but the table's owner (migration 0008). The lead is
    referenced without a database constraint: a record outlives its lead and keeps the lead's id. A lead
    merged into another keeps its records; the survivor's history shows them (leads/selectors.py)."""

    id = models.BigAutoField(primary_key=True)
    lead = models.ForeignKey(
        Lead, on_delete=models.DO_NOTHING, db_constraint=False, related_name="consent_audit", db_index=True
    )
    consent = models.BooleanField()
    channels = ArrayField(
        models.TextField(), default=list, db_default=models.Value([]), blank=True, help_text="email, sms, phone"
    )
    consent_text = models.TextField(blank=True, default="", db_default="", help_text="The exact text shown")
    consent_text_version = models.CharField(max_length=32, blank=True, default="", db_default="")
    method = models.TextField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    token_hash = models.CharField(max_length=64, blank=True, default="")
    utm_source = models.TextField(blank=True, default="")
    utm_medium = models.TextField(blank=True, default="")
    utm_campaign = models.TextField(blank=True, default="")
    utm_term = models.TextField(blank=True, default="")
    utm_content = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "lead_consent_audit"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{'consent' if self.consent else 'refusal'} for {self.lead_id} via {self.method}"


class VerificationChannel(models.TextChoices):
    EMAIL = "email"
    PHONE = "phone"


class VerificationCodeMap(models.Model):
    """Skip-trace result codes (e.g. Melissa's `ES01`, `PS01`) and whether each means "verified"."""

    id = models.BigAutoField(primary_key=True)
    code = models.CharField(max_length=32)
    channel = models.CharField(max_length=8, choices=VerificationChannel.choices)
    is_verified = models.BooleanField(default=False)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "verification_code_map"
        ordering = ["channel", "code"]
        constraints = [models.UniqueConstraint(fields=["channel", "code"], name="verification_code_map_uniq")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.code} ({'verified' if self.is_verified else 'not verified'})"


class AccessAction(models.TextChoices):
    VIEW = "view"
    EXPORT = "export"
    CHANGE = "change"
    REVEAL = "reveal"
    ERASE = "erase"  # a person's data erased on their request (pipeline/privacy)


class LeadAccessRecord(models.Model):
    """Who saw what: one row per lead a person viewed, changed or revealed, and one per export (its filters and
    row count, no lead). Append-only: a trigger refuses UPDATE and DELETE to every role but the table's owner
    (migration 0009). Written only by leads/access.py. The lead and the user are plain ids, no constraint: a
    record outlives both, and `username` keeps who it was."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)
    user_id = models.IntegerField(help_text="The Django user")
    username = models.TextField(blank=True, default="", db_default="", help_text="Their login name at the time")
    broker_id = models.UUIDField(null=True, blank=True, help_text="When the user is a broker")
    action = models.CharField(max_length=8, choices=AccessAction.choices)
    via = models.CharField(max_length=64, help_text="The page or export, e.g. portal.lead_detail")
    lead_id = models.UUIDField(null=True, blank=True, help_text="None for an export")
    filters = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)
    row_count = models.IntegerField(null=True, blank=True, help_text="Rows an export held")
    reason = models.TextField(blank=True, default="", db_default="", help_text="Why PII was revealed")
    detail = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="", db_default="")

    class Meta:
        db_table = "lead_access_records"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=AccessAction.values), name="lead_access_records_action_valid"
            ),
        ]
        indexes = [
            # A lead's history and a user's, newest first.
            models.Index(
                fields=["lead_id", "-created_at"],
                name="lead_access_lead_idx",
                condition=models.Q(lead_id__isnull=False),
            ),
            models.Index(fields=["user_id", "-created_at"], name="lead_access_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.username or self.user_id} via {self.via}"


class ContactChannel(models.TextChoices):
    EMAIL = "email", "e-mail"
    SMS = "sms", "text messages"
    PHONE = "phone", "phone calls"


# As date.weekday() counts them.
WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


def every_day() -> list[int]:
    return [day for day, _ in WEEKDAYS]


class ContactWindow(models.Model):
    """When a lead in `state` may be contacted on `channel`, in the lead's local time: from `start` to `end`
    (the end excluded) on the chosen `days`, and not on federal holidays when `closed_on_holidays`.

    Seeded (migration 0011) with 08:00 to 21:00 every day for phone and SMS in every state and DC; e-mail has no
    rows, so no window. Compliance keeps the table current in the admin: a state whose law is stricter gets a
    narrower row. leads/compliance/contact_windows.py applies it."""

    id = models.BigAutoField(primary_key=True)
    state = models.CharField(
        max_length=2,
        choices=[(code, code) for code in STATE_ZONES],
        help_text="The lead's state: where the owner gets their mail when that differs from the property's state",
    )
    channel = models.CharField(max_length=8, choices=ContactChannel.choices)
    start = models.TimeField(help_text="Local time the window opens")
    end = models.TimeField(help_text="Local time the window closes (not included)")
    days = ArrayField(models.SmallIntegerField(choices=WEEKDAYS), default=every_day, help_text="Days it opens")
    closed_on_holidays = models.BooleanField(
        default=False, help_text="Closed on federal holidays (the day itself and the day it is observed)"
    )
    note = models.TextField(
        blank=True, default="", help_text="The rule's source (statute) and when compliance last checked it"
    )
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "contact_windows"
        ordering = ["state", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["state", "channel"], name="contact_windows_state_channel_uniq"),
            models.CheckConstraint(
                condition=models.Q(start__lt=models.F("end")), name="contact_windows_start_before_end"
            ),
            models.CheckConstraint(
                condition=models.Q(days__len__gt=0, days__contained_by=[0, 1, 2, 3, 4, 5, 6]),
                name="contact_windows_days_chosen",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.state} {self.get_channel_display()}: {self.start:%H:%M} to {self.end:%H:%M}"

    def clean(self):
        errors = {}
        if self.start is not None and self.end is not None and self.start >= self.end:
            errors["end"] = "The window must close after it opens (on the same day)."
        if not self.days:
            errors["days"] = "Choose at least one day."
        if errors:
            raise ValidationError(errors)


# The suppression list's models live in their own module (leads/suppressions/models.py).
# The broker's portal settings and notifications (issue 15) live in their own module; imported here so Django
# and every `from leads.models import …` find them.
from .learned.models import ScoreModelKind, ScoreModelVersion  # noqa: E402, F401  (the learned score's versions)
from .portal_models import BrokerNotification, BrokerPortalSettings  # noqa: E402, F401
from .suppressions.models import DncRegistryImport, DncRegistryNumber, Suppression  # noqa: E402, F401

# A broker's follow-ups and saved views (leads/workday/models.py).
from .workday.models import FollowUp, SavedView  # noqa: E402, F401
