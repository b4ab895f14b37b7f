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
    *,
    partner: Partner,
    default_broker=None,
    secret: str | None = None,
    label: str = "",
    allow_v1: bool = False,
    allowed_brokers=(),
) -> tuple[PartnerKey, str]:
    """Create an active key for `partner`. Returns the key and its secret (the only time it is readable).

    `allow_v1` lets the key sign with the replayable v1 form (for a partner that cannot sign v2 yet);
    `allowed_brokers` are the brokers it may name in X-Broker-Id besides its default broker.
    Records `partner_key_created` (key id, never the secret)."""
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
            allow_v1=allow_v1,
        )
        if allowed_brokers:
            key.allowed_brokers.set(allowed_brokers)
        record_event(
            "partner_key_created",
            data={
                "key_id": key.key_id,
                "partner": partner.name,
                "allow_v1": allow_v1,
                "allowed_brokers": [str(getattr(broker, "pk", broker)) for broker in allowed_brokers],
            },
        )
    return key, secret


def partner_key_policy_update(
    *, key: PartnerKey, default_broker=None, allowed_brokers=(), allow_v1: bool = False, label: str = ""
) -> PartnerKey:
    """Set a key's default broker, the brokers it may name in X-Broker-Id, whether it may sign v1, and its
    label. Records `partner_key_changed` with what changed (ids and flags only)."""
    with transaction.atomic():
        stored = PartnerKey.objects.select_for_update().select_related("partner").get(pk=key.pk)
        before_allowed = set(stored.allowed_brokers.values_list("pk", flat=True))
        after_allowed = {getattr(broker, "pk", broker) for broker in allowed_brokers}
        default_broker_id = getattr(default_broker, "pk", default_broker)
        changes: dict = {}
        if stored.allow_v1 != allow_v1:
            changes["allow_v1"] = {"from": stored.allow_v1, "to": allow_v1}
        if stored.default_broker_id != default_broker_id:
            changes["default_broker"] = {"from": _text(stored.default_broker_id), "to": _text(default_broker_id)}
        if before_allowed != after_allowed:
            changes["allowed_brokers"] = {
                "added": sorted(str(pk) for pk in after_allowed - before_allowed),
                "removed": sorted(str(pk) for pk in before_allowed - after_allowed),
            }
        if stored.label != label:
            changes["label"] = {"from": stored.label, "to": label}
        stored.allow_v1, stored.default_broker_id, stored.label = allow_v1, default_broker_id, label
        stored.save(update_fields=["allow_v1", "default_broker", "label"])
        stored.allowed_brokers.set(after_allowed)
        if changes:
            record_event(
                "partner_key_changed",
                data={"key_id": stored.key_id, "partner": stored.partner.name, "changes": changes},
            )
    return stored


def _text(value) -> str | None:
    return None if value is None else str(value)


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
