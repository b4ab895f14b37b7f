"""The blind indexes of a lead's e-mail and phone (security/pii.py): computed for one lead before it is saved,
and filled in sets for rows written without them (the seed's `upsert_lead()`, which runs in the database and
holds no key) by the sweep job every minute. Lookups ask with every index version (`indexes_of`)."""

from __future__ import annotations

from django.db import connection

from security.pii import EMAIL, EMAIL_DOMAIN, PHONE, PHONE_LAST4, codec, email_domain, phone_last4

SWEEP_BATCH = 5_000


def contact_indexes(email: str | None, phone: str | None) -> dict[str, str | None]:
    """The four blind-index columns for an e-mail and a phone (NULL where the value is empty)."""
    pii = codec()
    return {
        "email_bidx": pii.blind_index(email, EMAIL),
        "email_domain_bidx": pii.blind_index(email_domain(email), EMAIL_DOMAIN) if email else None,
        "phone_bidx": pii.blind_index(phone, PHONE),
        "phone_last4_bidx": pii.blind_index(phone_last4(phone), PHONE_LAST4) if phone else None,
    }


def indexes_of(value: str | None, kind: str) -> list[str]:
    """What an exact lookup of `value` asks for: its blind index under every key version."""
    return codec().blind_indexes(value, kind)


def lead_contact_indexes_set(lead) -> None:
    """Set the lead's blind indexes from its e-mail and phone (a pre_save receiver: every ORM save of a lead)."""
    for column, value in contact_indexes(lead.email or None, lead.phone or None).items():
        setattr(lead, column, value)


# Leads whose e-mail or phone has no blind index (NULL where a value is present), in batches.
_MISSING = """SELECT id, email, phone FROM leads
 WHERE (nullif(email, '') IS NOT NULL AND email_bidx IS NULL) OR (nullif(phone, '') IS NOT NULL AND phone_bidx IS NULL)
 LIMIT %s FOR UPDATE SKIP LOCKED"""
_FILL = """UPDATE leads l SET email_bidx = v.email_bidx, email_domain_bidx = v.email_domain_bidx,
       phone_bidx = v.phone_bidx, phone_last4_bidx = v.phone_last4_bidx
  FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[])
       AS v(id, email_bidx, email_domain_bidx, phone_bidx, phone_last4_bidx)
 WHERE l.id = v.id"""


def contact_indexes_fill(*, batch: int = SWEEP_BATCH, using_connection=None) -> int:
    """Fill the missing blind indexes of every lead, `batch` leads per statement, in the current transaction
    (a service or admin context). Returns the leads filled."""
    cursor_source = using_connection or connection
    filled = 0
    with cursor_source.cursor() as cursor:
        while True:
            cursor.execute(_MISSING, [batch])
            rows = cursor.fetchall()
            if not rows:
                return filled
            columns = [contact_indexes(email or None, phone or None) for _, email, phone in rows]
            cursor.execute(
                _FILL,
                [
                    [row[0] for row in rows],
                    *([values[name] for values in columns] for name in columns[0]),
                ],
            )
            filled += len(rows)
            if len(rows) < batch:
                return filled
