"""Write paths for leads. Each runs in a transaction with the caller's database context."""

from __future__ import annotations

from django.db import connection, transaction

# The seed's Phase 5.1 mapping, verbatim: legacy `status` text -> `campaign_status`.
BACKFILL_CAMPAIGN_STATUS_SQL = """
UPDATE leads
SET campaign_status = CASE
  WHEN status = 'new' THEN 'new'::campaign_status
  WHEN status = 'contacted' THEN 'active'::campaign_status
  WHEN status = 'replied' THEN 'replied'::campaign_status
  WHEN status = 'qualified' THEN 'active'::campaign_status
  WHEN status IN ('appointment_set', 'showed', 'application', 'funded') THEN 'converted'::campaign_status
  WHEN status = 'closed_lost' THEN 'do_not_contact'::campaign_status
  ELSE 'new'::campaign_status
END
WHERE campaign_status IS NULL
RETURNING campaign_status
"""

# The seed's Phase 5.2, verbatim.
INIT_PHONE_VERIFIED_SQL = """
UPDATE leads
SET phone_verified = TRUE
WHERE phone IS NOT NULL
  AND phone != ''
  AND phone_verified = FALSE
"""
INIT_EMAIL_VERIFIED_SQL = """
UPDATE leads
SET email_verified = TRUE
WHERE email IS NOT NULL
  AND email != ''
  AND email_verified = FALSE
"""


def campaign_status_backfill() -> dict[str, int]:
    """Set `campaign_status` from the legacy `status` where it is NULL (idempotent).

    Returns how many leads got each status."""
    counts: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BACKFILL_CAMPAIGN_STATUS_SQL)
        for (status,) in cursor.fetchall():
            counts[status] = counts.get(status, 0) + 1
    return counts


def verification_flags_init() -> dict[str, int]:
    """Mark phone/email verified where a phone/email exists (idempotent). Returns the counts updated."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INIT_PHONE_VERIFIED_SQL)
        phone = cursor.rowcount
        cursor.execute(INIT_EMAIL_VERIFIED_SQL)
        email = cursor.rowcount
    return {"phone_verified": phone, "email_verified": email}
