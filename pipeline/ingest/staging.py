"""Staging, the database side: stream an upload's file into `leads_staging` with `COPY … FROM STDIN`,
normalising each row on the way (one pass), in batches that each commit.

The file is read once (pipeline/ingest/reading.py), each record shaped into a staging row
(pipeline/ingest/rows.py), by this process or by child processes (pipeline/ingest/sources.py), and the COPY
text goes straight into `leads_staging` (it has no row-level security, so COPY is allowed; only
service_role and pipeline_writer hold privileges on it). Memory stays flat: one block of rows at a time,
never the file. Each block of `INGEST_STAGE_BATCH_ROWS` rows commits with the upload's progress and running
counts, so `GET /api/v1/uploads/<id>` shows them while the file streams in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from psycopg.copy import QueuedLibpqWriter

from equity_connect.db import pipeline_writer_context
from leads.models import VerificationCodeMap
from pipeline.models import LeadStaging
from security.models import Broker
from security.pii import codec, codec_keys

from .columns import map_headers, missing_key_columns_reason, unrecognised_columns
from .reading import FileUnreadable, detect_encoding, header_of
from .rows import NORMALISED_NAMES, StagingLayout, Territory
from .sources import InProcessSource, StageJob, SubprocessSource

# COPY's text format (rows.StagingLayout.write_copy_text builds it): upload, line, raw JSON, payload JSON,
# then the normalised columns.
COPY_SQL = (
    f"COPY leads_staging (upload_id, line_number, raw, melissa_payload, {', '.join(NORMALISED_NAMES)}) FROM STDIN"
)
# While the worker normalises in-process, psycopg's writer thread sends the previous block; a shorter
# interpreter switch interval keeps that thread from waiting up to 5 ms for the GIL at every socket write.
OVERLAP_SWITCH_INTERVAL = 0.0002  # seconds (CPython's default is 0.005)


@dataclass
class StageResult:
    rows_total: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0
    encoding: str = "utf-8"
    columns: list[str] = field(default_factory=list)  # the header's raw keys, in order
    unrecognised_columns: list[str] = field(default_factory=list)
    normaliser_peak_rss_kb: int = 0  # the normaliser processes', when they ran


def territory_load() -> Territory:
    """The active brokers' territory rules (older brokers win a shared prefix or state)."""
    territory = Territory()
    brokers = Broker.objects.active().order_by("created_at", "id")
    for broker_id, prefixes, states in brokers.values_list("id", "territory_zip_prefixes", "territory_states"):
        for prefix in prefixes or ():
            territory.by_prefix.setdefault(prefix.strip(), str(broker_id))
        for code in states or ():
            territory.by_state.setdefault(code.strip().upper(), str(broker_id))
    return territory


def verified_codes() -> tuple[frozenset[str], frozenset[str]]:
    """(email codes, phone codes) that `verification_code_map` says mean verified."""
    rows = [
        (channel, code.upper())
        for channel, code in VerificationCodeMap.objects.filter(is_verified=True).values_list("channel", "code")
    ]
    return (
        frozenset(code for channel, code in rows if channel == "email"),
        frozenset(code for channel, code in rows if channel == "phone"),
    )


def layout_for(headers: list[str], *, upload_id: str, broker_id: str | None) -> StagingLayout:
    """The row shaping of a file with `headers`, with today's territory rules and verification codes."""
    email_codes, phone_codes = verified_codes()
    return StagingLayout(
        headers,
        upload_id=upload_id,
        broker_id=broker_id,
        territory=territory_load(),
        email_codes=email_codes,
        phone_codes=phone_codes,
        codec=codec(),
    )


def staging_rows_delete(upload_id, lines: list[int] | None = None) -> None:
    """Empty the upload's staging rows (or only those `lines`)."""
    rows = LeadStaging.objects.filter(upload_id=upload_id)
    if lines is not None:
        rows = rows.filter(line_number__in=lines)
    rows.delete()  # one DELETE statement: nothing refers to staging rows


def staging_rows_copy(layout: StagingLayout, pairs: Iterable[tuple[list[str], int]]) -> int:
    """COPY (row, line) pairs into staging in the current transaction (a few rows: a DLQ reprocess).
    Returns the rows copied."""
    with connection.cursor() as wrapper, wrapper.cursor.copy(COPY_SQL) as copy:
        count, _ = layout.write_copy_text(copy, pairs)
    return count


def _copy_batch(source, cursor):
    """One batch of `source` into a COPY on `cursor`. For an in-process source the socket writes go to
    psycopg's writer thread, so PostgreSQL parses one block while Python normalises the next."""
    if not source.overlap_writes:
        with cursor.copy(COPY_SQL) as copy:
            return source.copy_batch(copy)
    switch_interval = sys.getswitchinterval()
    with cursor.copy(COPY_SQL, writer=QueuedLibpqWriter(cursor)) as copy:
        sys.setswitchinterval(OVERLAP_SWITCH_INTERVAL)
        try:
            return source.copy_batch(copy)
        finally:
            sys.setswitchinterval(switch_interval)


def stage_file(
    *,
    upload_id: str,
    path: str,
    broker_id: str | None,
    size_bytes: int,
    on_progress: Callable[[StageResult, float], None] | None = None,
) -> StageResult:
    """COPY every data row of `path` into `leads_staging`, committing every INGEST_STAGE_BATCH_ROWS rows.

    Files of INGEST_SUBPROCESS_MIN_BYTES or more are normalised in child processes (SubprocessSource);
    smaller ones here. Call with no transaction open; each batch opens its own `pipeline_writer_context()`."""
    encoding, has_nul = detect_encoding(path)
    result = StageResult(encoding=encoding)
    headers = header_of(path, encoding=encoding, has_nul=has_nul)
    if headers is not None:
        # A file we cannot read fails at once, with the columns it has and the ones we need.
        reason = missing_key_columns_reason(headers)
        if reason:
            raise FileUnreadable(reason)
        result.columns = map_headers(headers)[1]
        result.unrecognised_columns = unrecognised_columns(headers)
    with pipeline_writer_context():
        territory = territory_load()
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
        pii_keys=codec_keys().to_plain(),
    )
    threshold = settings.INGEST_SUBPROCESS_MIN_BYTES
    if threshold >= 0 and size_bytes >= threshold:
        source = SubprocessSource(job, max(1, settings.INGEST_NORMALISER_PROCESSES))
    else:
        source = InProcessSource(job)
    with source:
        done = False
        while not done:
            with pipeline_writer_context(), connection.cursor() as wrapper:
                batch = _copy_batch(source, wrapper.cursor)
                result.rows_total += batch.rows
                result.rows_rejected += batch.rejected
                result.blank_lines = batch.blank_lines
                if on_progress is not None:
                    fraction = batch.position / size_bytes if size_bytes else 1.0
                    on_progress(result, min(fraction, 1.0))
            done = batch.done
            if not done:
                source.batch_committed()
    result.normaliser_peak_rss_kb = source.peak_rss_kb
    return result
