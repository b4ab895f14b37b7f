"""Row shaping: one CSV record in, one `leads_staging` row out (as COPY text), pure.

`StagingLayout(headers, …)` maps the file's header once; its `row(cells, line)` normalises one record (names,
e-mail, E.164 phone, address line and unit, city, state, ZIP5, MAK, APN, the address hash, valuations,
flags, verification codes, the broker from the upload or the territory rules, the owner's mailing address,
the blind indexes of e-mail and phone) and encrypts what holds personal data (AES-GCM, security/pii.py): the
e-mail, the phone, and — for a rejected row only, the one the DLQ keeps — the raw record, as JSON text sealed
whole (`{"encrypted": "<token>"}`, kind `raw_row`; NULL for a valid row); `write_copy_text(copy, pairs)`
writes many rows as COPY text in blocks, through the fast path (`block`, pipeline/ingest/columnar.py), whose
staged rows equal `row`'s. No database, no Django: the normaliser child processes run this.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from json.encoder import encode_basestring as encode_string

from security.pii import EMAIL, EMAIL_DOMAIN, PHONE, PHONE_LAST4, RAW_ROW, PiiCodec, email_domain, phone_last4

from . import normalise as n
from .columnar import REASON_NO_KEY, block_function, codes_array, flag_text
from .columns import contact_kind, map_headers

# The normalised columns, in the order the row function emits them after the raw fields.
NORMALISED = (
    ("first_name", "text"),
    ("last_name", "text"),
    ("email", "text"),
    ("phone", "text"),
    ("email_bidx", "text"),
    ("email_domain_bidx", "text"),
    ("phone_bidx", "text"),
    ("phone_last4_bidx", "text"),
    ("property_address", "text"),
    ("property_city", "text"),
    ("property_state", "text"),
    ("property_zip", "text"),
    ("mak", "text"),
    ("apn", "text"),
    ("addr_hash", "text"),
    ("reject_reason", "text"),
    ("property_value", "numeric(14,2)"),
    ("estimated_equity", "numeric(14,2)"),
    ("property_type", "text"),
    ("age", "integer"),
    ("owner_occupied", "boolean"),
    ("email_verified", "boolean"),
    ("phone_verified", "boolean"),
    ("email_verification_codes", "text[]"),
    ("phone_verification_codes", "text[]"),
    ("assigned_broker_id", "uuid"),
    ("owner2_name", "text"),
    ("mailing_address", "text"),
    ("mailing_city", "text"),
    ("mailing_state", "text"),
    ("mailing_zip", "text"),
)
NORMALISED_NAMES = tuple(name for name, _ in NORMALISED)


@dataclass
class Territory:
    """Brokers' territory rules: ZIP prefixes (longest match wins) before states."""

    by_prefix: dict[str, str] = field(default_factory=dict)
    by_state: dict[str, str] = field(default_factory=dict)

    def broker_for(self, zip_code: str | None, state_code: str | None) -> str | None:
        if zip_code and self.by_prefix:
            for length in range(5, 0, -1):
                broker = self.by_prefix.get(zip_code[:length])
                if broker:
                    return broker
        if state_code:
            return self.by_state.get(state_code)
        return None


_CACHE_SIZE = 1 << 16
BLOCK_ROWS = 512  # rows normalised together by the fast path, and written as one piece of COPY text


def _copy_escape(value: str) -> str:
    """One value in COPY's text format (the slow path: any backslash, tab or line break escaped)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _cached(function: Callable[[str], object]) -> Callable[[str], object]:
    """`function` memoised per input string in a dict that is emptied when it reaches _CACHE_SIZE."""
    cache: dict[str, object] = {}

    def cached(value: str):
        try:
            return cache[value]
        except KeyError:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            result = cache[value] = function(value)
            return result

    return cached


def _brace(value: str) -> str:
    return value.replace("{", "{{").replace("}", "}}")


class StagingLayout:
    """How one file's rows become `leads_staging` rows, as COPY text (pipeline/ingest/staging.py sends it to
    PostgreSQL). Each COPY row carries the raw row of a rejected record, sealed, as JSON text (`{header: cell}`,
    every cell as a string, extra cells under `_extra_values`; NULL for a valid row), the unknown columns'
    payload (space-trimmed, blanks dropped, NULL when nothing is left), then the normalised columns."""

    def __init__(
        self,
        headers: list[str],
        *,
        upload_id: str,
        broker_id: str | None,
        territory: Territory,
        email_codes: frozenset[str],
        phone_codes: frozenset[str],
        codec: PiiCodec,
    ):
        fields, raw_keys = map_headers(headers)
        self.upload_id = upload_id
        self.raw_keys = raw_keys
        self.width = width = len(raw_keys)
        known = set(fields.values())
        self.unknown = [index for index in range(width) if index not in known]
        # The staged row: upload, line, raw JSON, payload JSON, then the normalised columns.
        self.normalised_offset = 4
        # A column we do not map whose name says it holds a contact ("Email 2", "Wireless 3") is kept encrypted.
        self.sealed_unknown = {index: kind for index in self.unknown if (kind := contact_kind(raw_keys[index]))}
        # The careful path, one record at a time (a DLQ row's reprocess, and the reference of the fast path)...
        self.row = self._row_function(fields, broker_id, territory, email_codes, phone_codes, codec)
        # ...and the fast path, a block of records column by column (pipeline/ingest/columnar.py): staging's.
        self.block = block_function(self, fields, broker_id, territory, email_codes, phone_codes, codec)

    def _raw_json(self):
        """A function: (cells padded/truncated to the width, the extra cells or None) → the raw row's JSON."""
        keys = self.raw_keys
        if not keys:
            prefix = '{"_extra_values":'

            def empty(row: list[str], extra: list[str] | None) -> str:
                return "{}" if extra is None else prefix + json.dumps(extra, ensure_ascii=False) + "}"

            return empty
        template = "{{" + ",".join(_brace(encode_string(key)) + ":{}" for key in keys)
        fmt = (template + "}}").format
        extra_fmt = (template + ',"_extra_values":{}}}').format
        in_keys = "_extra_values" in keys
        encode = encode_string

        def raw_json(row: list[str], extra: list[str] | None) -> str:
            if extra is None:
                return fmt(*map(encode, row))
            if in_keys:  # the extra cells replace the column of that name, as a JSON object would
                values = dict(zip(keys, row, strict=True))
                values["_extra_values"] = extra
                return json.dumps(values, ensure_ascii=False)
            return extra_fmt(*map(encode, row), json.dumps(extra, ensure_ascii=False))

        return raw_json

    def _row_function(self, fields, broker_id, territory, email_codes, phone_codes, codec):
        width = self.width
        pad = [""] * width
        get = fields.get
        upload_id = self.upload_id
        raw_json = self._raw_json()
        # The unknown columns' payload as JSON text: `"key":` prefixes computed once. A column we do not map whose
        # name says it holds a contact ("Email 2", "Wireless 3") is kept encrypted there, as the e-mail and phone
        # are.
        unknown = [(index, encode_string(self.raw_keys[index]) + ":") for index in self.unknown]
        sealed_unknown = self.sealed_unknown
        encode = encode_string
        # A column the file lacks reads the last cell of a padded row, which is always "".
        missing = width
        i_first, i_last = get("first_name", missing), get("last_name", missing)
        i_email, i_phone = get("email", missing), get("phone", missing)
        i_address, i_unit, i_city = (
            get("property_address", missing),
            get("unit", missing),
            get("property_city", missing),
        )
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
        text, key, address_line = n.text, n.key, n.address_line
        codes_of = n.codes
        email, phone, addr_hash = n.email, n.phone, n.addr_hash_normalised
        # The normalisers are pure: values that repeat across a file (names, cities, states, ZIP codes,
        # types, flags) are computed once per distinct input (bounded caches, so memory stays flat).
        name = _cached(n.name)
        state = _cached(n.state)
        zip5 = _cached(n.zip5)
        decimal_text = _cached(n.decimal_text)  # valuations are often round figures
        age = _cached(lambda value: None if (years := n.age(value)) is None else str(years))
        boolean = _cached(n.boolean)
        town_of = _cached(lambda value: text(value, limit=100))
        city = _cached(n.city)
        property_type = _cached(lambda value: text(value, limit=100))
        owner_flag = _cached(lambda value: flag_text(n.boolean(value)))
        broker_cache: dict[tuple[str | None, str | None], str | None] = {}

        def owner2(full: str, first: str, last: str) -> str | None:
            """The co-owner as one name: the full-name column, else first and last."""
            if full:
                return name(full)
            if first or last:
                return " ".join(part for part in (name(first), name(last)) if part) or None
            return None

        def with_unit(address: str | None, unit: str) -> str | None:
            """The mailing street line with its unit (`200 Oak St #4`), as the property's below."""
            if address and unit:
                unit = text(unit, limit=40)
                if unit:
                    return f"{address} #{unit.lstrip('#').strip()}"
            return address

        broker_for = territory.broker_for
        blind_index = codec.blind_index
        encrypt = codec.encrypt
        domain_index = _cached(lambda domain: blind_index(domain, EMAIL_DOMAIN))  # few domains per file

        def normalise_row(row: list[str], line: int) -> tuple[list, str | None]:
            """(the COPY row, the reject reason or None) for one data row."""
            extra = None
            if len(row) > width:
                extra = row[width:]
                row = row[:width]
            elif len(row) < width:
                row = row + pad[len(row) :]
            payload = None
            if unknown:  # trimmed of spaces only (as SQL btrim), blanks dropped, nothing left → NULL
                parts = [
                    prefix + encode(encrypt(value, sealed_unknown[index]) if index in sealed_unknown else value)
                    for index, prefix in unknown
                    if (value := row[index].strip(" "))
                ]
                if parts:
                    payload = "{" + ",".join(parts) + "}"
            cells = [*row, ""]  # the sentinel cell that missing columns read
            address = text(cells[i_address])
            unit = cells[i_unit]
            if address and unit:
                unit = text(unit, limit=40)
                if unit:
                    address = f"{address} #{unit.lstrip('#').strip()}"
            town = town_of(cells[i_city])
            state_code = state(cells[i_state])
            zip_code = zip5(cells[i_zip])
            mak, apn = key(cells[i_mak]), key(cells[i_apn])
            hashed = addr_hash(address_line(address), city(town), state_code, zip_code) if address else None
            reason = None if (mak or apn or hashed) else REASON_NO_KEY
            # Only a rejected row's raw record is kept (sealed): it is what the DLQ shows and a person edits. A
            # valid row is its normalised columns; the stored upload file keeps the record for its retention.
            raw = None if reason is None else '{"encrypted":"' + encrypt(raw_json(row, extra), RAW_ROW) + '"}'
            email_verified = phone_verified = False
            email_codes_text = phone_codes_text = None
            if cells[i_ecodes]:
                found = codes_of(cells[i_ecodes])
                email_verified = any(code in email_codes for code in found)
                email_codes_text = codes_array(found)
            if cells[i_pcodes]:
                found = codes_of(cells[i_pcodes])
                phone_verified = any(code in phone_codes for code in found)
                phone_codes_text = codes_array(found)
            if cells[i_ever] and boolean(cells[i_ever]):
                email_verified = True
            if cells[i_pver] and boolean(cells[i_pver]):
                phone_verified = True
            owner = cells[i_owner]
            email_value, phone_value = email(cells[i_email]), phone(cells[i_phone])
            if email_value:
                email_index = blind_index(email_value, EMAIL)
                email_domain_index = domain_index(email_domain(email_value))
            else:
                email_index = email_domain_index = None
            if phone_value:
                phone_index, last4_index = (
                    blind_index(phone_value, PHONE),
                    blind_index(phone_last4(phone_value), PHONE_LAST4),
                )
            else:
                phone_index = last4_index = None
            if broker_id:
                broker = broker_id
            else:
                territory_key = (zip_code, state_code)
                try:
                    broker = broker_cache[territory_key]
                except KeyError:
                    if len(broker_cache) >= _CACHE_SIZE:
                        broker_cache.clear()
                    broker = broker_cache[territory_key] = broker_for(zip_code, state_code)
            return [
                upload_id,
                str(line),
                raw,
                payload,
                name(cells[i_first]),
                name(cells[i_last]),
                encrypt(email_value, EMAIL) if email_value else email_value,
                encrypt(phone_value, PHONE) if phone_value else phone_value,
                email_index,
                email_domain_index,
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
                decimal_text(cells[i_value]),
                decimal_text(cells[i_equity]),
                property_type(cells[i_type]),
                age(cells[i_age]),
                owner_flag(owner) if owner else None,
                "t" if email_verified else "f",
                "t" if phone_verified else "f",
                email_codes_text,
                phone_codes_text,
                broker,
                owner2(cells[i_owner2], cells[i_owner2_first], cells[i_owner2_last]),
                with_unit(text(cells[i_mail]), cells[i_mail_unit]),
                town_of(cells[i_mail_city]),
                state(cells[i_mail_state]),
                zip5(cells[i_mail_zip]),
            ], reason

        return normalise_row

    def write_copy_text(self, copy, pairs: Iterable[tuple[list[str], int]]) -> tuple[int, int]:
        """Normalise (row, line) pairs and write them to `copy` (anything with `.write(text)`: a COPY, or a
        frame writer) as COPY text, one write per block of BLOCK_ROWS rows. Returns (rows, rows rejected).

        The rows go through the fast path (`self.block`, pipeline/ingest/columnar.py). COPY's text format, built
        per block: every staged value is a string or None, and none holds a tab, a line break or a NUL (the cells
        are NUL-free, `normalise.text` collapses whitespace, JSON escapes control characters), so a row is its
        fields joined by tabs, the block's rows joined by line breaks with backslashes doubled, and NULL (`\\N`)
        put in for a NUL placeholder. A block that breaks the rule anyway (its count of tabs or line breaks says
        so) is escaped row by row, field by field where needed."""
        block_of = self.block
        tabs = 3 + len(NORMALISED)
        join, nul = "\t".join, "\x00"
        count, rejected = 0, 0
        pairs = iter(pairs)
        while chunk := list(islice(pairs, BLOCK_ROWS)):
            columns, chunk_rejected = block_of(chunk)
            rejected += chunk_rejected
            count += len(chunk)
            columns = [
                [nul if value is None else value for value in column] if None in column else column
                for column in columns
            ]
            lines = list(map(join, zip(*columns, strict=True)))
            text = "\n".join(lines)
            if text.count("\t") != tabs * len(lines) or text.count("\n") != len(lines) - 1 or "\r" in text:
                text = "\n".join(
                    _copy_line(line, staged, tabs)
                    for line, staged in zip(lines, zip(*columns, strict=True), strict=True)
                )
            elif "\\" in text:
                text = text.replace("\\", "\\\\")
            copy.write((text + "\n").replace(nul, "\\N"))
        return count, rejected


def _copy_line(line: str, staged: tuple, tabs: int) -> str:
    """One row's COPY text: its joined fields with backslashes doubled, or each field escaped when a value holds
    a tab or a line break."""
    if line.count("\t") != tabs or "\n" in line or "\r" in line:
        return "\t".join(value if value == "\x00" else _copy_escape(value) for value in staged)
    return line.replace("\\", "\\\\")
