"""Stage: stream an upload's file into `leads_staging` with COPY, normalising each row on the way (one pass).

The file is read once: bytes → text (UTF-8, with or without BOM; Windows-1252 when it is not UTF-8 —
recorded on the upload, never guessed silently) → `csv.reader` → per-row normalisation (and the raw row
as JSON text) → blocks of COPY text → `COPY … FROM STDIN` straight into `leads_staging` (it has no
row-level security; only service_role and pipeline_writer hold privileges on it). Memory stays flat:
one block of rows at a time, never the file. Each block of `INGEST_STAGE_BATCH_ROWS` rows commits with
the upload's progress and running counts, so `GET /api/v1/uploads/<id>` shows them while the file
streams in. Large files are read and normalised by child processes (`SubprocessSource`,
pipeline/ingest/normaliser.py) while the worker feeds their COPY text to PostgreSQL; small ones here
(`InProcessSource`).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring as encode_string

from django.conf import settings

from . import normalise as n
from .columns import map_headers

# `django.db`, psycopg and `equity_connect.db` are imported where they are used: the normaliser processes
# import this module and never touch the database, and those imports were most of their start-up time.

# The normalised columns, in the order the row function emits them after the raw fields.
NORMALISED = (
    ("first_name", "text"),
    ("last_name", "text"),
    ("email", "text"),
    ("phone", "text"),
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
)
NORMALISED_NAMES = tuple(name for name, _ in NORMALISED)
# Text format: see StagingLayout._copy.
COPY_SQL = (
    f"COPY leads_staging (upload_id, line_number, raw, melissa_payload, {', '.join(NORMALISED_NAMES)}) FROM STDIN"
)

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
        from django.db import connection

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
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT channel, upper(code) FROM verification_code_map WHERE is_verified")
        rows = cursor.fetchall()
    return (
        frozenset(code for channel, code in rows if channel == "email"),
        frozenset(code for channel, code in rows if channel == "phone"),
    )


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
    normaliser_peak_rss_kb: int = 0  # the normaliser process's, when one ran


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
        if not row or not "".join(row).strip():
            continue  # blank lines (and all-empty rows) are not data
        yield start, row


class StagingLayout:
    """How one file's rows travel into `leads_staging`: one `COPY … FROM STDIN` (text format) straight into
    the table (it has no row-level security, so COPY is allowed; only service_role and pipeline_writer hold
    privileges on it). Each COPY row carries the raw row as JSON text (`{header: cell}`, every cell as a
    string, extra cells under `_extra_values`), the unknown columns' payload (space-trimmed, blanks
    dropped, NULL when nothing is left), then the normalised columns."""

    def __init__(
        self,
        headers: list[str],
        *,
        upload_id: str,
        broker_id: str | None,
        territory: Territory,
        email_codes: frozenset[str],
        phone_codes: frozenset[str],
    ):
        fields, raw_keys = map_headers(headers)
        self.upload_id = upload_id
        self.raw_keys = raw_keys
        self.width = width = len(raw_keys)
        known = set(fields.values())
        self.unknown = [index for index in range(width) if index not in known]
        # The staged row: upload, line, raw JSON, payload JSON, then the normalised columns.
        self.normalised_offset = 4
        self.row = self._row_function(fields, broker_id, territory, email_codes, phone_codes)

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

    def _row_function(self, fields, broker_id, territory, email_codes, phone_codes):
        width = self.width
        pad = [""] * width
        get = fields.get
        upload_id = self.upload_id
        raw_json = self._raw_json()
        # The unknown columns' payload as JSON text: `"key":` prefixes computed once.
        unknown = [(index, encode_string(self.raw_keys[index]) + ":") for index in self.unknown]
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
        i_ever, i_pver = get("email_verified", missing), get("phone_verified", missing)
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
        owner_flag = _cached(lambda value: _flag(n.boolean(value)))
        broker_cache: dict[tuple[str | None, str | None], str | None] = {}
        broker_for = territory.broker_for

        def normalise_row(row: list[str], line: int) -> tuple[list, str | None]:
            """(the COPY row, the reject reason or None) for one data row."""
            extra = None
            if len(row) > width:
                extra = row[width:]
                row = row[:width]
            elif len(row) < width:
                row = row + pad[len(row) :]
            raw = raw_json(row, extra)
            payload = None
            if unknown:  # trimmed of spaces only (as SQL btrim), blanks dropped, nothing left → NULL
                parts = [prefix + encode(value) for index, prefix in unknown if (value := row[index].strip(" "))]
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
                email(cells[i_email]),
                phone(cells[i_phone]),
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
            ], reason

        return normalise_row

    def copy_rows(self, pairs: Iterator[tuple[list[str], int]]) -> int:
        """COPY (row, line) pairs into staging in the current transaction (a few rows: a DLQ reprocess).
        Returns the rows copied."""
        from django.db import connection

        with connection.cursor() as wrapper, wrapper.cursor.copy(COPY_SQL) as copy:
            count, _ = self._copy(copy, pairs)
        return count

    def _copy(self, copy, pairs: Iterator[tuple[list[str], int]]) -> tuple[int, int]:
        """Write the rows to `copy`: (rows, rows rejected).

        COPY's text format, built in blocks: every staged value is a string or None, and none holds a tab,
        a line break or a NUL (the cells are NUL-free, `normalise.text` collapses whitespace, JSON escapes
        control characters), so a row is its fields joined by tabs with backslashes doubled, and NULL
        (`\\N`) is put in for a NUL placeholder once per block. A row that breaks the rule anyway is
        escaped field by field."""
        normalise_row = self.row
        tabs = 3 + len(NORMALISED)
        join, nul = "\t".join, "\x00"
        lines: list[str] = []
        size = 0
        count, rejected = 0, 0
        for row, line in pairs:
            staged, reason = normalise_row(row, line)
            if reason is not None:
                rejected += 1
            text = join([nul if value is None else value for value in staged])
            if "\\" in text:
                text = text.replace("\\", "\\\\")
            if text.count("\t") != tabs or "\n" in text or "\r" in text:
                text = join([nul if value is None else _copy_escape(value) for value in staged])
            lines.append(text)
            size += len(text)
            count += 1
            if size > 1 << 18:
                copy.write(_copy_block(lines))
                lines, size = [], 0
        if lines:
            copy.write(_copy_block(lines))
        return count, rejected


OVERLAP_SWITCH_INTERVAL = 0.0002  # seconds (CPython's default is 0.005)
_CACHE_SIZE = 1 << 16


def _copy_escape(value: str) -> str:
    """One value in COPY's text format (the slow path: any backslash, tab or line break escaped)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_block(lines: list[str]) -> str:
    return ("\n".join(lines) + "\n").replace("\x00", "\\N")


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


@dataclass
class StageJob:
    """Everything staging one file needs, as plain data (it crosses into the normaliser process)."""

    path: str
    encoding: str
    has_nul: bool
    upload_id: str
    broker_id: str | None
    by_prefix: dict[str, str]
    by_state: dict[str, str]
    email_codes: list[str]
    phone_codes: list[str]
    batch_rows: int
    # Normalise only the rows whose index in the file is `part` modulo `parts` (several normaliser
    # processes share a file; each parses all of it, so all agree on line numbers and batches).
    part: int = 0
    parts: int = 1


@dataclass
class Batch:
    rows: int
    rejected: int
    position: int  # bytes of the file read so far
    done: bool


class InProcessSource:
    """Reads, parses and normalises the file in this process; `copy_batch` writes one batch of COPY text."""

    peak_rss_kb = 0  # no normaliser process

    def __init__(self, job: StageJob):
        self.binary = open(job.path, "rb")  # noqa: SIM115 (closed by __exit__)
        self.wrapper = io.TextIOWrapper(self.binary, encoding=job.encoding, newline="")
        self.batch_rows = job.batch_rows
        text_stream: Iterable[str] = self.wrapper
        if job.has_nul:  # PostgreSQL text cannot hold NUL
            text_stream = (line.replace("\x00", "") for line in self.wrapper)
        stream = records(text_stream)
        self.pairs = None
        try:
            _, headers = next(stream)
        except StopIteration:
            return  # no header: nothing to stage
        except csv.Error as error:
            self.close()
            raise FileUnreadable(f"the header line is not valid CSV: {error}") from error
        self.layout = StagingLayout(
            headers,
            upload_id=job.upload_id,
            broker_id=job.broker_id,
            territory=Territory(by_prefix=job.by_prefix, by_state=job.by_state),
            email_codes=frozenset(job.email_codes),
            phone_codes=frozenset(job.phone_codes),
        )
        self.pairs = enumerate((row, line) for line, row in stream)
        self.part, self.parts = job.part, job.parts
        self.rows = 0  # rows of the file read so far (every part's)

    def _share(self) -> Iterator[tuple[list[str], int]]:
        """This part's rows of the next batch (the next `batch_rows` rows of the file)."""
        part, parts = self.part, self.parts
        for index, pair in itertools.islice(self.pairs, self.batch_rows):
            self.rows += 1
            if parts == 1 or index % parts == part:
                yield pair

    def copy_batch(self, copy) -> Batch:
        if self.pairs is None:
            return Batch(0, 0, self.binary.tell(), True)
        before = self.rows
        try:
            count, rejected = self.layout._copy(copy, self._share())
        except csv.Error as error:
            raise FileUnreadable(f"the file is not valid CSV after data row {self.rows}: {error}") from error
        return Batch(count, rejected, self.binary.tell(), self.rows - before < self.batch_rows)

    def copy_batch_overlapped(self, cursor) -> Batch:
        """`copy_batch` into a COPY on `cursor`. The socket writes go to psycopg's writer thread, so
        PostgreSQL parses one block while Python normalises the next; the interpreter's thread switch
        interval is shortened meanwhile (restored after), or the writer thread waits up to 5 ms for the GIL
        at every socket write and PostgreSQL sits idle."""
        from psycopg.copy import QueuedLibpqWriter

        switch_interval = sys.getswitchinterval()
        with cursor.copy(COPY_SQL, writer=QueuedLibpqWriter(cursor)) as copy:
            sys.setswitchinterval(OVERLAP_SWITCH_INTERVAL)
            try:
                return self.copy_batch(copy)
            finally:
                sys.setswitchinterval(switch_interval)

    def batch_committed(self) -> None:
        pass  # nothing waits on the commit here

    def close(self) -> None:
        self.wrapper.detach()
        self.binary.close()

    def __enter__(self) -> InProcessSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SubprocessSource:
    """The same batches, normalised by `INGEST_NORMALISER_PROCESSES` child processes
    (`python -m pipeline.ingest.normaliser`, pipeline/ingest/normaliser.py), each taking every n-th row,
    while this process only copies their COPY text into PostgreSQL. The Python work, the larger half of
    staging, then runs beside PostgreSQL's instead of before it, and is itself split.

    One reader thread per child moves its frames to a queue; after a child's end-of-batch frame its
    thread waits until the batch is committed, so one transaction holds exactly one batch of rows."""

    command = (sys.executable, "-m", "pipeline.ingest.normaliser")

    def __init__(self, job: StageJob, processes: int):
        from . import normaliser

        self.frames = normaliser
        self.queue: queue.Queue = queue.Queue(maxsize=64)
        self.processes, self.threads, self.resume = [], [], []
        self.peak_rss_kb = 0
        try:
            self._start(job, processes)
        except BaseException:
            self.__exit__(*sys.exc_info())  # stop the ones already started
            raise

    def _start(self, job: StageJob, processes: int) -> None:
        for part in range(processes):
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and module, no input in the command)
                self.command, cwd=settings.BASE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            self.processes.append(process)
            share = {**job.__dict__, "part": part, "parts": processes}
            process.stdin.write(json.dumps(share).encode() + b"\n")
            process.stdin.close()
            resume = threading.Event()
            thread = threading.Thread(target=self._read, args=(part, process, resume), daemon=True)
            self.resume.append(resume)
            self.threads.append(thread)
            thread.start()

    def _read(self, part: int, process: subprocess.Popen, resume: threading.Event) -> None:
        while True:
            kind, payload = self.frames.read_frame(process.stdout)
            self.queue.put((part, kind, payload))
            if kind == self.frames.BATCH:
                resume.wait()
                resume.clear()
            elif kind != self.frames.DATA:
                return  # DONE, ERROR or the end of the stream

    def copy_batch_overlapped(self, cursor) -> Batch:
        waiting = set(range(len(self.processes)))
        rows = rejected = position = 0
        done = True
        with cursor.copy(COPY_SQL) as copy:
            while waiting:
                part, kind, payload = self.queue.get()
                if kind == self.frames.DATA:
                    copy.write(payload)
                elif kind == self.frames.BATCH:
                    batch = json.loads(payload)
                    rows += batch["rows"]
                    rejected += batch["rejected"]
                    position = max(position, batch["position"])
                    done = done and batch["done"]
                    waiting.discard(part)
                elif kind == self.frames.DONE:
                    self.peak_rss_kb += json.loads(payload)["peak_rss_kb"]
                elif kind == self.frames.ERROR:
                    raise FileUnreadable(json.loads(payload)["message"])
                else:
                    code = self.processes[part].wait()
                    raise RuntimeError(f"a normaliser process ended unexpectedly (exit code {code})")
        return Batch(rows, rejected, position, done)

    def batch_committed(self) -> None:
        for resume in self.resume:
            resume.set()

    def __enter__(self) -> SubprocessSource:
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            if exc[0] is not None and process.poll() is None:
                process.kill()
        self.batch_committed()  # let every reader thread run to the end of its stream
        deadline = time.monotonic() + 30
        while True:  # drain the queue (the children's last frames: their peak memory) until the threads end
            try:
                _, kind, payload = self.queue.get(timeout=0.05)
            except queue.Empty:
                if not any(thread.is_alive() for thread in self.threads) or time.monotonic() > deadline:
                    break
                continue
            if kind == self.frames.DONE:
                self.peak_rss_kb += json.loads(payload)["peak_rss_kb"]
        for process in self.processes:
            process.stdout.close()
            process.wait()


def stage_file(
    *,
    upload_id: str,
    path: str,
    broker_id: str | None,
    size_bytes: int,
    on_progress: Callable[[StageResult, float], None] | None = None,
) -> StageResult:
    """COPY every data row of `path` into `leads_staging`, committing every INGEST_STAGE_BATCH_ROWS rows.

    Files of INGEST_SUBPROCESS_MIN_BYTES or more are normalised in a separate process (SubprocessSource);
    smaller ones here. Call with no transaction open; each batch opens its own `service_context()`."""
    from django.db import connection

    from equity_connect.db import service_context

    encoding, has_nul = detect_encoding(path)
    result = StageResult(encoding=encoding)
    with service_context():
        territory = Territory.load()
        email_codes, phone_codes = verified_codes()
    job = StageJob(
        path=str(path),
        encoding=encoding,
        has_nul=has_nul,
        upload_id=upload_id,
        broker_id=broker_id,
        by_prefix=territory.by_prefix,
        by_state=territory.by_state,
        email_codes=sorted(email_codes),
        phone_codes=sorted(phone_codes),
        batch_rows=settings.INGEST_STAGE_BATCH_ROWS,
    )
    threshold = settings.INGEST_SUBPROCESS_MIN_BYTES
    if threshold >= 0 and size_bytes >= threshold:
        source = SubprocessSource(job, max(1, settings.INGEST_NORMALISER_PROCESSES))
    else:
        source = InProcessSource(job)
    with source:
        done = False
        while not done:
            with service_context(), connection.cursor() as wrapper:
                batch = source.copy_batch_overlapped(wrapper.cursor)
                result.rows_total += batch.rows
                result.rows_rejected += batch.rejected
                if on_progress is not None:
                    fraction = batch.position / size_bytes if size_bytes else 1.0
                    on_progress(result, min(fraction, 1.0))
            done = batch.done
            if not done:
                source.batch_committed()
    result.normaliser_peak_rss_kb = source.peak_rss_kb
    return result
