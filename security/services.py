"""Partner keys: create, revoke, re-encrypt. Secrets are returned once, at creation, and stored encrypted."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from equity_connect.events import record_event

from . import crypto
from .models import Partner, PartnerKey, PartnerKeyStatus


class PartnerKeyError(Exception):
    """A key operation that cannot be done; the message is safe to show."""


def partner_get_or_create(*, name: str) -> Partner:
    partner, _ = Partner.objects.get_or_create(name=name)
    return partner


def partner_key_create(
    *, partner: Partner, default_broker=None, secret: str | None = None, label: str = ""
) -> tuple[PartnerKey, str]:
    """Create an active key for `partner`. Returns the key and its secret (the only time it is readable).

    Records `partner_key_created` (key id only)."""
    if secret is not None and len(secret) < 32:
        raise PartnerKeyError("a partner secret must be at least 32 characters")
    secret = secret or secrets.token_hex(32)
    with transaction.atomic():
        key = PartnerKey.objects.create(
            key_id=f"pk_{secrets.token_hex(8)}",
            partner=partner,
            secret_ciphertext=crypto.encrypt(secret),
            default_broker=default_broker,
            label=label,
        )
        record_event("partner_key_created", data={"key_id": key.key_id, "partner": partner.name})
    return key, secret


def partner_key_revoke(*, key: PartnerKey) -> PartnerKey:
    """Revoke `key`: it stops verifying at once. Records `partner_key_revoked`."""
    if key.status == PartnerKeyStatus.REVOKED:
        raise PartnerKeyError(f"key {key.key_id} is already revoked")
    with transaction.atomic():
        key.status = PartnerKeyStatus.REVOKED
        key.revoked_at = timezone.now()
        key.save(update_fields=["status", "revoked_at"])
        record_event("partner_key_revoked", data={"key_id": key.key_id, "partner": key.partner.name})
    return key


def partner_key_secret(*, key: PartnerKey) -> str:
    """The plaintext secret, for signature verification only. Never log or return it."""
    return crypto.decrypt(key.secret_ciphertext)


def partner_keys_reencrypt() -> int:
    """Re-encrypt every stored secret with the first ENCRYPTION_KEY (after a key rotation)."""
    count = 0
    with transaction.atomic():
        for key in PartnerKey.objects.select_for_update():
            key.secret_ciphertext = crypto.rotate(key.secret_ciphertext)
            key.save(update_fields=["secret_ciphertext"])
            count += 1
    return count
