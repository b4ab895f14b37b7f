"""The national Do-Not-Call registry import: `manage.py dnc_import <file> [--deletions <file>] [--replace]`.

The registry's files are lines of area code + number (`2015550123`, `201,5550123`, `(201) 555-0123`; a leading
1 is dropped). Numbers are public data: stored as integers (`dnc_registry_numbers.number bigint`). Leads' phones
may be encrypted, so each number also gets the blind index of its E.164 form (`+12015550123`) under the
current key version, computed here in Python — by DNC_IMPORT_PROCESSES child processes, each reading its own
byte range of the file and returning COPY text — and matched with `leads.phone_bidx` in SQL. The database
never holds the key.

One transaction (the registry never shows half an import):
1. COPY every number (and every number of the deletion file, flagged) into `dnc_registry_load`, an UNLOGGED
   table without indexes (no WAL, no index upkeep: the COPY runs at full speed);
2. `--replace` (the file is the whole registry) or a first import: the registry's two indexes are dropped
   (`dnc_registry_indexes_drop()`, an owner function), the table emptied and refilled in number order in one
   `INSERT … SELECT DISTINCT ON`, and the indexes built once (`dnc_registry_indexes_create()`); otherwise (a
   change file) the listed and deleted numbers are deleted and the listed ones inserted, indexes kept;
3. the leads whose phone the registry now binds, or no longer binds, get their marks (phone and SMS, reason
   `dnc_registry`; never e-mail) in one statement (leads/suppressions/sql.py);
4. a `dnc_registry_imports` row and a `dnc_imported` event (counts and seconds; no number in either).

After a rotation of the blind-index key, import the latest full file again with `--replace` (its indexes are
computed under the new current version). The `dnc_registry_stale` alert fires when the newest import is older
than DNC_REGISTRY_MAX_AGE_DAYS.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.suppressions.models import DncRegistryImport
from leads.suppressions.services import leads_marks_refresh
from security.pii import codec_keys

from .dnc_lines import chunk_copy_text, worker_init

CHUNK_BYTES = 4 << 20

MARK_TARGETS = """SELECT l.id FROM leads l JOIN dnc_registry_numbers d ON d.phone_bidx = l.phone_bidx
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


def _copy_file(cursor, path: Path, *, deleted: bool, processes: int) -> tuple[int, int]:
    """COPY the file's numbers into `dnc_registry_load`. Returns (numbers, invalid lines)."""
    jobs = _chunks(path, deleted)
    numbers = invalid = 0
    with cursor.copy("COPY dnc_registry_load (number, phone_bidx, deleted) FROM STDIN") as copy:
        if processes <= 1 or len(jobs) <= 1:
            worker_init(codec_keys().to_plain())
            results = map(chunk_copy_text, jobs)
            for text, count, bad in results:
                copy.write(text)
                numbers, invalid = numbers + count, invalid + bad
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(processes, initializer=worker_init, initargs=(codec_keys().to_plain(),)) as pool:
                for text, count, bad in pool.imap(chunk_copy_text, jobs):
                    copy.write(text)
                    numbers, invalid = numbers + count, invalid + bad
    return numbers, invalid


# --- the import ---------------------------------------------------------------------------------------------

REFILL = """INSERT INTO dnc_registry_numbers (number, phone_bidx)
SELECT DISTINCT ON (number) number, phone_bidx FROM dnc_registry_load l
 WHERE NOT l.deleted AND NOT EXISTS (SELECT 1 FROM dnc_registry_load x WHERE x.deleted AND x.number = l.number)
 ORDER BY number"""
DELETE_LISTED = """DELETE FROM dnc_registry_numbers d USING (SELECT DISTINCT number FROM dnc_registry_load) l
 WHERE d.number = l.number"""


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

    with service_context(budget="import"), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute("TRUNCATE dnc_registry_load")
        result.numbers_in_file, result.invalid_lines = _copy_file(cursor, path, deleted=False, processes=processes)
        if deletions:
            result.deletions_in_file, _ = _copy_file(cursor, deletions, deleted=True, processes=processes)
        if not result.numbers_in_file and not result.deletions_in_file:
            raise DncFileError(f"{path.name}: no line holds an area code and number")
        lap("copy_ms")
        cursor.execute("SELECT count(*) FROM dnc_registry_numbers")
        before = cursor.fetchone()[0]
        rebuild = replace or before == 0
        if rebuild:
            cursor.execute("SELECT dnc_registry_indexes_drop()")
            if replace:
                cursor.execute("TRUNCATE dnc_registry_numbers")
            else:
                cursor.execute(DELETE_LISTED)
        else:
            cursor.execute(DELETE_LISTED)
        cursor.execute(REFILL)
        lap("refill_ms")
        if rebuild:
            cursor.execute("SELECT dnc_registry_indexes_create()")
            lap("index_ms")
        cursor.execute("SELECT count(*) FROM dnc_registry_numbers")
        result.numbers_total = cursor.fetchone()[0]
        result.numbers_deleted = max(0, before - result.numbers_total) if not replace else 0
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
