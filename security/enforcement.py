"""The rollback plan's escape hatch: signature enforcement off for a limited time, and loudly.

`SIGNATURE_ENFORCEMENT_DISABLED_UNTIL` (RFC 3339, e.g. `2026-11-28T06:00:00Z`) turns enforcement off
until that instant. It is refused (enforcement stays on) when it is more than
`SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS` (default 24) ahead of the current time, or unparseable, so a
forgotten value cannot switch security off for good. Every check while it is off logs a warning; /metrics
and `manage.py healthcheck` show it (the anonymous /healthz does not: it would tell anyone when unsigned
uploads go through). What it waives is decided in security/upload_verification.py: the signature only.
docs/runbooks/rollback.md says when and how to use it.

This module imports only Django settings, so any layer may ask it (the upload entry point does, before
it rejects a request for its signature).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

logger = logging.getLogger("equity_connect.security.enforcement")


def signature_enforcement_disabled_until(*, now: dt.datetime | None = None) -> dt.datetime | None:
    """The instant until which enforcement is off, or None when it is on (the normal case)."""
    raw = (getattr(settings, "SIGNATURE_ENFORCEMENT_DISABLED_UNTIL", "") or "").strip()
    if not raw:
        return None
    now = now or timezone.now()
    until = parse_datetime(raw)
    if until is None or timezone.is_naive(until):
        logger.error(
            "SIGNATURE_ENFORCEMENT_DISABLED_UNTIL is not an RFC 3339 time with an offset; enforcing",
            extra={"value": raw},
        )
        return None
    max_hours = getattr(settings, "SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS", 24)
    if until - now > dt.timedelta(hours=max_hours):
        logger.error(
            "SIGNATURE_ENFORCEMENT_DISABLED_UNTIL is more than %s hours ahead; enforcing",
            max_hours,
            extra={"value": raw},
        )
        return None
    if until <= now:
        return None
    return until


def signature_enforcement_disabled(*, now: dt.datetime | None = None) -> bool:
    """True while a valid, unexpired SIGNATURE_ENFORCEMENT_DISABLED_UNTIL is set. Logs a warning each time."""
    until = signature_enforcement_disabled_until(now=now)
    if until is None:
        return False
    logger.warning("signature enforcement is DISABLED until %s (rollback setting)", until.isoformat())
    return True
