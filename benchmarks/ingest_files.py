"""The synthetic PropStream-like files of the ingestion benchmark (`benchmarks/ingest.py`): 25 columns,
~15% in-file duplicate keys, repeats spelled differently (`Street`/`ST.`, ZIP+4, upper-case email), and
optionally the same rows already clean and deduplicated, in `leads`' own columns, for the clean-COPY floor.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
from pathlib import Path

HEADERS = [
    "Address",
    "Unit #",
    "City",
    "State",
    "Zip",
    "County",
    "APN",
    "MAK",
    "Owner Occupied",
    "Owner 1 First Name",
    "Owner 1 Last Name",
    "Mailing Address",
    "Mailing City",
    "Mailing State",
    "Mailing Zip",
    "Property Type",
    "Bedrooms",
    "Bathrooms",
    "Est. Value",
    "Est. Equity",
    "Phone 1",
    "Phone 1 Type",
    "Email 1",
    "Age",
    "Last Sale Date",
]
CLEAN_COLUMNS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "property_address",
    "property_city",
    "property_state",
    "property_zip",
    "property_value",
    "estimated_equity",
    "property_type",
    "age",
    "owner_occupied",
    "mak",
    "apn",
    "addr_hash",
    "mailing_address",
    "mailing_city",
    "mailing_state",
    "mailing_zip",
]
FIRST = ["JOHN", "Mary", "robert", "Linda", "MICHAEL", "Barbara", "William", "Elizabeth", "David", "Susan"]
LAST = ["SMITH", "Johnson", "williams", "Brown", "JONES", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez"]
STREETS = ["Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Sunset"]
SUFFIXES = [("Street", "ST."), ("Avenue", "AVE"), ("Drive", "Dr"), ("Road", "RD."), ("Boulevard", "Blvd")]
CITIES = [
    ("San Diego", "CA", "921"),
    ("Phoenix", "AZ", "850"),
    ("Austin", "TX", "787"),
    ("Miami", "FL", "331"),
    ("Portland", "OR", "972"),
    ("Las Vegas", "NV", "891"),
    ("Denver", "CO", "802"),
    ("Tampa", "FL", "336"),
]
TYPES = ["Single Family", "Condo", "Townhouse", "Multi-Family"]

# With `scrambled_keys`, key k is written as the parcel number (k * KEY_MULTIPLIER) mod KEY_MODULUS (a bijection
# on 0…KEY_MODULUS-1, the modulus prime), so a file's APNs and MAKs land all over the key space, among a large
# table's, as real parcel numbers do, instead of after them; the growth benchmark's preloaded leads
# (benchmarks/ingest_growth.py) use the same numbers in SQL.
KEY_MODULUS = 999_999_937
KEY_MULTIPLIER = 387_420_489


def parcel_number(k: int, *, scrambled: bool) -> int:
    return k * KEY_MULTIPLIER % KEY_MODULUS if scrambled else k


def _property(
    k: int, variant: bool, revision: int = 0, address_of: int | None = None, scrambled_keys: bool = False
) -> tuple[list[str], list]:
    """Key `k`'s row (raw and clean); `address_of`: another key whose street address it shares (two parcels at
    one address, no unit), with its own APN, MAK and owner."""
    rng = random.Random(k)  # the same key always describes the same property
    a = k if address_of is None else address_of
    city, state, prefix = CITIES[a % len(CITIES)]
    zip5 = f"{prefix}{a % 100:02d}"
    street = STREETS[(a // 7) % len(STREETS)]
    long_suffix, short_suffix = SUFFIXES[(a // 3) % len(SUFFIXES)]
    number = 100 + a
    address = f"{number} {street} {short_suffix if variant else long_suffix}"
    first, last = FIRST[k % 10], LAST[(k // 10) % 10]
    value = 200_000 + rng.randrange(0, 1_500_000, 1000) + revision * 5_000  # a later file: a new valuation
    equity = int(value * rng.uniform(0.2, 1.0))
    age = 55 + rng.randrange(0, 35)
    phone_digits = f"{rng.randrange(201, 989)}{rng.randrange(200, 999)}{rng.randrange(1000, 9999)}"
    email = f"{first.lower()}.{last.lower()}{k}@example.com"
    owner = rng.random() < 0.85
    ptype = TYPES[k % 4]
    parcel = parcel_number(k, scrambled=scrambled_keys)
    raw = [
        address,
        "",
        city,
        state,
        zip5 if not variant else f"{zip5}-{k % 9000 + 1000}",
        "County",
        f"{parcel:09d}-A",
        f"MAK{parcel:010d}",
        "Yes" if owner else "No",
        first,
        last,
        f"PO Box {k}",
        city,
        state,
        zip5,
        ptype,
        str(rng.randrange(1, 6)),
        str(rng.randrange(1, 4)),
        f"${value:,}",
        str(equity),
        f"({phone_digits[:3]}) {phone_digits[3:6]}-{phone_digits[6:]}",
        "Mobile",
        email.upper() if variant else email,
        str(age),
        "2001-01-01",
    ]
    line1 = f"{number} {street.upper()} {short_suffix.rstrip('.').upper()}"
    city_norm = city.upper()
    clean = [
        first.title(),
        last.title(),
        email,
        f"+1{phone_digits}",
        address,
        city,
        state,
        zip5,
        value,
        equity,
        ptype,
        age,
        "t" if owner else "f",
        f"MAK{parcel:010d}",
        f"{parcel:09d}-A",
        hashlib.sha256(f"{line1}|{city_norm}|{state}|{zip5}".encode()).hexdigest(),
        f"PO Box {k}",
        city,
        state,
        zip5,
    ]
    return raw, clean


def generate(
    path: Path,
    rows: int,
    *,
    offset: int,
    clean_path: Path | None = None,
    seed: int = 7,
    revision: int = 0,
    shared_address: float = 0.0,
    scrambled_keys: bool = False,
) -> int:
    """A PropStream-like file: `rows` rows, ~15% repeating an earlier key of the same file; a share
    `shared_address` of the rows share their street address with one other parcel (pairs of keys). Returns
    the number of distinct keys. `scrambled_keys`: APNs and MAKs spread over the key space (see
    `parcel_number`)."""
    rng = random.Random(seed + offset)
    distinct = int(rows * 0.85)
    keys = list(range(offset, offset + distinct))
    keys += [rng.choice(keys) for _ in range(rows - distinct)]
    rng.shuffle(keys)
    seen: set[int] = set()
    with (
        path.open("w", newline="") as handle,
        clean_path.open("w", newline="") if clean_path else open(os.devnull, "w") as clean_handle,
    ):
        writer, clean_writer = csv.writer(handle), csv.writer(clean_handle)
        writer.writerow(HEADERS)
        for k in keys:
            repeat = k in seen
            # Keys pair up (even, odd); in a share `shared_address` of the pairs, the odd one takes the even one's
            # address: that share of the rows shares its street address with another parcel.
            shares = shared_address and k % 2 and random.Random(k - 1 + seed).random() < shared_address
            raw, clean = _property(
                k,
                variant=repeat,
                revision=revision,
                address_of=k - 1 if shares else None,
                scrambled_keys=scrambled_keys,
            )
            writer.writerow(raw)
            if not repeat:
                seen.add(k)
                if clean_path:
                    clean_writer.writerow(clean)
    return distinct
