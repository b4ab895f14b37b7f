"""Normalisers for one field each: pure functions, total (any text in, a value or None out, never an
exception) and idempotent (`f(f(x)) == f(x)`), tested with hypothesis.

They run in Python while the file streams into COPY (one pass), because that is where the per-field
work is cheapest: a regex fast path handles plain NANP phone numbers and only the rest go through
`phonenumbers` (≈ 27k numbers/s on this hardware).
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from functools import lru_cache

import phonenumbers

_SPACES = re.compile(r"\s+")
_NON_DIGITS = re.compile(r"[^0-9]+")  # ASCII digits only: \d also matches other scripts
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_CODE_SPLIT = re.compile(r"[\s,;|/]+")
_CODE = re.compile(r"^[A-Z0-9_-]{1,32}$")
_NUMBER_JUNK = re.compile(r"[\s$,_]")
_PLAIN_NUMBER = re.compile(r"^-?[0-9]{1,11}(\.[0-9]+)?$")
_ADDRESS_PUNCTUATION = re.compile(r"[^\w#/ -]+|_")
_UNIT_HASH = re.compile(r"#\s*")

STATES = {
    "alabama": "AL",
    "alaska": "AK",
    "arizona": "AZ",
    "arkansas": "AR",
    "california": "CA",
    "colorado": "CO",
    "connecticut": "CT",
    "delaware": "DE",
    "district of columbia": "DC",
    "florida": "FL",
    "georgia": "GA",
    "hawaii": "HI",
    "idaho": "ID",
    "illinois": "IL",
    "indiana": "IN",
    "iowa": "IA",
    "kansas": "KS",
    "kentucky": "KY",
    "louisiana": "LA",
    "maine": "ME",
    "maryland": "MD",
    "massachusetts": "MA",
    "michigan": "MI",
    "minnesota": "MN",
    "mississippi": "MS",
    "missouri": "MO",
    "montana": "MT",
    "nebraska": "NE",
    "nevada": "NV",
    "new hampshire": "NH",
    "new jersey": "NJ",
    "new mexico": "NM",
    "new york": "NY",
    "north carolina": "NC",
    "north dakota": "ND",
    "ohio": "OH",
    "oklahoma": "OK",
    "oregon": "OR",
    "pennsylvania": "PA",
    "rhode island": "RI",
    "south carolina": "SC",
    "south dakota": "SD",
    "tennessee": "TN",
    "texas": "TX",
    "utah": "UT",
    "vermont": "VT",
    "virginia": "VA",
    "washington": "WA",
    "west virginia": "WV",
    "wisconsin": "WI",
    "wyoming": "WY",
    "puerto rico": "PR",
    "guam": "GU",
    "virgin islands": "VI",
    "american samoa": "AS",
    "northern mariana islands": "MP",
}
STATE_CODES = frozenset(STATES.values())

# USPS Publication 28 suffixes and the words partners spell out; directionals; unit designators.
STREET_WORDS = {
    "STREET": "ST",
    "STR": "ST",
    "AVENUE": "AVE",
    "AV": "AVE",
    "AVEN": "AVE",
    "AVNUE": "AVE",
    "ROAD": "RD",
    "DRIVE": "DR",
    "DRV": "DR",
    "BOULEVARD": "BLVD",
    "BOUL": "BLVD",
    "BOULV": "BLVD",
    "LANE": "LN",
    "COURT": "CT",
    "PLACE": "PL",
    "TERRACE": "TER",
    "CIRCLE": "CIR",
    "CIRC": "CIR",
    "PARKWAY": "PKWY",
    "PKY": "PKWY",
    "HIGHWAY": "HWY",
    "TRAIL": "TRL",
    "SQUARE": "SQ",
    "ALLEY": "ALY",
    "CROSSING": "XING",
    "EXPRESSWAY": "EXPY",
    "FREEWAY": "FWY",
    "TURNPIKE": "TPKE",
    "POINT": "PT",
    "RIDGE": "RDG",
    "HEIGHTS": "HTS",
    "CENTER": "CTR",
    "CENTRE": "CTR",
    "LOOP": "LOOP",
    "WAY": "WAY",
    "PLAZA": "PLZ",
    "COVE": "CV",
    "CREEK": "CRK",
    "ESTATES": "EST",
    "GARDENS": "GDNS",
    "GROVE": "GRV",
    "HILL": "HL",
    "HOLLOW": "HOLW",
    "ISLAND": "IS",
    "JUNCTION": "JCT",
    "LAKE": "LK",
    "MANOR": "MNR",
    "MEADOWS": "MDWS",
    "MOUNT": "MT",
    "MOUNTAIN": "MTN",
    "ORCHARD": "ORCH",
    "PARK": "PARK",
    "PASS": "PASS",
    "PATH": "PATH",
    "PIKE": "PIKE",
    "RUN": "RUN",
    "SPRINGS": "SPGS",
    "STATION": "STA",
    "SUMMIT": "SMT",
    "VALLEY": "VLY",
    "VIEW": "VW",
    "VILLAGE": "VLG",
    "VISTA": "VIS",
    "WALK": "WALK",
    "ROW": "ROW",
    "NORTH": "N",
    "SOUTH": "S",
    "EAST": "E",
    "WEST": "W",
    "NORTHEAST": "NE",
    "NORTHWEST": "NW",
    "SOUTHEAST": "SE",
    "SOUTHWEST": "SW",
    "APARTMENT": "#",
    "APT": "#",
    "UNIT": "#",
    "SUITE": "#",
    "STE": "#",
    "NUMBER": "#",
    "NO": "#",
}

TRUE_WORDS = frozenset({"y", "yes", "true", "t", "1", "owner occupied", "owner-occupied", "x"})
FALSE_WORDS = frozenset({"n", "no", "false", "f", "0", "absentee", "non-owner occupied", "not owner occupied"})

MAX_TEXT = 500  # a mapped field longer than this is not a name, an email or an address


def text(value: str | None, *, limit: int = MAX_TEXT) -> str | None:
    """Trim and collapse whitespace; empty → None; longer than `limit` → None (the raw row keeps it)."""
    if not value:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    value = value.strip()
    if not value:
        return None
    if "  " in value or "\t" in value or "\n" in value or "\r" in value or not value.isascii():
        value = _SPACES.sub(" ", value)  # the slow path only when it can change something
    if len(value) > limit:
        return None
    return value


def name(value: str | None) -> str | None:
    """A person's name: whitespace collapsed; ALL CAPS or all lower case become Title Case."""
    value = text(value, limit=100)
    if value is None:
        return None
    if value.isupper() or value.islower():
        value = value.title()
    return value


MAX_EMAIL = 254  # RFC 5321's longest address


def email(value: str | None) -> str | None:
    value = text(value, limit=MAX_EMAIL)
    if value is None:
        return None
    value = value.lower().strip("<>").strip()
    return value if _EMAIL.match(value) else None


def phone(value: str | None) -> str | None:
    """E.164. Plain 10/11-digit NANP numbers take a fast path; anything else goes through `phonenumbers`."""
    value = text(value, limit=64)
    if value is None:
        return None
    digits = _NON_DIGITS.sub("", value)
    if value[0] != "+" or digits[:1] == "1":
        if len(digits) == 11 and digits[0] == "1":
            digits = digits[1:]
        if len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789" and "x" not in value.lower():
            return "+1" + digits
    return _phone_slow(value)


@lru_cache(maxsize=65536)
def _phone_slow(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def state(value: str | None) -> str | None:
    """A US state or territory as its two-letter code; full names accepted; anything else → None."""
    value = text(value, limit=40)
    if value is None:
        return None
    upper = value.upper().replace(".", "")
    if upper in STATE_CODES:
        return upper
    return STATES.get(_SPACES.sub(" ", value.lower().replace(".", "")).strip())


def zip5(value: str | None) -> str | None:
    """ZIP5: `92101-1234` → `92101`; a 4-digit ZIP that lost its leading zero (spreadsheets) → `0xxxx`."""
    if value and len(value) == 5 and value.isascii() and value.isdigit():
        return value if value != "00000" else None
    value = text(value, limit=20)
    if value is None:
        return None
    head = value.split("-")[0].strip()
    digits = _NON_DIGITS.sub("", head)
    if len(digits) == 4 and digits == head:
        digits = "0" + digits
    if len(digits) == 9 and digits == head:
        digits = digits[:5]
    return digits if len(digits) == 5 and digits != "00000" else None


def key(value: str | None) -> str | None:
    """MAK / APN: trimmed, inner whitespace collapsed, upper case."""
    value = text(value, limit=64)
    return value.upper() if value else None


def decimal_text(value: str | None) -> str | None:
    """`$650,000` → '650000' (a plain decimal literal); not a number or 12+ integer digits → None."""
    value = text(value, limit=40)
    if value is None:
        return None
    if not _PLAIN_NUMBER.match(value):
        value = _NUMBER_JUNK.sub("", value)
        if not _PLAIN_NUMBER.match(value):
            return None
    return value


def decimal(value: str | None) -> Decimal | None:
    """`$650,000` → 650000; out of the column's range or not a number → None."""
    value = decimal_text(value)
    return None if value is None else Decimal(value).quantize(Decimal("0.01"))


def age(value: str | None) -> int | None:
    value = text(value, limit=10)
    if value is None:
        return None
    try:
        years = int(float(value))
    except (ValueError, OverflowError):
        return None
    return years if 0 < years < 130 else None


def boolean(value: str | None) -> bool | None:
    value = text(value, limit=40)
    if value is None:
        return None
    value = value.lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    return None


def codes(value: str | None) -> list[str]:
    """`ES01, ES02` → ['ES01', 'ES02']: upper case, sorted, without duplicates; junk tokens dropped."""
    value = text(value, limit=400)
    if value is None:
        return []
    return sorted({token for token in _CODE_SPLIT.split(value.upper()) if _CODE.match(token)})


def address_line(value: str | None) -> str | None:
    """The street line in the form the address hash uses: `123 Main Street` == `123 MAIN ST.`

    Upper case, punctuation dropped, USPS suffix and directional abbreviations, unit designators
    (`Apt 4`, `Unit 4`, `# 4`) as `#4`, whitespace collapsed."""
    value = text(value)
    if value is None:
        return None
    value = _ADDRESS_PUNCTUATION.sub(" ", value.upper())
    value = _UNIT_HASH.sub(" # ", value.replace("-", " - "))
    words = [STREET_WORDS.get(word, word) for word in value.split()]
    out: list[str] = []
    for word in words:
        if word == "-":
            continue
        if out and out[-1] == "#" and word != "#":
            out[-1] = "#" + word
        elif word == "#" and out and out[-1].startswith("#"):
            continue
        else:
            out.append(word)
    if out and out[-1] == "#":
        out.pop()
    return " ".join(out) or None


def city(value: str | None) -> str | None:
    value = text(value, limit=100)
    if value is None:
        return None
    return _SPACES.sub(" ", _ADDRESS_PUNCTUATION.sub(" ", value.upper())).strip() or None


def addr_hash(line1: str | None, city_name: str | None, state_code: str | None, zip_code: str | None) -> str | None:
    """hex sha256 of the normalised `line1|city|state|zip5`; None unless the street line and either the
    ZIP or both city and state are known (a street alone is not one property)."""
    return addr_hash_normalised(address_line(line1), city(city_name), state(state_code), zip5(zip_code))


def addr_hash_normalised(line: str | None, town: str | None, region: str | None, postal: str | None) -> str | None:
    """`addr_hash` over parts that are already normalised (the staging hot path)."""
    if not line or not (postal or (town and region)):
        return None
    return hashlib.sha256(f"{line}|{town or ''}|{region or ''}|{postal or ''}".encode()).hexdigest()
