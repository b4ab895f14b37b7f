"""Which CSV header means which lead field: canonical snake_case names and PropStream export headers,
matched case-, space- and punctuation-insensitively (`Owner 1 First Name`, `owner_1_first_name` and
`OWNER1FIRSTNAME` are one header). Columns that match nothing are kept: in the raw row (staging, DLQ)
and, when they have a value, in the lead's `melissa_payload`.
"""

from __future__ import annotations

import re

from security.pii import EMAIL, PHONE

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstname", "first", "owner_1_first_name", "owner_first_name", "owner1_first"),
    "last_name": ("last_name", "lastname", "last", "surname", "owner_1_last_name", "owner_last_name", "owner1_last"),
    "owner2_first_name": ("owner2_first_name", "owner_2_first_name", "owner2_first", "co_owner_first_name"),
    "owner2_last_name": ("owner2_last_name", "owner_2_last_name", "owner2_last", "co_owner_last_name"),
    "owner2_name": ("owner2_name", "owner_2_name", "owner_2", "co_owner", "co_owner_name"),
    "email": ("email", "email_1", "email_address", "owner_email", "e_mail", "email1_address"),
    "phone": (
        "phone",
        "phone_1",
        "phone_number",
        "owner_phone",
        "mobile",
        "cell",
        "cell_phone",
        "telephone",
        "phone1_number",
    ),
    "property_address": (
        "property_address",
        "address",
        "street_address",
        "address_1",
        "address_line_1",
        "property_street",
        "site_address",
        "situs_address",
        "street",
    ),
    "unit": ("unit", "unit_number", "unit_no", "apt", "apartment", "property_unit"),
    "property_city": ("property_city", "city", "site_city", "situs_city"),
    "property_state": ("property_state", "state", "st", "site_state", "situs_state"),
    "property_zip": ("property_zip", "zip", "zip_code", "zipcode", "zip5", "postal_code", "site_zip", "situs_zip"),
    # The owner's mailing address (PropStream's `Mailing …` columns): where an absentee owner lives.
    "mailing_address": (
        "mailing_address",
        "mail_address",
        "mailing_street",
        "mailing_address_1",
        "owner_mailing_address",
    ),
    "mailing_unit": ("mailing_unit", "mailing_unit_number", "mail_unit"),
    "mailing_city": ("mailing_city", "mail_city"),
    "mailing_state": ("mailing_state", "mail_state"),
    "mailing_zip": ("mailing_zip", "mail_zip", "mailing_zip_code", "mailing_zip5", "mail_zip_code"),
    "property_value": (
        "property_value",
        "est_value",
        "estimated_value",
        "value",
        "avm",
        "market_value",
        "est_property_value",
    ),
    "estimated_equity": ("estimated_equity", "est_equity", "equity", "est_equity_amount"),
    "property_type": ("property_type", "type", "prop_type", "land_use"),
    "age": ("age", "owner_age", "owner_1_age"),
    "owner_occupied": ("owner_occupied", "owner_occ", "is_owner_occupied"),
    "mak": ("mak", "melissa_address_key", "address_key"),
    "apn": ("apn", "parcel_number", "parcel_id", "assessor_parcel_number", "apn_parcel_id"),
    "email_verification_codes": (
        "email_verification_codes",
        "email_codes",
        "email_result_codes",
        "email_1_codes",
        "email_status_codes",
    ),
    "phone_verification_codes": (
        "phone_verification_codes",
        "phone_codes",
        "phone_result_codes",
        "phone_1_codes",
        "phone_status_codes",
    ),
    "email_verified": ("email_verified",),
    "phone_verified": ("phone_verified",),
}


def header_key(header: str) -> str:
    """`Owner 1 First Name` / `owner_1_first_name` / ` OWNER1FIRSTNAME ` → `owner1firstname`."""
    return _NOT_ALNUM.sub("", (header or "").replace("\ufeff", "").lower())


_BY_KEY: dict[str, str] = {header_key(alias): field for field, aliases in ALIASES.items() for alias in aliases}
FIELDS = tuple(ALIASES)


def map_headers(headers: list[str]) -> tuple[dict[str, int], list[str]]:
    """(field → column index for the columns we understand, the raw-JSON key for every column).

    The first column wins when two map to one field; raw keys are the trimmed headers, made unique
    (`Phone`, `Phone_2`), and blank headers become `column_<n>`."""
    fields: dict[str, int] = {}
    raw_keys: list[str] = []
    seen: set[str] = set()
    for index, header in enumerate(headers):
        raw = (header or "").replace("\ufeff", "").strip() or f"column_{index + 1}"
        unique, suffix = raw, 2
        while unique in seen:
            unique, suffix = f"{raw}_{suffix}", suffix + 1
        seen.add(unique)
        raw_keys.append(unique)
        field = _BY_KEY.get(header_key(header))
        if field is not None and field not in fields:
            fields[field] = index
    return fields, raw_keys


# A row needs one of these to be a property at all (the address with a ZIP, or a city and a state).
KEY_FIELDS = {"mak": "MAK", "apn": "APN", "property_address": "Address"}


def missing_key_columns_reason(headers: list[str]) -> str | None:
    """Why a file with these headers cannot be read (no column we recognise as a dedupe key), or None."""
    fields, raw_keys = map_headers(headers)
    if any(field in fields for field in KEY_FIELDS):
        return None
    got = ", ".join(raw_keys) or "no columns"
    expected = ", ".join(f"{label} ({' / '.join(ALIASES[field][:3])}, …)" for field, label in KEY_FIELDS.items())
    return f"no recognised key columns; got: {got}; expected one of: {expected}"


def unrecognised_columns(headers: list[str]) -> list[str]:
    """The columns no field maps (kept in the raw rows and the lead's payload)."""
    fields, raw_keys = map_headers(headers)
    known = set(fields.values())
    return [key for index, key in enumerate(raw_keys) if index not in known]


# Names that are the contact itself ("Email 2", "Owner Email", "Wireless 3", "Phone Number 2"), not one of its
# attributes ("Phone 1 Type", "Email Status").
_CONTACT_COLUMNS = (
    (re.compile(r"(^|[^a-z])e[-_ ]?mail( address)?[ _#-]*\d*$"), EMAIL),
    (re.compile(r"(^|[^a-z])(phone|mobile|cell|cellular|wireless|landline|telephone)( number)?[ _#-]*\d*$"), PHONE),
)


def contact_kind(key: str) -> str | None:
    """The kind of contact an unmapped column holds, by its name (`email_2` → e-mail, `wireless_3` → phone)."""
    lowered = key.lower()
    for pattern, kind in _CONTACT_COLUMNS:
        if pattern.search(lowered):
            return kind
    return None
