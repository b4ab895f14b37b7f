"""`make bench BENCH_ARGS="ingest"`: the ingestion pipeline against its floors and its peer.

For each size (default 100k and 1M rows of a synthetic PropStream-like file, 25 columns, ~15% in-file
duplicate keys) it measures, in one run:
- floor 1: raw `COPY` of the file into an unlogged text table;
- floor 2: `COPY` of the same rows, already clean and deduplicated, into a copy of `leads` with all its
  indexes;
- ours, end to end — a signed request to a running server (`manage.py runserver`), the worker
  (`benchmarks/worker.py`, started before the request as a qcluster worker is; its peak RSS and the
  normaliser process's measured) until the upload is `done` — into an empty `leads`,
  and again with a second file sharing 50% of its keys with the first (the merge path);
- the peer: django-import-export 4.4.3 (bulk mode, `apn` as the import id) importing the smallest file,
  the whole of it by default (~4 minutes at its ≈ 400-500 rows/s here); `--peer-rows N` takes only the
  first N rows, which flatters it (measured: 567 rows/s on the first 5,000 rows, 474 on all 100,000, as
  `leads` grows under it).

    python -m benchmarks.ingest [--rows 100000 1000000] [--peer-rows N] [--no-write]
    python -m benchmarks.ingest --preload 0 1000000 5000000 [--repeat 2] [--rows 100000]

With `--preload`, it measures instead how an upload's cost grows with the table: the same two uploads into
`leads` already holding each number of leads (`benchmarks/ingest_growth.py`), written to the `ingest_growth`
section.

`BENCH_INGEST_DATABASE` names the scratch database (default `equity_connect_bench_ingest`), so two checkouts
can be measured side by side.

The synthetic files are written by `benchmarks/ingest_files.py`, the floors, our run and the peer are
measured by `benchmarks/ingest_measure.py`, and `benchmarks/ingest_report.py` turns the figures into the
markdown of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from benchmarks import common, ingest_growth
from benchmarks.ingest_files import generate
from benchmarks.ingest_measure import (
    floor_clean_copy,
    floor_raw_copy,
    free_port,
    ours,
    peer,
    start_server,
    truncate_leads,
)
from benchmarks.ingest_report import report

DB_NAME = os.environ.get("BENCH_INGEST_DATABASE", "equity_connect_bench_ingest")
WORK = common.ROOT / "var" / "bench" / "ingest"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--peer-rows", type=int, default=0, help="rows of the file the peer imports (0: all)")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer")
    parser.add_argument("--no-write", action="store_true", help="print, do not rewrite docs/benchmarks.md")
    parser.add_argument("--preload", type=int, nargs="+", help="leads already in the table (the growth curve)")
    parser.add_argument("--repeat", type=int, default=1, help="with --preload: upload pairs per size")
    parser.add_argument("--drop", action="store_true", help="drop the scratch database at the end")
    parser.add_argument(
        "--keep", action="store_true", help="with --preload: reuse the scratch database and its preloaded leads"
    )
    args = parser.parse_args(argv)
    os.environ["MEDIA_ROOT"] = str(WORK / "media")  # the stored uploads, removed at the end
    os.environ["UPLOAD_MAX_BYTES"] = str(1 << 30)  # the 1M-row file is ~220 MB, over the 200 MB default
    common.setup(DB_NAME, fresh=not (args.keep and args.preload is not None))
    from equity_connect.db import service_context
    from security.services import partner_get_or_create, partner_key_create

    with service_context():
        key, secret = partner_key_create(partner=partner_get_or_create(name="bench"))
    WORK.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_server(port)
    base_url = f"http://127.0.0.1:{port}"
    results = []
    peer_rows = 0  # set when the peer runs
    if args.preload is not None:
        return _growth(args, base_url=base_url, key_id=key.key_id, secret=secret, server=server)
    load_before = os.getloadavg()
    try:
        for rows in args.rows:
            first, second, clean = WORK / f"a_{rows}.csv", WORK / f"b_{rows}.csv", WORK / f"clean_{rows}.csv"
            distinct = generate(first, rows, offset=0, clean_path=clean)
            # Half its keys are in the first file, with a new valuation: every merge really changes a lead.
            generate(second, rows, offset=distinct // 2, revision=1)
            size_mb = first.stat().st_size / 1e6
            print(f"[{rows}] files generated ({size_mb:.0f} MB)", flush=True)
            truncate_leads()
            raw_floor = floor_raw_copy(first)
            clean_floor = floor_clean_copy(clean)
            print(
                f"[{rows}] floors: raw COPY {raw_floor:.1f} s, clean COPY into leads {clean_floor:.1f} s", flush=True
            )
            empty = ours(first, base_url=base_url, key_id=key.key_id, secret=secret)
            print(f"[{rows}] ours into empty leads: {empty['seconds']:.1f} s", flush=True)
            merge = ours(second, base_url=base_url, key_id=key.key_id, secret=secret)
            print(f"[{rows}] ours merge path: {merge['seconds']:.1f} s", flush=True)
            # Two parcels at one address (30% of the keys): the dedupe keeps them apart, as possible duplicates.
            shared = WORK / f"c_{rows}.csv"
            generate(shared, rows, offset=0, shared_address=0.3)
            truncate_leads()
            shared_run = ours(shared, base_url=base_url, key_id=key.key_id, secret=secret)
            print(f"[{rows}] ours, 30% shared addresses, into empty leads: {shared_run['seconds']:.1f} s", flush=True)
            shared.unlink()
            peer_rate = None
            if rows == min(args.rows) and not args.no_peer:
                truncate_leads()
                peer_rows = min(args.peer_rows or rows, rows)
                peer_rate = peer(first, peer_rows)
                print(f"[{rows}] peer: {peer_rate:.0f} rows/s", flush=True)
            results.append((rows, size_mb, raw_floor, clean_floor, empty, merge, peer_rate, shared_run))
            for path in (first, second, clean):
                path.unlink()
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(WORK / "media", ignore_errors=True)
    load_after = os.getloadavg()
    text = report(results, load_before=load_before, load_after=load_after, peer_rows=peer_rows)
    print(text)
    if not args.no_write:
        common.write_section("ingest", text)
    if args.drop:
        common.drop(DB_NAME)
    return 0


def _growth(args, *, base_url: str, key_id: str, secret: str, server) -> int:
    rows = args.rows[0] if args.rows != [100_000, 1_000_000] else 100_000
    try:
        results = ingest_growth.measure(
            args.preload, rows=rows, repeat=args.repeat, work=WORK, base_url=base_url, key_id=key_id, secret=secret
        )
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(WORK / "media", ignore_errors=True)
    text = ingest_growth.report(results, rows=rows)
    print(text)
    if not args.no_write:
        common.write_section("ingest_growth", text)
    if args.drop:
        common.drop(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
