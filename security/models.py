"""Partners and their signing keys.

A partner may hold several keys at once (rotation: create the new key, the partner switches, revoke the
old one; both verify in between). The secret is shown once at creation and stored encrypted
(security/crypto.py), never in plain text.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Now


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
        "leads.Broker", null=True, blank=True, on_delete=models.SET_NULL, related_name="partner_keys"
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
