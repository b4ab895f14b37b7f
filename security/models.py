"""The principals the security layer knows: brokers (whose id row-level security scopes every lead by),
partners and their signing keys.

A partner may hold several keys at once (rotation: create the new key, the partner switches, revoke the
old one; both verify in between). The secret is shown once at creation and stored encrypted
(security/crypto.py), never in plain text. A key signs v2 unless ops allowed it v1 (`allow_v1`), and its
uploads may name in X-Broker-Id only its default broker and its `allowed_brokers`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Now

from .querysets import BrokerQuerySet

# The zones a broker picks from (US time zones: the product serves US homeowners); stored by IANA name.
DEFAULT_BROKER_TIME_ZONE = "America/Los_Angeles"
BROKER_TIME_ZONES = [
    ("America/New_York", "Eastern (New York)"),
    ("America/Chicago", "Central (Chicago)"),
    ("America/Denver", "Mountain (Denver)"),
    ("America/Phoenix", "Mountain, no daylight saving (Phoenix)"),
    ("America/Los_Angeles", "Pacific (Los Angeles)"),
    ("America/Anchorage", "Alaska (Anchorage)"),
    ("Pacific/Honolulu", "Hawaii (Honolulu)"),
]


class Broker(models.Model):
    """A licensed loan officer: the principal row-level security scopes by. Their login is `user`; `id` is
    what `auth.uid()` returns for them, so their requests see only their own leads."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="broker"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    phone = models.CharField(max_length=32, blank=True, default="")
    company = models.CharField(max_length=200, blank=True, default="")
    nmls_id = models.CharField("NMLS id", max_length=32, blank=True, default="")
    # Territory rules for uploads that name no broker: ZIP prefixes win over states.
    territory_states = ArrayField(models.CharField(max_length=2), blank=True, default=list)
    territory_zip_prefixes = ArrayField(models.CharField(max_length=5), blank=True, default=list)
    active = models.BooleanField(default=True, db_default=True)
    # The portal shows every time (the list's, the timeline's, an appointment's) in the broker's own zone.
    time_zone = models.CharField(
        max_length=64,
        choices=BROKER_TIME_ZONES,
        default=DEFAULT_BROKER_TIME_ZONE,
        db_default=DEFAULT_BROKER_TIME_ZONE,
        help_text="The portal shows times in this zone.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    objects = BrokerQuerySet.as_manager()

    class Meta:
        db_table = "brokers"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Partner(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(default=True)
    contact_email = models.EmailField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "partners"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PartnerKeyStatus(models.TextChoices):
    ACTIVE = "active"
    REVOKED = "revoked"


class PartnerKey(models.Model):
    id = models.BigAutoField(primary_key=True)
    key_id = models.CharField(max_length=64, unique=True, help_text="Public id, sent as X-Key-Id")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="keys")
    secret_ciphertext = models.TextField(help_text="Fernet token of the secret (ENCRYPTION_KEY)")
    label = models.CharField(max_length=200, blank=True, default="")
    default_broker = models.ForeignKey(
        Broker, null=True, blank=True, on_delete=models.SET_NULL, related_name="partner_keys"
    )
    # The brokers an upload signed with this key may name in X-Broker-Id (the default broker always may).
    allowed_brokers = models.ManyToManyField(
        Broker,
        blank=True,
        related_name="routable_partner_keys",
        db_table="partner_key_allowed_brokers",
        help_text="Brokers this key may name in X-Broker-Id; the default broker is always allowed.",
    )
    # The v1 signature (an HMAC of the body alone) binds no time: a captured request can be replayed. Only
    # for a partner that cannot sign v2 yet, and only when ops say so.
    allow_v1 = models.BooleanField(
        "allow v1 signatures",
        default=False,
        db_default=False,
        help_text="Accept the v1 signature (body only, replayable) from this key. Off unless the partner cannot "
        "sign v2.",
    )
    status = models.CharField(max_length=16, choices=PartnerKeyStatus.choices, default=PartnerKeyStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "partner_keys"
        ordering = ["partner__name", "-created_at"]

    def __str__(self) -> str:
        return f"{self.key_id} ({self.partner.name}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == PartnerKeyStatus.ACTIVE

    def may_route_to(self, broker_id) -> bool:
        """Whether an upload signed with this key may assign its leads to `broker_id` (X-Broker-Id)."""
        if broker_id == self.default_broker_id:
            return True
        return self.allowed_brokers.filter(pk=broker_id).exists()
