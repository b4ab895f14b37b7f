"""The fast path of staging: a block of CSV records normalised column by column, with the careful per-value
normalisers of pipeline/ingest/normalise.py only for what a fast path cannot decide. Pure: no database.

`StagingLayout.row` (pipeline/ingest/rows.py) shapes one record with a call per field; over a million rows the
calls themselves cost as much as the work. Here a block of rows becomes columns, and each column goes through
one of three kinds of step:
- a value that repeats across a file (names, cities, states, ZIP codes, valuations, types, flags, the
  territory's broker) is normalised once per distinct value of a bounded cache, and the column is one `map`
  over the cache;
- a column of mostly distinct values with a common shape (US 10-digit phones in their usual spellings,
  lower-case e-mails, ZIP+4, MAK/APN keys, plain street lines) is matched against a precompiled pattern of
  that shape, and only the values that do not match go through the careful normaliser (`phonenumbers` for
  phones); every fast path returns exactly what the careful one returns for the values it accepts;
- the blind indexes and the encryption of a column run in one call each (security/pii.py `blind_index_many`,
  `encrypt_many`).

The staged rows are equal to `StagingLayout.row`'s, value for value (encrypted values after decryption, their
nonces differing): tests/pipeline/test_ingest_columnar.py checks it on the corpus of awkward CSVs and on
generated rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import repeat
from json.encoder import encode_basestring as encode_string

from security.pii import EMAIL, EMAIL_DOMAIN, PHONE, PHONE_LAST4, RAW_ROW, email_domain, phone_last4

from . import normalise as n

_CACHE_SIZE = 1 << 16

REASON_NO_KEY = (
    "no dedupe key: the row has no MAK, no APN and no usable address (a street line with a ZIP code, or "
    "with a city and a state) — add one of them and reprocess the row"
)


def codes_array(values: list[str]) -> str | None:
    """Verification codes as a text[] literal (codes are [A-Z0-9_-]: nothing to quote)."""
    return "{" + ",".join(values) + "}" if values else None


def flag_text(value: bool | None) -> str | None:
    return None if value is None else ("t" if value else "f")


# A US number in its usual spellings: `6195551234`, `619-555-1234`, `(619) 555-1234`, `619.555.1234`,
# `+1 619 555 1234`, `1-619-555-1234`. Area code and exchange start with 2-9, as the careful path requires.
_US_PHONE = re.compile(
    r"(?:\+?1[ .-]?)?(?:\(([2-9][0-9]{2})\) ?|([2-9][0-9]{2})[ .-]?)([2-9][0-9]{2})[ .-]?([0-9]{4})"
)
# A lower-case address with nothing to trim or quote: the careful path returns it as it is.
_PLAIN_EMAIL = re.compile(r"[a-z0-9._%+'-]{1,64}@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z0-9-]+")
_ZIP = re.compile(r"([0-9]{5})(?:-[0-9]{4})?")
_PLAIN_KEY = re.compile(r"[!-~]{1,64}")  # printable ASCII without spaces: only upper-cased
# A street line of letters, digits, single spaces and the punctuation `address_line` turns into spaces.
_PLAIN_STREET = re.compile(r"[A-Za-z0-9][A-Za-z0-9.,']*(?: [A-Za-z0-9.,']+)*")
_PLAIN_STREETS = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9.,']*(?: [A-Za-z0-9.,']+)*)?(?:\n(?:[A-Za-z0-9][A-Za-z0-9.,']*(?: [A-Za-z0-9.,']+)*)?)*"
)
_STREET_PUNCTUATION = str.maketrans(".,'", "   ")
_SPACE_RUNS = re.compile(r"  +")
_STREET_WORDS_GET = n.STREET_WORDS.get


def cached_column(function: Callable[[str], object]) -> Callable[[tuple | list], list]:
    """A function: a column → `function` of each value, computed once per distinct value (a bounded cache kept
    across blocks, emptied when it would pass _CACHE_SIZE entries)."""
    cache: dict[str, object] = {}

    def column_of(values):
        new = set(values).difference(cache)
        if new:
            if len(cache) + len(new) > _CACHE_SIZE:  # bounded: memory stays flat on any file
                cache.clear()
                new = set(values)
            for value in new:
                cache[value] = function(value)
        return list(map(cache.__getitem__, values))

    return column_of


def phones(values) -> list[str | None]:
    """`normalise.phone` of each value: the usual US spellings by pattern, the rest by the careful path."""
    match, careful = _US_PHONE.fullmatch, n.phone
    out = []
    for value in values:
        found = match(value) if value else None
        if found is None:
            out.append(careful(value) if value else None)
        else:
            area, plain_area, exchange, line = found.groups()
            out.append(f"+1{area or plain_area}{exchange}{line}")
    return out


def emails(values) -> list[str | None]:
    """`normalise.email` of each value: an ASCII column is lower-cased in one call, and an address already in
    its plain shape is taken as it is; the rest by the careful path."""
    joined = "\n".join(values)
    if joined.isascii() and joined.count("\n") == len(values) - 1:
        lowered = joined.lower().split("\n") if values else []
    else:
        lowered = [value.lower() for value in values]
    match, careful = _PLAIN_EMAIL.fullmatch, n.email
    return [
        low if len(low) <= n.MAX_EMAIL and match(low) else (careful(value) if value else None)
        for value, low in zip(values, lowered, strict=True)
    ]


def zips(values) -> list[str | None]:
    """`normalise.zip5` of each value: ZIP5 and ZIP+4 by pattern (but `00000`), the rest by the careful path."""
    match, careful = _ZIP.fullmatch, n.zip5
    out = []
    for value in values:
        found = match(value) if value else None
        head = found.group(1) if found else None
        out.append(head if head and head != "00000" else careful(value) if value else None)
    return out


def keys(values) -> list[str | None]:
    """`normalise.key` of each value (MAK, APN): printable ASCII without spaces is only upper-cased."""
    match, careful = _PLAIN_KEY.fullmatch, n.key
    return [value.upper() if match(value) else (careful(value) if value else None) for value in values]


def address_lines(values) -> list[str | None]:
    """`normalise.address_line` of each value (already `normalise.text`): when every line of the column is made
    of letters, digits, single spaces and `.,'` only, the whole column is upper-cased, its punctuation turned into
    spaces and its suffixes and directionals abbreviated in one pass each (one string for the block); a line with
    a unit word, and every line of a column with a `#`, a hyphen or anything else, goes through the careful path
    line by line."""
    joined = "\n".join([value or "" for value in values])
    if joined.count("\n") != len(values) - 1 or not _PLAIN_STREETS.fullmatch(joined):
        return [address_lines_one(value) for value in values]
    words = _SPACE_RUNS.sub(" ", joined.upper().translate(_STREET_PUNCTUATION)).replace(" \n", "\n").rstrip(" ")
    # Every word of the block through the suffix table in one `map` (line breaks as words of their own).
    tokens = words.replace("\n", " \n ").split(" ")
    abbreviated = list(map(_STREET_WORDS_GET, tokens, tokens))
    out = [line or None for line in " ".join(abbreviated).replace(" \n ", "\n").split("\n")]
    if "#" in abbreviated:  # `Apt 4` and the like become `#4`: the careful path's loop decides those lines
        for position, line in enumerate(words.split("\n")):
            if "#" in map(_STREET_WORDS_GET, line.split(" ")):
                out[position] = n.address_line(values[position])
    return out


def address_lines_one(value: str | None) -> str | None:
    """`normalise.address_line` of one value: a plain line (see `address_lines`) here, the rest the careful way."""
    if value and _PLAIN_STREET.fullmatch(value):
        words = [n.STREET_WORDS.get(word, word) for word in value.upper().translate(_STREET_PUNCTUATION).split()]
        if "#" not in words:
            return " ".join(words) or None
    return n.address_line(value) if value else None


def block_function(layout, fields, broker_id, territory, email_codes, phone_codes, codec):
    """A function: a list of (cells, line) pairs → (the staged columns, rows rejected); each column holds
    the block's values of one staged column, in `StagingLayout.row`'s order."""
    width = layout.width
    upload_id = layout.upload_id
    raw_json = layout._raw_json()
    encode = encode_string
    unknown = [(index, encode_string(layout.raw_keys[index]) + ":") for index in layout.unknown]
    sealed_unknown = layout.sealed_unknown
    get = fields.get
    missing = width  # a column the file lacks reads an all-blank column
    i_first, i_last = get("first_name", missing), get("last_name", missing)
    i_email, i_phone = get("email", missing), get("phone", missing)
    i_address, i_unit, i_city = get("property_address", missing), get("unit", missing), get("property_city", missing)
    i_state, i_zip = get("property_state", missing), get("property_zip", missing)
    i_mak, i_apn = get("mak", missing), get("apn", missing)
    i_value, i_equity = get("property_value", missing), get("estimated_equity", missing)
    i_type, i_age, i_owner = get("property_type", missing), get("age", missing), get("owner_occupied", missing)
    i_ecodes, i_pcodes = get("email_verification_codes", missing), get("phone_verification_codes", missing)
    i_owner2, i_owner2_first, i_owner2_last = (
        get("owner2_name", missing),
        get("owner2_first_name", missing),
        get("owner2_last_name", missing),
    )
    i_ever, i_pver = get("email_verified", missing), get("phone_verified", missing)
    i_mail, i_mail_unit, i_mail_city, i_mail_state, i_mail_zip = (
        get(name, missing)
        for name in ("mailing_address", "mailing_unit", "mailing_city", "mailing_state", "mailing_zip")
    )
    text = n.text
    names = cached_column(n.name)
    states = cached_column(n.state)
    zip_codes = cached_column(n.zip5)  # a file's ZIP5s repeat; its ZIP+4s go through `zips`
    decimals = cached_column(n.decimal_text)
    ages = cached_column(lambda value: None if (years := n.age(value)) is None else str(years))
    booleans = cached_column(n.boolean)
    towns = cached_column(lambda value: text(value, limit=100))
    cities = cached_column(lambda value: n.city(value) if value else None)
    property_types = cached_column(lambda value: text(value, limit=100))
    owner_flags = cached_column(lambda value: None if not value else flag_text(n.boolean(value)))
    domain_indexes = cached_column(lambda domain: codec.blind_index(domain, EMAIL_DOMAIN))
    broker_for = territory.broker_for
    brokers = cached_column(lambda pair: broker_for(*pair))
    texts = cached_column(text)
    addr_hash = n.addr_hash_normalised

    def zip_column(values):
        # Mostly one spelling per file: ZIP+4 (distinct per row) by pattern, ZIP5 through the cache.
        if any(len(value) > 5 for value in values):
            return zips(values)
        return zip_codes(values)

    def block(pairs: list[tuple[list[str], int]]) -> tuple[list[list], int]:
        count = len(pairs)
        rows, extras = [], []
        for row, _ in pairs:
            if len(row) == width:
                rows.append(row)
                extras.append(None)
            elif len(row) > width:
                rows.append(row[:width])
                extras.append(row[width:])
            else:
                rows.append(row + [""] * (width - len(row)))
                extras.append(None)
        columns = list(zip(*rows, strict=True)) if rows and width else [()] * width
        columns.append(("",) * count)  # the blank column that missing columns read

        payload = [None] * count
        if unknown:  # trimmed of spaces only (as SQL btrim), blanks dropped, nothing left → NULL
            parts = []
            for index, prefix in unknown:
                values = [value.strip(" ") for value in columns[index]]
                if index in sealed_unknown:
                    values = codec.encrypt_many(values, sealed_unknown[index])
                parts.append([prefix + encode(value) if value else "" for value in values])
            payload = [
                "{" + joined + "}" if (joined := ",".join(filter(None, cells))) else None
                for cells in zip(*parts, strict=True)
            ]

        address = [text(value) for value in columns[i_address]]
        if i_unit != missing:
            for position, unit in enumerate(columns[i_unit]):
                if address[position] and unit:
                    unit = text(unit, limit=40)
                    if unit:
                        address[position] = f"{address[position]} #{unit.lstrip('#').strip()}"
        town = towns(columns[i_city])
        state_code = states(columns[i_state])
        zip_code = zip_column(columns[i_zip])
        mak, apn = keys(columns[i_mak]), keys(columns[i_apn])
        lines = address_lines(address)
        town_normal = cities([value or "" for value in town])
        hashed = [
            addr_hash(line, city, region, postal) if street else None
            for street, line, city, region, postal in zip(
                address, lines, town_normal, state_code, zip_code, strict=True
            )
        ]
        reason = [None if (a or b or c) else REASON_NO_KEY for a, b, c in zip(mak, apn, hashed, strict=True)]
        raw = [None] * count
        rejected = count - reason.count(None)
        if rejected:
            for position, why in enumerate(reason):
                if why is not None:
                    sealed = codec.encrypt(raw_json(rows[position], extras[position]), RAW_ROW)
                    raw[position] = '{"encrypted":"' + sealed + '"}'

        email_verified = phone_verified = None
        email_codes_text, phone_codes_text = repeat(None, count), repeat(None, count)
        if i_ecodes != missing or i_ever != missing:
            email_codes_text, email_verified = _verified(columns[i_ecodes], columns[i_ever], email_codes, booleans)
        if i_pcodes != missing or i_pver != missing:
            phone_codes_text, phone_verified = _verified(columns[i_pcodes], columns[i_pver], phone_codes, booleans)

        email_value, phone_value = emails(columns[i_email]), phones(columns[i_phone])
        email_index = codec.blind_index_many(email_value, EMAIL)
        domain_index = domain_indexes([email_domain(value) if value else None for value in email_value])
        phone_index = codec.blind_index_many(phone_value, PHONE)
        last4 = [
            None if not value else value[-4:] if value[1:].isdigit() and len(value) > 4 else phone_last4(value)
            for value in phone_value
        ]
        last4_index = codec.blind_index_many(last4, PHONE_LAST4)
        broker = repeat(broker_id, count) if broker_id else brokers(list(zip(zip_code, state_code, strict=True)))

        if i_owner2 == i_owner2_first == i_owner2_last == missing:
            owner2 = repeat(None, count)
        else:
            full, first, last = names(columns[i_owner2]), names(columns[i_owner2_first]), names(columns[i_owner2_last])
            owner2 = [
                a
                if columns[i_owner2][p]
                else (" ".join(x for x in (b, c) if x) or None)
                if (columns[i_owner2_first][p] or columns[i_owner2_last][p])
                else None
                for p, (a, b, c) in enumerate(zip(full, first, last, strict=True))
            ]
        mailing = texts(columns[i_mail])
        if i_mail_unit != missing:
            for position, unit in enumerate(columns[i_mail_unit]):
                if mailing[position] and unit:
                    unit = text(unit, limit=40)
                    if unit:
                        mailing[position] = f"{mailing[position]} #{unit.lstrip('#').strip()}"

        staged = [
            repeat(upload_id, count),
            [str(line) for _, line in pairs],
            raw,
            payload,
            names(columns[i_first]),
            names(columns[i_last]),
            codec.encrypt_many(email_value, EMAIL),
            codec.encrypt_many(phone_value, PHONE),
            email_index,
            domain_index,
            phone_index,
            last4_index,
            address,
            town,
            state_code,
            zip_code,
            mak,
            apn,
            hashed,
            reason,
            decimals(columns[i_value]),
            decimals(columns[i_equity]),
            property_types(columns[i_type]),
            ages(columns[i_age]),
            owner_flags(columns[i_owner]),
            repeat("f", count) if email_verified is None else email_verified,
            repeat("f", count) if phone_verified is None else phone_verified,
            email_codes_text,
            phone_codes_text,
            broker,
            owner2,
            mailing,
            towns(columns[i_mail_city]),
            states(columns[i_mail_state]),
            zip_column(columns[i_mail_zip]),
        ]
        return [column if isinstance(column, list) else list(column) for column in staged], rejected

    def _verified(code_cells, flag_cells, verified_codes, booleans_of):
        """(the codes as a text[] literal or None, 't'/'f') per row, as `StagingLayout.row` decides them."""
        codes_text, verified = [], []
        flags = booleans_of(flag_cells)
        for cell, flag in zip(code_cells, flags, strict=True):
            found_text, yes = None, False
            if cell:
                found = n.codes(cell)
                yes = any(code in verified_codes for code in found)
                found_text = codes_array(found)
            codes_text.append(found_text)
            verified.append("t" if yes or flag else "f")
        return codes_text, verified

    return block
