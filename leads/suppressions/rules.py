"""What a suppression is: its kinds, its reasons, and the channels each reason binds (no Django models here)."""

from __future__ import annotations

from django.db import models


class SuppressionKind(models.TextChoices):
    EMAIL = "email", "e-mail address"
    EMAIL_DOMAIN = "email_domain", "e-mail domain"
    PHONE = "phone", "phone number (E.164)"
    ADDRESS = "address", "property address (address hash)"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    DNC_REGISTRY = "dnc_registry", "DNC registry"
    LITIGATOR = "litigator", "litigator list"
    CUSTOMER_REQUEST = "customer_request", "customer request"
    MANUAL = "manual"
    ERASURE = "erasure", "erased person"
    SMS_OPT_OUT = "sms_opt_out", "text opt-out (STOP)"


EMAIL, SMS, PHONE = "email", "sms", "phone"
ALL_CHANNELS = (EMAIL, SMS, PHONE)

# The channels each reason binds. Do-not-call lists are about calls and texts: they never stop an e-mail.
# An unsubscribe or a bounce is about e-mail only. A complaint, a customer's request and an erased person stop
# every channel. A text opt-out (STOP, pipeline/sms) binds texts only; START removes it and nothing else.
# `manual` binds what the person adding it chooses (None here).
CHANNELS_FOR_REASON: dict[str, tuple[str, ...] | None] = {
    SuppressionReason.UNSUBSCRIBE: (EMAIL,),
    SuppressionReason.BOUNCE: (EMAIL,),
    SuppressionReason.COMPLAINT: ALL_CHANNELS,
    SuppressionReason.DNC_REGISTRY: (PHONE, SMS),
    SuppressionReason.LITIGATOR: (PHONE, SMS),
    SuppressionReason.CUSTOMER_REQUEST: ALL_CHANNELS,
    SuppressionReason.MANUAL: None,
    SuppressionReason.ERASURE: ALL_CHANNELS,
    SuppressionReason.SMS_OPT_OUT: (SMS,),
}

# The DLQ reason of an upload row that matches an erasure entry (its DLQ row holds nothing else).
ERASED_PERSON = "erased person"


class SuppressionInvalid(ValueError):
    """A suppression that cannot be added as asked; the message is safe to show."""


def channels_for(reason: str, chosen: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The channels an entry with `reason` binds: the reason's own, or (manual) the chosen ones.
    Raises SuppressionInvalid for an unknown reason, a manual entry without channels, or chosen channels
    that contradict the reason (a DNC registry entry never binds e-mail)."""
    if reason not in CHANNELS_FOR_REASON:
        raise SuppressionInvalid(f"unknown reason {reason!r}: one of {', '.join(CHANNELS_FOR_REASON)}")
    fixed = CHANNELS_FOR_REASON[reason]
    chosen = [channel.strip().lower() for channel in chosen or () if channel and channel.strip()]
    unknown = sorted(set(chosen) - set(ALL_CHANNELS))
    if unknown:
        raise SuppressionInvalid(f"unknown channel(s) {', '.join(unknown)}: one of {', '.join(ALL_CHANNELS)}")
    if fixed is None:
        if not chosen:
            raise SuppressionInvalid("a manual entry needs the channels it binds (email, sms, phone)")
        return [channel for channel in ALL_CHANNELS if channel in chosen]
    if chosen and set(chosen) != set(fixed):
        raise SuppressionInvalid(f"a {reason} entry binds {', '.join(fixed)} (no other channels)")
    return list(fixed)
