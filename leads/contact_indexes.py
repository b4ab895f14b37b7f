"""The blind indexes of a lead's e-mail and phone (security/pii.py): computed for one lead before it is saved,
and, for rows written without a key (the seed's `upsert_lead()`, the legacy path, which runs in the database and
holds no key), the values encrypted and the indexes filled in sets by the sweep job every minute. Lookups ask with
every index version (`indexes_of`); `search_indexes` turns a searched term into them."""

from __future__ import annotations

import re

import phonenumbers
from django.db import connection

from security.fields import decrypt_stored
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


# Leads whose e-mail or phone has no blind index (NULL where a value is present): rows the seed's
# `upsert_lead()` wrote, in plaintext. The partial index `leads_contact_unswept_idx` (migration 0014) holds exactly
# these rows, so the sweep every minute reads a near-empty index, never the table.
_MISSING = """SELECT id, email, phone FROM leads
 WHERE (nullif(email, '') IS NOT NULL AND email_bidx IS NULL) OR (nullif(phone, '') IS NOT NULL AND phone_bidx IS NULL)
 LIMIT %s FOR UPDATE SKIP LOCKED"""
_FILL = """UPDATE leads l SET email = v.email, phone = v.phone, email_bidx = v.email_bidx,
       email_domain_bidx = v.email_domain_bidx, phone_bidx = v.phone_bidx, phone_last4_bidx = v.phone_last4_bidx
  FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
       AS v(id, email, phone, email_bidx, email_domain_bidx, phone_bidx, phone_last4_bidx)
 WHERE l.id = v.id"""


def contact_sealed(email: str | None, phone: str | None) -> dict[str, str | None]:
    """The stored e-mail and phone (each either still plaintext, as `upsert_lead()` writes it, or already
    encrypted) as the six columns a lead keeps: both encrypted, and their blind indexes."""
    pii = codec()
    email, phone = decrypt_stored(email, EMAIL) or None, decrypt_stored(phone, PHONE) or None
    return {"email": pii.encrypt(email, EMAIL), "phone": pii.encrypt(phone, PHONE), **contact_indexes(email, phone)}


def contact_indexes_fill(*, batch: int = SWEEP_BATCH, using_connection=None) -> int:
    """Encrypt the e-mail and phone of every lead written without a key (the seed's `upsert_lead()`) and fill
    their blind indexes, `batch` leads per statement, in the current transaction (a service or admin context;
    the sweep job every minute, pipeline/tasks.py). Returns the leads changed."""
    cursor_source = using_connection or connection
    filled = 0
    with cursor_source.cursor() as cursor:
        while True:
            cursor.execute(_MISSING, [batch])
            rows = cursor.fetchall()
            if not rows:
                return filled
            columns = [contact_sealed(email, phone) for _, email, phone in rows]
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


_PHONE_CHARACTERS = re.compile(r"^\+?[\d\s().-]+$")


def normalised_phone(term: str) -> str | None:
    """A typed phone number as ingestion stores it (E.164; US numbers without a country code), or None."""
    term = term.strip()
    if not _PHONE_CHARACTERS.match(term):
        return None
    digits = re.sub(r"\D", "", term)
    if not term.startswith("+") or digits.startswith("1"):
        if len(digits) == 11 and digits[0] == "1":
            digits = digits[1:]
        if len(digits) == 10:
            return "+1" + digits
    try:
        number = phonenumbers.parse(term, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def search_indexes(term: str) -> dict[str, list[str]]:
    """The blind-index columns a searched term can match exactly, each with the term's indexes (every
    version): an e-mail address, a phone number, or the last four digits of a phone."""
    term = (term or "").strip()
    found: dict[str, list[str]] = {}
    if "@" in term and " " not in term:
        found["email_bidx"] = indexes_of(term.lower().strip("<>"), EMAIL)
    elif re.fullmatch(r"\d{4}", term):
        found["phone_last4_bidx"] = indexes_of(term, PHONE_LAST4)
    elif (phone := normalised_phone(term)) is not None:
        found["phone_bidx"] = indexes_of(phone, PHONE)
    return found
