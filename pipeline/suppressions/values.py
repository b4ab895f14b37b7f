"""Values given by people (the `suppression` command, its CSV import) in the form an upload stores them: the
ingestion's own normalisers (pipeline/ingest/normalise.py), so a listed e-mail, phone or address matches the
leads that uploads create. The suppression services (leads/suppressions/) take canonical values only."""

from __future__ import annotations

from leads.suppressions.rules import SuppressionInvalid, SuppressionKind
from pipeline.ingest import normalise as n


def address_hash(address: str, *, unit: str = "", city: str = "", state: str = "", zip_code: str = "") -> str:
    """The address hash of a property address, as the ingestion computes it (the unit is part of the address)."""
    line = n.text(address)
    if line and unit:
        unit = n.text(unit, limit=40) or ""
        if unit:
            line = f"{line} #{unit.lstrip('#').strip()}"
    hashed = n.addr_hash(line, city, state, zip_code)
    if not hashed:
        raise SuppressionInvalid("an address needs its street line and a ZIP code (or a city and a state)")
    return hashed


def value_normalise(kind: str, value: str = "", **address) -> str:
    """`value` of `kind` as an upload would store it (or, for an address, its hash from the address parts:
    address, unit, city, state, zip_code; a 64-digit hash given as the value is taken as it is)."""
    value = (value or "").strip()
    if kind == SuppressionKind.EMAIL:
        normalised = n.email(value)
        if not normalised:
            raise SuppressionInvalid("not an e-mail address")
        return normalised
    if kind == SuppressionKind.PHONE:
        normalised = n.phone(value)
        if not normalised:
            raise SuppressionInvalid("not a phone number")
        return normalised
    if kind == SuppressionKind.EMAIL_DOMAIN:
        return value.lower().lstrip("@")
    if kind == SuppressionKind.ADDRESS:
        if address.get("address"):
            return address_hash(address["address"], **{key: item for key, item in address.items() if key != "address"})
        return value.lower()
    raise SuppressionInvalid(f"unknown kind {kind!r}: one of {', '.join(SuppressionKind.values)}")
