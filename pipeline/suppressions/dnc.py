"""The national Do-Not-Call registry import: `manage.py dnc_import <file> [--deletions <file>] [--replace]`.

The registry's files are lines of area code + number (`2015550123`, `201,5550123`, `(201) 555-0123`; a leading
1 is dropped). Numbers are public data: stored as integers (`dnc_registry_numbers.number bigint`). Leads' phones
may be encrypted, so each number is keyed by the blind index of its E.164 form (`+12015550123`) under the
current key version — its 16 bytes as a uuid, `phone_key`, the registry's primary key — computed here in Python
by DNC_IMPORT_PROCESSES child processes, each reading its own byte range of the file and returning binary COPY
rows, and matched with `dnc_phone_key(leads.phone_bidx)` in SQL. The database never holds the key.

One transaction (the registry never shows half an import):
1. `--replace` (the file is the whole registry) or a first import: the registry is locked, its one index
   dropped and its row-level security switched off (`dnc_registry_indexes_drop()`, an owner function: COPY FROM
   refuses a table with row-level security), emptied, and the file COPYed (binary, FREEZE) straight into it —
   no load table, no refill, no sort; the primary key is then built once and row-level security switched on
   again (`dnc_registry_indexes_create()`, before anything else can see the table). The build proves the keys
   unique; a file that lists a number twice fails it (a savepoint), and only then are the extra rows deleted
   and the key built again. A deletion file goes into the load table and its numbers are deleted by key;
2. a change file: its numbers and the deletion file's, keyed and flagged, are COPYed into `dnc_registry_load`
   (UNLOGGED, no index); the listed and deleted numbers are deleted by key and the listed ones inserted, the
   index kept;
3. the leads whose phone the registry now binds, or no longer binds, get their marks (phone and SMS, reason
   `dnc_registry`; never e-mail) in one statement (leads/suppressions/sql.py);
4. a `dnc_registry_imports` row (with the blind-index version of the keys) and a `dnc_imported` event (counts
   and seconds; no number in either).

The registry holds one blind-index version, the newest import's. After a rotation of the blind-index key
(`manage.py reencrypt` re-indexes the leads), import the latest full file again with `--replace`: its keys are
computed under the new current version. A change import is refused until then (its keys would not meet the
registry's). The `dnc_registry_stale` alert fires when the newest import is older than DNC_REGISTRY_MAX_AGE_DAYS.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from psycopg import errors

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.suppressions.models import DncRegistryImport
from leads.suppressions.services import leads_marks_refresh
from security.pii import codec, codec_keys

from .dnc_lines import COPY_SIGNATURE, COPY_TRAILER, chunk_copy_rows, worker_init

CHUNK_BYTES = 4 << 20

MARK_TARGETS = """SELECT l.id FROM leads l JOIN dnc_registry_numbers d ON d.phone_key = dnc_phone_key(l.phone_bidx)
UNION
SELECT id FROM leads WHERE suppressed_channels -> 'phone' ? 'dnc_registry'
                        OR suppressed_channels -> 'sms' ? 'dnc_registry'"""


class DncFileError(Exception):
    """The file cannot be imported; the message says why (never a number from it)."""


@dataclass
class DncImportResult:
    numbers_in_file: int = 0
    invalid_lines: int = 0
    deletions_in_file: int = 0
    numbers_deleted: int = 0
    numbers_total: int = 0
    leads_marked: int = 0
    seconds: float = 0.0
    timings: dict | None = None


def _chunks(path: Path, deleted: bool) -> list[tuple[str, int, int, bool]]:
    size = path.stat().st_size
    return [(str(path), start, min(start + CHUNK_BYTES, size), deleted) for start in range(0, size, CHUNK_BYTES)]


def _copy_file(cursor, path: Path, *, deleted: bool | None, processes: int) -> tuple[int, int]:
    """COPY (binary) the file's numbers and keys straight into the emptied registry (`deleted` None: a full
    import; FREEZE, as the table was emptied in this transaction) or into `dnc_registry_load` with the flag.
    Returns (numbers, invalid lines)."""
    jobs = _chunks(path, deleted)
    numbers = invalid = 0
    with cursor.copy(COPY_REGISTRY if deleted is None else COPY_LOAD) as copy:
        copy.write(COPY_SIGNATURE)
        if processes <= 1 or len(jobs) <= 1:
            worker_init(codec_keys().to_plain())
            results = map(chunk_copy_rows, jobs)
            for rows, count, bad in results:
                copy.write(rows)
                numbers, invalid = numbers + count, invalid + bad
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(processes, initializer=worker_init, initargs=(codec_keys().to_plain(),)) as pool:
                for rows, count, bad in pool.imap(chunk_copy_rows, jobs):
                    copy.write(rows)
                    numbers, invalid = numbers + count, invalid + bad
        copy.write(COPY_TRAILER)
    return numbers, invalid


# --- the import ---------------------------------------------------------------------------------------------

COPY_REGISTRY = "COPY dnc_registry_numbers (number, phone_key) FROM STDIN (FORMAT binary, FREEZE)"
COPY_LOAD = "COPY dnc_registry_load (number, phone_key, deleted) FROM STDIN (FORMAT binary)"
# A full file that listed a number twice (the primary key's build failed): keep one row per key.
DEDUPE = """DELETE FROM dnc_registry_numbers d
 USING (SELECT phone_key, min(ctid) AS kept FROM dnc_registry_numbers GROUP BY phone_key HAVING count(*) > 1) twice
 WHERE d.phone_key = twice.phone_key AND d.ctid <> twice.kept"""
# A full file's deletion file, once the primary key is there.
DELETE_DELETED = """DELETE FROM dnc_registry_numbers d USING dnc_registry_load l
 WHERE l.deleted AND d.phone_key = l.phone_key"""
# A change file: one row per key, none that the deletion file lists.
REFILL_DISTINCT = """INSERT INTO dnc_registry_numbers (phone_key, number)
SELECT DISTINCT ON (phone_key) phone_key, number FROM dnc_registry_load l
 WHERE NOT l.deleted
   AND NOT EXISTS (SELECT 1 FROM dnc_registry_load x WHERE x.deleted AND x.phone_key = l.phone_key)
 ORDER BY phone_key"""
# A change file: every listed or deleted number goes (the listed ones come back with REFILL_DISTINCT); returns how
# many of those were deleted by the deletion file.
DELETE_LISTED = """WITH listed AS (
  SELECT phone_key, bool_or(deleted) AS deleted FROM dnc_registry_load GROUP BY phone_key
), gone AS (
  DELETE FROM dnc_registry_numbers d USING listed l WHERE d.phone_key = l.phone_key RETURNING l.deleted
)
SELECT count(*) FILTER (WHERE deleted) FROM gone"""
NEWEST_VERSION = "SELECT blind_index_version FROM dnc_registry_imports ORDER BY imported_at DESC, id DESC LIMIT 1"


def dnc_import(
    *, path: str | Path, deletions: str | Path | None = None, replace: bool = False, by: str = ""
) -> DncImportResult:
    """Import a registry file (and a deletion file) as the module says. Raises DncFileError for a file that
    cannot be read or holds no number."""
    started = time.monotonic()
    path = Path(path)
    deletions = Path(deletions) if deletions else None
    for each in filter(None, (path, deletions)):
        if not each.is_file():
            raise DncFileError(f"{each.name}: no such file")
    processes = max(1, settings.DNC_IMPORT_PROCESSES)
    result = DncImportResult()
    timings: dict[str, int] = {}
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        timings[step] = int((time.monotonic() - clock) * 1000)
        clock = time.monotonic()

    version = codec().current_index_version
    with service_context(budget="import"), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute("SELECT EXISTS (SELECT 1 FROM dnc_registry_numbers)")
        rebuild = replace or not cursor.fetchone()[0]
        if not rebuild:
            cursor.execute(NEWEST_VERSION)
            registry_version = (cursor.fetchone() or [""])[0]
            if registry_version and registry_version != version:
                raise DncFileError(
                    f"the registry's keys are under blind-index version {registry_version}, the current version is"
                    f" {version}: import the full registry file with --replace first"
                )
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute("TRUNCATE dnc_registry_load")
        if rebuild:
            # Locked, index-free, row-level security off until the index is back (this transaction only).
            cursor.execute("SELECT dnc_registry_indexes_drop()")
            cursor.execute("TRUNCATE dnc_registry_numbers")
        copied, result.invalid_lines = _copy_file(
            cursor, path, deleted=None if rebuild else False, processes=processes
        )
        result.numbers_in_file = copied
        if deletions:
            result.deletions_in_file, _ = _copy_file(cursor, deletions, deleted=True, processes=processes)
        if not result.numbers_in_file and not result.deletions_in_file:
            raise DncFileError(f"{path.name}: no line holds an area code and number")
        lap("copy_ms")
        if rebuild:
            try:
                with transaction.atomic():  # a savepoint: a failed build leaves the rows
                    cursor.execute("SELECT dnc_registry_indexes_create()")
            except errors.UniqueViolation:
                # A number listed twice: one row per key, then the index (and row-level security) again.
                cursor.execute(DEDUPE)
                copied -= cursor.rowcount
                timings["duplicates"] = 1
                cursor.execute("SELECT dnc_registry_indexes_create()")
            lap("index_ms")
            if result.deletions_in_file:
                cursor.execute(DELETE_DELETED)
                result.numbers_deleted = cursor.rowcount
                copied -= cursor.rowcount
            result.numbers_total = copied
        else:
            cursor.execute(DELETE_LISTED)
            result.numbers_deleted = cursor.fetchone()[0]
            cursor.execute(REFILL_DISTINCT)
            cursor.execute("SELECT count(*) FROM dnc_registry_numbers")
            result.numbers_total = cursor.fetchone()[0]
        lap("refill_ms")
        cursor.execute("TRUNCATE dnc_registry_load")
        result.leads_marked = len(leads_marks_refresh(targets=MARK_TARGETS, params={}))
        lap("mark_ms")
        result.seconds = round(time.monotonic() - started, 3)
        result.timings = timings
        DncRegistryImport.objects.create(
            filename=path.name,
            deletions_filename=deletions.name if deletions else "",
            replace=replace,
            numbers_in_file=result.numbers_in_file,
            numbers_deleted=result.numbers_deleted,
            numbers_total=result.numbers_total,
            leads_marked=result.leads_marked,
            duration_ms=int(result.seconds * 1000),
            imported_by=by[:150],
            blind_index_version=version,
        )
        record_event(
            "dnc_imported",
            duration_ms=int(result.seconds * 1000),
            data={
                "file": path.name,
                "deletions_file": deletions.name if deletions else None,
                "replace": replace,
                "numbers_in_file": result.numbers_in_file,
                "invalid_lines": result.invalid_lines,
                "deletions_in_file": result.deletions_in_file,
                "numbers_total": result.numbers_total,
                "leads_marked": result.leads_marked,
                "processes": processes,
                "pid": os.getpid(),
                "timings": timings,
            },
        )
    return result
