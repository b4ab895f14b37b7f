"""`python -m benchmarks.ingest --preload 0 1000000 5000000`: does an upload cost more as `leads` grows?

For each size N (ascending; the table is grown in place, never rebuilt) it fills `leads` with N existing leads
by SQL (one `INSERT … SELECT generate_series`, then VACUUM ANALYZE, as autovacuum would settle a bulk load),
then sends the same two uploads as the ingest benchmark, end to end: a 100k-row file of new parcels (the
"empty" path: every property becomes a lead) and a second file sharing half its keys with the first (the
merge path, every merge writing). After each pair their leads, uploads and events are deleted again
(VACUUM), so every point starts from exactly N leads. `--repeat` runs each pair several times per size.

The preloaded leads look like uploaded ones where the ingest's indexes can tell: parcel numbers (APN, MAK)
spread over the whole key space by the same bijection the files use with `scrambled_keys`
(benchmarks/ingest_files.py `parcel_number`), so a file's keys land among the table's rather than after
them; a random-looking `addr_hash` (a SHA-256), blind indexes for e-mail and phone in the stored form
(`<key version>:<32 hex>`, version 1 as in the benchmark's keys, so a file's entries land among them), random ids
(`gen_random_uuid()`, as every lead made before time-ordered ids had), 20 brokers, the portal benchmark's
name, street and city lists (benchmarks/portal_data.py). The portal's own generator is not reused: its
keys (`MAK1`, `MAK2`, …, sequential APNs, no `addr_hash`) would put every new key after the old ones.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks import common
from benchmarks.ingest_files import KEY_MODULUS, KEY_MULTIPLIER, generate
from benchmarks.ingest_measure import ours
from benchmarks.ingest_report import STEPS
from benchmarks.portal_data import BROKERS, CITIES, FIRST_NAMES, LAST_NAMES, STREETS, bench_brokers

# The files' keys start here: above every preloaded key (1…N), so no file parcel is already a lead.
FILE_KEY_OFFSET = 100_000_000

PRELOAD_SQL = """
INSERT INTO leads (id, first_name, last_name, email_bidx, phone_bidx, property_address, property_city,
                   property_state, property_zip, property_value, estimated_equity, property_type, age,
                   owner_occupied, assigned_broker_id, lead_score, campaign_status, email_verified, phone_verified,
                   apn, mak, addr_hash, source, created_at)
SELECT gen_random_uuid(), f, l, '1:' || md5('e' || g), '1:' || md5('p' || g),
       (100 + g %% 9899)::text || ' ' || s || ' St', c, 'CA', (90000 + (g %% 6000))::text,
       200000 + (random() * 1500000)::int, (random() * 900000)::int, 'Single Family', 55 + (random() * 35)::int,
       random() < 0.85, (%(brokers)s::uuid[])[1 + g %% %(n_brokers)s], (random() * 100)::int,
       (ARRAY['new','new','new','queued','active','replied','paused','bounced'])[1 + (random() * 7)::int]
         ::campaign_status,
       random() < 0.7, random() < 0.6,
       lpad(p::text, 9, '0') || '-A', 'MAK' || lpad(p::text, 10, '0'),
       encode(sha256(convert_to('parcel ' || g, 'UTF8')), 'hex'), 'preload', now() - random() * interval '365 days'
  FROM (SELECT g, g * %(multiplier)s %% %(modulus)s AS p,
               (%(first)s::text[])[1 + (random() * (array_length(%(first)s::text[], 1) - 1))::int] AS f,
               (%(last)s::text[])[1 + (random() * (array_length(%(last)s::text[], 1) - 1))::int] AS l,
               (%(streets)s::text[])[1 + (random() * (array_length(%(streets)s::text[], 1) - 1))::int] AS s,
               (%(cities)s::text[])[1 + (random() * (array_length(%(cities)s::text[], 1) - 1))::int] AS c
          FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g) AS rows
"""


def preload(total: int) -> float:
    """Grow the preloaded leads to `total` (keys 1…total); returns the seconds it took, VACUUM ANALYZE included."""
    from equity_connect.db import service_context

    with service_context():
        brokers = [str(broker.pk) for broker in bench_brokers(BROKERS)]
    started = time.perf_counter()
    with common.psycopg_admin() as conn:
        have = conn.execute("SELECT count(*) FROM leads WHERE source = 'preload'").fetchone()[0]
        # In blocks of 1M: one statement's sort and WAL stay bounded.
        for start in range(have + 1, total + 1, 1_000_000):
            conn.execute(
                PRELOAD_SQL,
                {
                    "start": start,
                    "stop": min(start + 999_999, total),
                    "brokers": brokers,
                    "n_brokers": len(brokers),
                    "multiplier": KEY_MULTIPLIER,
                    "modulus": KEY_MODULUS,
                    "first": FIRST_NAMES,
                    "last": LAST_NAMES,
                    "streets": STREETS,
                    "cities": CITIES,
                },
            )
            print(f"  preloaded {min(start + 999_999, total):,} leads", flush=True)
        conn.execute("VACUUM ANALYZE leads")
    return time.perf_counter() - started


def forget_uploads() -> None:
    """Delete what the uploads made (their leads, uploads, events, staging rows), keeping the preloaded leads."""
    with common.psycopg_admin() as conn:
        conn.execute("DELETE FROM possible_duplicates")
        conn.execute("DELETE FROM leads WHERE source_upload_id IS NOT NULL")
        conn.execute("TRUNCATE pipeline_events, pipeline_dlq, leads_staging, ingest_replay_guard")
        conn.execute("DELETE FROM uploads")
        conn.execute("VACUUM ANALYZE leads")


def relation_sizes() -> dict[str, int]:
    """Bytes of `leads`' heap and of each of its indexes."""
    with common.psycopg_admin() as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c"
            " WHERE c.oid = 'leads'::regclass"
            "    OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'leads'::regclass)"
            " ORDER BY 2 DESC"
        ).fetchall()
    return dict(rows)


def measure(
    sizes: list[int], *, rows: int, repeat: int, work: Path, base_url: str, key_id: str, secret: str
) -> list[dict]:
    """The two uploads at each preloaded size, `repeat` times; one dict per pair."""
    first, second = work / f"growth_a_{rows}.csv", work / f"growth_b_{rows}.csv"
    distinct = generate(first, rows, offset=FILE_KEY_OFFSET, scrambled_keys=True)
    generate(second, rows, offset=FILE_KEY_OFFSET + distinct // 2, revision=1, scrambled_keys=True)
    results = []
    try:
        for size in sorted(sizes):
            forget_uploads()
            preload_seconds = preload(size)
            sizes_before = relation_sizes()
            for attempt in range(repeat):
                load = os.getloadavg()
                empty = ours(first, base_url=base_url, key_id=key_id, secret=secret)
                merge = ours(second, base_url=base_url, key_id=key_id, secret=secret)
                load_after = os.getloadavg()
                print(
                    f"[{size:,} leads, run {attempt + 1}] empty path {empty['seconds']:.1f} s "
                    f"{_steps(empty)}; merge path {merge['seconds']:.1f} s {_steps(merge)}; "
                    f"load {load[0]:.1f} -> {load_after[0]:.1f}",
                    flush=True,
                )
                results.append(
                    {
                        "preloaded": size,
                        "preload_seconds": preload_seconds,
                        "sizes": sizes_before,
                        "empty": empty,
                        "merge": merge,
                        "load": (load[0], load_after[0]),
                    }
                )
                forget_uploads()
    finally:
        first.unlink(missing_ok=True)
        second.unlink(missing_ok=True)
    return results


def _steps(run: dict) -> str:
    steps = run.get("timings") or {}
    return "(" + ", ".join(f"{s.removesuffix('_ms')} {steps[s] / 1000:.1f}" for s in STEPS if s in steps) + ")"


def report(results: list[dict], *, rows: int, note: str = "") -> str:
    """The markdown of the `ingest_growth` section."""
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {common.machine()}; "
        "the machine is shared (load averages per run below: treat the figures as upper bounds).",
        "",
        f"A {rows:,}-row file of new parcels (empty path: {rows * 85 // 100:,} leads created) and then a "
        f"{rows:,}-row file sharing half its keys with it (merge path), into `leads` already holding N "
        "preloaded leads. Seconds end to end (signed POST to `done`), then the worker steps (`timings` of each "
        "upload's `dedupe_success` event) in seconds.",
        "",
        "| N leads | run | load (1 min) | empty path | staging / dedupe / match / insert | merge path "
        "| staging / dedupe / match / update / insert |",
        "|---|---|---|---|---|---|---|",
    ]
    runs: dict[int, int] = {}
    for result in results:
        size = result["preloaded"]
        runs[size] = runs.get(size, 0) + 1
        empty, merge = result["empty"], result["merge"]
        te, tm = empty.get("timings") or {}, merge.get("timings") or {}

        def step(timings: dict, name: str) -> str:
            return f"{timings.get(name + '_ms', 0) / 1000:.1f}"

        lines.append(
            f"| {size:,} | {runs[size]} | {result['load'][0]:.1f} → {result['load'][1]:.1f} "
            f"| {empty['seconds']:.1f} s "
            f"| {' / '.join(step(te, s) for s in ('staging', 'dedupe', 'match', 'insert'))} "
            f"| {merge['seconds']:.1f} s "
            f"| {' / '.join(step(tm, s) for s in ('staging', 'dedupe', 'match', 'update', 'insert'))} |"
        )
    lines.append("")
    by_size: dict[int, list[dict]] = {}
    for result in results:
        by_size.setdefault(result["preloaded"], []).append(result)
    if 0 in by_size and len(by_size) > 1:
        base_empty = min(r["empty"]["seconds"] for r in by_size[0])
        base_merge = min(r["merge"]["seconds"] for r in by_size[0])
        ratios = ", ".join(
            f"{size:,}: {min(r['empty']['seconds'] for r in group) / base_empty:.2f}x empty, "
            f"{min(r['merge']['seconds'] for r in group) / base_merge:.2f}x merge"
            for size, group in sorted(by_size.items())
            if size
        )
        lines.append(f"Best run at N over best run at 0 (goal ≤ 1.5x): {ratios}.")
        lines.append("")
    for size, group in sorted(by_size.items()):
        sizes = group[0]["sizes"]
        listed = ", ".join(f"`{name}` {value / 1e6:,.0f} MB" for name, value in sizes.items())
        lines.append(f"- N = {size:,} (preloaded in {group[0]['preload_seconds']:.0f} s): {listed}.")
    if note:
        lines += ["", note]
    return "\n".join(lines)
