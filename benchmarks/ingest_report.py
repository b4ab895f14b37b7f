"""The ingestion benchmark's section of docs/benchmarks.md, from the figures `benchmarks/ingest.py` measured."""

from __future__ import annotations

import time

from benchmarks import common

# The worker's steps, in the order they run (`timings` of the upload's `dedupe_success` event).
STEPS = (
    "staging_ms",
    "dlq_ms",
    "dedupe_ms",
    "match_ms",
    "update_ms",
    "insert_ms",
    "search_ms",
    "suppress_ms",
)


def report(
    results: list[tuple], *, load_before: tuple[float, ...], load_after: tuple[float, ...], peer_rows: int
) -> str:
    """The markdown text: one `(rows, size_mb, raw_floor, clean_floor, empty, merge, peer_rate, shared)` tuple per
    file size in `results`; `peer_rows`, the rows the peer imported (when it ran)."""
    lines = []
    peer_rate = next((r[6] for r in results if r[6]), None)
    lines.append(
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {common.machine()}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (the machine is shared: treat as upper "
        "bounds)."
    )
    lines.append("")
    lines.append(
        "| rows (file) | raw COPY floor | clean COPY into `leads` floor | ours: empty `leads` "
        "| ours: merge path (50% overlap) | ours: 30% shared addresses, empty `leads` | goal (2x floors) "
        "| peak RSS: worker + normaliser processes (sum) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for rows, size_mb, raw_floor, clean_floor, empty, merge, _, shared in results:
        goal = 2 * (raw_floor + clean_floor)
        lines.append(
            f"| {rows:,} ({size_mb:.0f} MB) | {raw_floor:.1f} s | {clean_floor:.1f} s | {empty['seconds']:.1f} s "
            f"({rows / empty['seconds']:,.0f} rows/s) | {merge['seconds']:.1f} s "
            f"({rows / merge['seconds']:,.0f} rows/s) | {shared['seconds']:.1f} s "
            f"({rows / shared['seconds']:,.0f} rows/s) | {goal:.1f} s "
            f"| {max(empty['rss_mb'], merge['rss_mb']):.0f} MB"
            f" + {max(empty['normaliser_rss_mb'], merge['normaliser_rss_mb']):.0f} MB |"
        )
    lines.append("")
    for rows, _, _, _, empty, merge, _, shared in results:
        for label, run in (("empty", empty), ("merge", merge), ("30% shared addresses", shared)):
            steps = run.get("timings") or {}
            split = ", ".join(
                f"{step.removesuffix('_ms')} {steps[step] / 1000:.1f} s" for step in STEPS if step in steps
            )
            lines.append(
                f"- {rows:,} rows, {label}: created {run['leads_created']:,}, merged {run['leads_merged']:,}, "
                f"in-file duplicates {run['duplicates_in_file']:,}, rejected {run['rows_rejected']:,}, "
                f"possible duplicates {run.get('possible_duplicates', 0):,}; the signed "
                f"POST (hash, verify, store) took {run['accept_seconds']:.1f} s of it"
                + (f"; worker steps: {split}." if split else ".")
            )
    if peer_rate:
        smallest = results[0]
        ours_rate = smallest[0] / smallest[4]["seconds"]
        lines.append(
            f"- Peer: django-import-export 4.4.3 (bulk mode, `apn` as id) on {peer_rows:,} rows of the "
            f"{smallest[0]:,}-row file: {peer_rate:,.0f} rows/s. Ours end to end on the whole file: {ours_rate:,.0f} "
            f"rows/s = {ours_rate / peer_rate:,.0f}x (goal ≥ 20x)."
        )
    lines.append("")
    lines.append(
        "Files: synthetic PropStream-like CSVs, 25 columns, 15% in-file duplicate keys (repeats spelled "
        "differently: `Street`/`ST.`, ZIP+4, upper-case email); the second file shares half its keys with "
        "the first and gives them a new valuation, so every merge writes (merges that change nothing are "
        "skipped by design); the third file gives 30% of its keys the street address of another parcel (no "
        "unit): each such pair stays two leads and becomes a possible duplicate. `python -m benchmarks.ingest "
        "--rows 100000 1000000` reproduces it."
    )
    lines.append("")
    lines.append(
        "Where the time goes (the worker steps above: the `timings` of each upload's `dedupe_success` event; the "
        "rest of each total is the POST, the end of the transaction (emptying the upload's staging rows) and the "
        "status poll; the worker is started before the request, as a qcluster worker is): the INSERT into "
        "`leads` is the largest step and costs about what the clean-COPY floor costs (heap, its indexes, the "
        "insert triggers); the search step then writes the new leads' portal search rows into a partition of "
        "`lead_search` and builds its trigram GIN in one pass (the floor has no search index); staging runs "
        "the file through the Python normalisers in "
        "`INGEST_NORMALISER_PROCESSES` child processes (each takes every other row) while the worker copies "
        "their COPY text into the unlogged `leads_staging`, so Python and PostgreSQL's COPY share the two "
        "cores; then the set-based dedupe and match and, on the merge path, the UPDATE, whose re-scored leads "
        "are HOT updates (no indexed column changes and `leads` keeps half of each page free), so it rewrites "
        "no index entry. Memory stays flat (streaming) in the worker and in each normaliser process."
    )
    return "\n".join(lines)
