"""Stage: stream an upload's file into `leads_staging` with COPY, normalising each row on the way (one pass).

The file is read once: bytes → text (UTF-8, with or without BOM; Windows-1252 when it is not UTF-8 —
recorded on the upload, never guessed silently) → `csv.reader` → per-row normalisation → CSV text blocks
→ `COPY … FROM STDIN (FORMAT csv)` into a temporary table → one INSERT … SELECT into `leads_staging`
(PostgreSQL refuses COPY into a table with row-level security). Memory stays flat: one block of rows at
a time, never the file. Each block of `INGEST_STAGE_BATCH_ROWS` rows commits with the upload's progress
and running counts, so `GET /api/v1/uploads/<id>` shows them while the file streams in.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from equity_connect.db import service_context

from . import normalise as n
from .columns import map_headers

# The normalised columns, in the order the row function emits them after the raw fields.
NORMALISED = (
    ("first_name", "text"), ("last_name", "text"), ("email", "text"), ("phone", "text"),
    ("property_address", "text"), ("property_city", "text"), ("property_state", "text"),
    ("property_zip", "text"), ("mak", "text"), ("apn", "text"), ("addr_hash", "text"),
    ("reject_reason", "text"), ("property_value", "numeric(14,2)"), ("estimated_equity", "numeric(14,2)"),
    ("property_type", "text"), ("age", "integer"), ("owner_occupied", "boolean"), ("email_verified", "boolean"),
    ("phone_verified", "boolean"), ("email_verification_codes", "text[]"), ("phone_verification_codes", "text[]"),
    ("assigned_broker_id", "uuid"),
)
NORMALISED_NAMES = tuple(name for name, _ in NORMALISED)

REASON_NO_KEY = (
    "no dedupe key: the row has no MAK, no APN and no usable address (a street line with a ZIP code, or "
    "with a city and a state) — add one of them and reprocess the row"
)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class FileUnreadable(Exception):
    """The file cannot be decoded or parsed; the message says why, in words a person can act on."""


@dataclass
class Territory:
    """Brokers' territory rules: ZIP prefixes (longest match wins) before states."""

    by_prefix: dict[str, str] = field(default_factory=dict)
    by_state: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Territory:
        territory = cls()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id::text, territory_zip_prefixes, territory_states FROM brokers WHERE active"
                " ORDER BY created_at, id"
            )
            for broker_id, prefixes, states in cursor.fetchall():
                for prefix in prefixes or ():
                    territory.by_prefix.setdefault(prefix.strip(), broker_id)
                for code in states or ():
                    territory.by_state.setdefault(code.strip().upper(), broker_id)
        return territory

    def broker_for(self, zip_code: str | None, state_code: str | None) -> str | None:
        if zip_code and self.by_prefix:
            for length in range(5, 0, -1):
                broker = self.by_prefix.get(zip_code[:length])
                if broker:
                    return broker
        if state_code:
            return self.by_state.get(state_code)
        return None


def verified_codes() -> tuple[frozenset[str], frozenset[str]]:
    """(email codes, phone codes) that `verification_code_map` says mean verified."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT channel, upper(code) FROM verification_code_map WHERE is_verified")
        rows = cursor.fetchall()
    return (frozenset(code for channel, code in rows if channel == "email"),
            frozenset(code for channel, code in rows if channel == "phone"))


def _pg_array(values: list[str]) -> str | None:
    return "{" + ",".join(values) + "}" if values else None  # codes are [A-Z0-9_-]: nothing to quote


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("t" if value else "f")


def detect_encoding(path: str, *, chunk_size: int = 1 << 20) -> tuple[str, bool]:
    """('utf-8-sig' | 'utf-8' | 'cp1252', has NUL bytes). Raises FileUnreadable when neither decodes."""
    has_nul = False
    with open(path, "rb") as handle:
        head = handle.read(3)
        handle.seek(0)
        for encoding in ("utf-8", "cp1252"):
            decoder = codecs.getincrementaldecoder(encoding)("strict")
            handle.seek(0)
            offset = 0
            try:
                while chunk := handle.read(chunk_size):
                    has_nul = has_nul or b"\x00" in chunk
                    decoder.decode(chunk)
                    offset += len(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as error:
                position = offset + error.start
                if encoding == "cp1252":
                    raise FileUnreadable(
                        f"the file is neither UTF-8 nor Windows-1252 (undecodable byte at offset {position});"
                        " export it as UTF-8 and upload it again"
                    ) from error
                continue
            if encoding == "utf-8":
                return ("utf-8-sig" if head == codecs.BOM_UTF8 else "utf-8"), has_nul
            return encoding, has_nul
    raise FileUnreadable("the file cannot be decoded")  # pragma: no cover


@dataclass
class StageResult:
    rows_total: int = 0
    rows_rejected: int = 0
    encoding: str = "utf-8"


def records(text_stream: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for the header and each non-blank CSV record (physical line numbers)."""
    reader = csv.reader(text_stream)
    for headers in reader:
        if any(value.strip() for value in headers):  # blank lines before the header are skipped
            break
    else:
        return
    yield reader.line_num, headers
    previous = reader.line_num
    for row in reader:
        start = previous + 1
        previous = reader.line_num
        if not row or not any(value.strip() for value in row):
            continue  # blank lines (and all-empty rows) are not data
        yield start, row


class StagingLayout:
    """How one file's rows travel into `leads_staging`.

    PostgreSQL refuses COPY FROM into a table with row-level security (leads_staging has it, like every
    domain table), so each batch is COPied into a temporary table `ingest_copy` (the raw fields as text
    columns, then the normalised ones) and moved with one INSERT … SELECT that also builds the raw-row
    JSON and the unknown-columns payload in C (`jsonb_object`): cheaper than encoding JSON in Python."""

    def __init__(self, headers: list[str], *, upload_id: str, broker_id: str | None, territory: Territory,
                 email_codes: frozenset[str], phone_codes: frozenset[str]):
        fields, raw_keys = map_headers(headers)
        self.upload_id = upload_id
        self.raw_keys = raw_keys
        self.width = width = len(raw_keys)
        known = set(fields.values())
        self.unknown = [index for index in range(width) if index not in known]
        raw_columns = "".join(f", r{index}" for index in range(width))
        self.temp_sql = (
            "CREATE TEMP TABLE ingest_copy (line_number integer, extra_values text"
            + "".join(f", r{index} text" for index in range(width))
            + "".join(f", {name} {kind}" for name, kind in NORMALISED)
            + ") ON COMMIT DROP"
        )
        self.copy_sql = (
            f"COPY ingest_copy (line_number, extra_values{raw_columns}, {', '.join(NORMALISED_NAMES)})"
            " FROM STDIN (FORMAT csv)"
        )
        raw_values = ", ".join(f"coalesce(r{index}, '')" for index in range(width))
        unknown_values = ", ".join(f"nullif(btrim(r{index}), '')" for index in self.unknown)
        raw_expression = f"jsonb_object(%(keys)s::text[], ARRAY[{raw_values}]::text[])" if width else "'{}'::jsonb"
        payload_expression = (
            f"nullif(jsonb_strip_nulls(jsonb_object(%(unknown_keys)s::text[], ARRAY[{unknown_values}]::text[])),"
            " '{}'::jsonb)" if self.unknown else "NULL::jsonb"
        )
        self.move_sql = (
            f"INSERT INTO leads_staging (upload_id, line_number, raw, melissa_payload, {', '.join(NORMALISED_NAMES)})"
            f" SELECT %(upload)s, line_number, {raw_expression} || CASE WHEN extra_values IS NULL THEN '{{}}'::jsonb"
            " ELSE jsonb_build_object('_extra_values', extra_values::jsonb) END,"
            f" {payload_expression}, {', '.join(NORMALISED_NAMES)} FROM ingest_copy"
        )
        self.move_params = {"upload": upload_id, "keys": raw_keys,
                            "unknown_keys": [raw_keys[index] for index in self.unknown]}
        self.row = self._row_function(fields, broker_id, territory, email_codes, phone_codes)

    def _row_function(self, fields, broker_id, territory, email_codes, phone_codes):
        width = self.width
        pad = [""] * width
        get = fields.get
        # A column the file lacks reads the last cell of a padded row, which is always "".
        missing = width
        i_first, i_last = get("first_name", missing), get("last_name", missing)
        i_email, i_phone = get("email", missing), get("phone", missing)
        i_address, i_unit, i_city = get("property_address", missing), get("unit", missing), get(
            "property_city", missing)
        i_state, i_zip = get("property_state", missing), get("property_zip", missing)
        i_mak, i_apn = get("mak", missing), get("apn", missing)
        i_value, i_equity = get("property_value", missing), get("estimated_equity", missing)
        i_type, i_age, i_owner = get("property_type", missing), get("age", missing), get("owner_occupied", missing)
        i_ecodes, i_pcodes = get("email_verification_codes", missing), get("phone_verification_codes", missing)
        i_ever, i_pver = get("email_verified", missing), get("phone_verified", missing)
        text, name, key, address_line, city = n.text, n.name, n.key, n.address_line, n.city
        state, zip5, codes_of, boolean = n.state, n.zip5, n.codes, n.boolean
        email, phone, decimal_text, age, addr_hash = n.email, n.phone, n.decimal_text, n.age, n.addr_hash_normalised
        broker_for = territory.broker_for

        def normalise_row(row: list[str], line: int) -> tuple[list, str | None]:
            """(the COPY row, the reject reason or None) for one data row."""
            extra = None
            if len(row) > width:
                extra = json.dumps(row[width:], ensure_ascii=False)
                row = row[:width]
            elif len(row) < width:
                row = row + pad[len(row):]
            cells = [*row, ""]  # the sentinel cell that missing columns read
            address = text(cells[i_address])
            unit = cells[i_unit]
            if address and unit:
                unit = text(unit, limit=40)
                if unit:
                    address = f"{address} #{unit.lstrip('#').strip()}"
            town = text(cells[i_city], limit=100)
            state_code = state(cells[i_state])
            zip_code = zip5(cells[i_zip])
            mak, apn = key(cells[i_mak]), key(cells[i_apn])
            hashed = addr_hash(address_line(address), city(town), state_code, zip_code)
            reason = None if (mak or apn or hashed) else REASON_NO_KEY
            email_verified = phone_verified = False
            email_codes_text = phone_codes_text = None
            if cells[i_ecodes]:
                found = codes_of(cells[i_ecodes])
                email_verified = any(code in email_codes for code in found)
                email_codes_text = _pg_array(found)
            if cells[i_pcodes]:
                found = codes_of(cells[i_pcodes])
                phone_verified = any(code in phone_codes for code in found)
                phone_codes_text = _pg_array(found)
            if cells[i_ever] and boolean(cells[i_ever]):
                email_verified = True
            if cells[i_pver] and boolean(cells[i_pver]):
                phone_verified = True
            owner = cells[i_owner]
            out = [line, extra, *row]
            out += (
                name(cells[i_first]), name(cells[i_last]), email(cells[i_email]), phone(cells[i_phone]),
                address, town, state_code, zip_code, mak, apn, hashed, reason,
                decimal_text(cells[i_value]), decimal_text(cells[i_equity]), text(cells[i_type], limit=100),
                age(cells[i_age]), _flag(boolean(owner)) if owner else None, "t" if email_verified else "f",
                "t" if phone_verified else "f", email_codes_text, phone_codes_text,
                broker_id or broker_for(zip_code, state_code),
            )
            return out, reason

        return normalise_row

    def copy_rows(self, pairs: Iterator[tuple[list[str], int]], result: StageResult | None = None,
                  limit: int | None = None) -> tuple[int, bool]:
        """COPY (row, line) pairs into staging in the current transaction, stopping after `limit` rows.

        Returns (rows copied, whether `pairs` is exhausted)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        normalise_row = self.row
        count, done = 0, False
        with connection.cursor() as cursor:
            cursor.execute(self.temp_sql)
        with connection.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
            for row, line in pairs:
                staged, reason = normalise_row(row, line)
                if reason is not None and result is not None:
                    result.rows_rejected += 1
                writer.writerow(staged)
                count += 1
                if buffer.tell() > 1 << 20:
                    copy.write(buffer.getvalue())
                    buffer.seek(0)
                    buffer.truncate()
                if limit is not None and count >= limit:
                    break
            else:
                done = True
            if buffer.tell():
                copy.write(buffer.getvalue())
        with connection.cursor() as cursor:
            cursor.execute(self.move_sql, self.move_params)
            cursor.execute("DROP TABLE ingest_copy")
        return count, done


def stage_file(
    *, upload_id: str, path: str, broker_id: str | None, size_bytes: int,
    on_progress: Callable[[StageResult, float], None] | None = None,
) -> StageResult:
    """COPY every data row of `path` into `leads_staging`, committing every INGEST_STAGE_BATCH_ROWS rows.

    Call with no transaction open; each batch opens its own `service_context()`."""
    encoding, has_nul = detect_encoding(path)
    result = StageResult(encoding=encoding)
    batch_rows = settings.INGEST_STAGE_BATCH_ROWS
    with service_context():
        territory = Territory.load()
        email_codes, phone_codes = verified_codes()
    with open(path, "rb") as binary:
        wrapper = io.TextIOWrapper(binary, encoding=encoding, newline="")
        text_stream: Iterable[str] = wrapper
        if has_nul:  # PostgreSQL text cannot hold NUL
            text_stream = (line.replace("\x00", "") for line in wrapper)
        stream = records(text_stream)
        try:
            _, headers = next(stream)
        except StopIteration:
            wrapper.detach()
            return result
        except csv.Error as error:
            raise FileUnreadable(f"the header line is not valid CSV: {error}") from error
        layout = StagingLayout(headers, upload_id=upload_id, broker_id=broker_id, territory=territory,
                               email_codes=email_codes, phone_codes=phone_codes)
        pairs = ((row, line) for line, row in stream)
        done = False
        while not done:
            with service_context():
                try:
                    count, done = layout.copy_rows(pairs, result, limit=batch_rows)
                except csv.Error as error:
                    raise FileUnreadable(f"the file is not valid CSV after data row {result.rows_total}: {error}"
                                         ) from error
                result.rows_total += count
                if on_progress is not None:
                    fraction = binary.tell() / size_bytes if size_bytes else 1.0
                    on_progress(result, min(fraction, 1.0))
        wrapper.detach()  # the `with open` closes the file
    return result
