"""A rejected row as a person reads and fixes it: its cells under the lead fields they map to (the partner's own
header beside each), what is wrong next to the field that causes it, a one-line preview, and one field set across
many rows. Pure functions over a DLQ payload (`{header: cell}`, extra cells under `_extra_values`); the admin's
triage form and bulk edit use them, and reprocessing stays the ingestion service's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import normalise as n
from .columns import ALIASES, map_headers

EXTRA = "_extra_values"
REDACTED = "_redacted"
# The fields a row needs for a dedupe key, offered even when the file had no such column.
KEY_FIELDS = ("mak", "apn", "property_address", "property_city", "property_state", "property_zip")
PREVIEW_NAME = ("first_name", "last_name")
MASK = "•••"

NEEDS_KEY = "no dedupe key: fill in the street address (with a ZIP code, or a city and a state), a MAK or an APN"
NEEDS_ZIP = "the address needs a 5-digit ZIP code (or a city and a state) to identify the property"
NEEDS_CITY_STATE = "the address needs a city and a state (or a 5-digit ZIP code) to identify the property"
BAD_STATE = "not a US state: use the two-letter code (CA) or the name (California)"
BAD_ZIP = "not a ZIP code: five digits (92101, or 92101-1234)"


@dataclass(frozen=True)
class RowField:
    key: str  # the payload's key: the partner's header, or the canonical name for a field added here
    field: str | None  # the lead field it maps to (None: a column we do not map)
    value: str
    in_file: bool = True

    @property
    def label(self) -> str:
        return self.field or self.key


def editable(payload: dict) -> bool:
    return isinstance(payload, dict) and REDACTED not in payload


def row_fields(payload: dict) -> list[RowField]:
    """The row's cells in the file's order, each with the field it maps to, then the key fields the file lacked."""
    keys = [key for key in payload if key != EXTRA]
    fields, _ = map_headers(keys)
    by_index = {index: field for field, index in fields.items()}
    rows = [
        RowField(key=key, field=by_index.get(index), value="" if payload[key] is None else str(payload[key]))
        for index, key in enumerate(keys)
    ]
    present = set(fields)
    rows += [RowField(key=name, field=name, value="", in_file=False) for name in KEY_FIELDS if name not in present]
    return rows


def values_by_field(payload: dict) -> dict[str, str]:
    """{lead field: cell} of the mapped columns (the first column wins, as in the ingestion)."""
    return {row.field: row.value for row in row_fields(payload) if row.field and row.in_file}


def row_problems(values: dict[str, str]) -> dict[str, str]:
    """{lead field: what is wrong} for a row's mapped values: the field to fix for a missing key, a state or ZIP
    code that is not one. Empty when the row has a key."""
    problems: dict[str, str] = {}
    state_text, zip_text = (values.get("property_state") or "").strip(), (values.get("property_zip") or "").strip()
    state, postal = n.state(state_text), n.zip5(zip_text)
    if state_text and state is None:
        problems["property_state"] = BAD_STATE
    if zip_text and postal is None:
        problems["property_zip"] = BAD_ZIP
    address = n.text(values.get("property_address"))
    town = n.city(n.text(values.get("property_city"), limit=100))
    if n.key(values.get("mak")) or n.key(values.get("apn")):
        return problems
    if not address:
        problems["property_address"] = NEEDS_KEY
    elif not (postal or (town and state)):
        if zip_text or not (town or state):
            problems.setdefault("property_zip", NEEDS_ZIP)
        else:
            problems.setdefault("property_state" if town else "property_city", NEEDS_CITY_STATE)
    return problems


def payload_with(payload: dict, changes: dict[str, str]) -> dict:
    """The payload with `changes` ({payload key: new cell}) applied; a new key (a field the file lacked) is added
    only when it has a value. The order of the file's columns is kept."""
    updated = {key: changes.get(key, value) for key, value in payload.items()}
    for key, value in changes.items():
        if key not in payload and value.strip():
            updated[key] = value
    if EXTRA in updated:  # the cells past the header stay last, as they were read
        updated[EXTRA] = updated.pop(EXTRA)
    return updated


def payload_set_field(payload: dict, field: str, value: str) -> dict:
    """Set the lead field `field` in a row, under the partner's header that maps to it (or under `field` itself
    when the file had no such column)."""
    if field not in ALIASES:
        raise ValueError(f"unknown field {field!r}")
    for row in row_fields(payload):
        if row.field == field and row.in_file:
            return payload_with(payload, {row.key: value})
    return payload_with(payload, {field: value})


def _mask_name(value: str) -> str:
    return " ".join(f"{part[:1]}{MASK}" for part in value.split()) if value else ""


def row_preview(payload: dict, *, masked: bool) -> str:
    """`Grace Hopper · 1906 Compiler Ct, San Diego CA 92101 · APN 123-45` in one line; names and the street are
    masked for a person who has not revealed the DLQ's personal data (the city, state and ZIP show)."""
    if not isinstance(payload, dict) or not payload:
        return "—"
    if REDACTED in payload:
        return f"(payload removed: {payload[REDACTED]})"
    values = values_by_field(payload)
    name = " ".join(values.get(part, "").strip() for part in PREVIEW_NAME).strip()
    street = " ".join(
        part for part in (values.get("property_address", "").strip(), values.get("unit", "").strip()) if part
    )
    place = " ".join(
        part
        for part in (
            values.get("property_city", "").strip(),
            values.get("property_state", "").strip(),
            values.get("property_zip", "").strip(),
        )
        if part
    )
    if masked:
        name, street = _mask_name(name), (MASK if street else "")
    address = ", ".join(part for part in (street, place) if part) or "no address"
    keys = [
        f"{label} {values[field].strip()}"
        for field, label in (("mak", "MAK"), ("apn", "APN"))
        if values.get(field, "").strip()
    ]
    return " · ".join([name or "no name", address, ", ".join(keys) or "no MAK/APN"])
