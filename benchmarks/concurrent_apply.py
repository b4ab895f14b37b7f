"""`make bench BENCH_ARGS="concurrent_apply"`: four uploads at once against the same four one after another.

Four synthetic PropStream-like files (benchmarks/ingest_files.py) of `--rows` rows each (default 250,000), each
sharing 10% of its keys with the next, are stored as uploads (not timed) and ingested by four worker processes
(`benchmarks/worker.py`, each started and connected first, as a cluster's workers are):

- serial: into an empty `leads`, one after another (what the global apply lock made of four workers);
- concurrent: into an empty `leads` again, the four ids handed to the four workers at the same moment.

It reports each upload's time (id handed over → the worker done) and steps, the total (first handed over → last
done), the counts, and checks one lead per MAK and that no worker logged an apply retry (a deadlock or a unique
violation would). Writes the `bench:concurrent_apply` section of docs/benchmarks.md.

    python -m benchmarks.concurrent_apply [--rows 250000] [--no-write] [--keep-database]

`BENCH_CONCURRENT_DATABASE` names the scratch database (default `equity_connect_bench_concurrent`); it is
dropped at the end unless `--keep-database`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import common
from benchmarks.ingest_files import generate

DB_NAME = os.environ.get("BENCH_CONCURRENT_DATABASE", "equity_connect_bench_concurrent")
WORK = common.ROOT / "var" / "bench" / "concurrent_apply"
UPLOADS = 4
SHARED = 0.10  # of each file's keys, also in the next file
STEPS = ("staging", "dlq", "dedupe", "match", "insert", "update", "suppress")  # the worker's, in order


def _files(rows: int) -> list[Path]:
    paths = []
    distinct = int(rows * 0.85)  # generate()'s distinct keys
    for index in range(UPLOADS):
        path = WORK / f"upload_{index}_{rows}.csv"
        generate(path, rows, offset=index * int(distinct * (1 - SHARED)), seed=7 + index)
        paths.append(path)
    return paths


def _reset() -> None:
    with common.psycopg_admin() as conn:
        conn.execute(
            "TRUNCATE leads, uploads, leads_staging, pipeline_dlq, pipeline_events, ingest_replay_guard,"
            " possible_duplicates CASCADE"
        )


def _accept(paths: list[Path]) -> list[str]:
    from equity_connect.db import service_context
    from pipeline.intake.services import upload_accept

    ids = []
    for path in paths:
        body = path.read_bytes()
        with service_context(), path.open("rb") as handle:
            upload = upload_accept(
                body=handle,
                content_sha256=hashlib.sha256(body).hexdigest(),
                size_bytes=len(body),
                filename=path.name,
                source="bench",
                enqueue=False,
            )
        ids.append(str(upload.id))
    return ids


def _worker(log: Path) -> subprocess.Popen:
    worker = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.worker"],
        cwd=common.ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        text=True,
    )
    if worker.stdout.readline().strip() != "ready":
        worker.kill()
        raise RuntimeError("the benchmark worker did not start")
    return worker


def _run(upload_ids: list[str], *, concurrent: bool, label: str) -> dict:
    """Ingest the uploads, all at once or one after another. Returns the total and each upload's seconds."""
    logs = [WORK / f"{label}_{index}.log" for index in range(len(upload_ids))]
    seconds: dict[str, float] = {}
    if concurrent:
        workers = [_worker(log) for log in logs]
        started = time.perf_counter()
        for worker, upload_id in zip(workers, upload_ids, strict=True):
            worker.stdin.write(upload_id + "\n")
            worker.stdin.flush()
        pending = dict(zip(upload_ids, workers, strict=True))
        while pending:
            for upload_id, worker in list(pending.items()):
                if worker.poll() is not None:
                    seconds[upload_id] = time.perf_counter() - started
                    del pending[upload_id]
            time.sleep(0.05)
        total = time.perf_counter() - started
        outputs = [worker.stdout.read().strip() for worker in workers]
    else:
        total, outputs = 0.0, []
        for upload_id, log in zip(upload_ids, logs, strict=True):
            worker = _worker(log)
            started = time.perf_counter()
            worker.stdin.write(upload_id + "\n")
            worker.stdin.close()
            worker.wait()
            seconds[upload_id] = time.perf_counter() - started
            total += seconds[upload_id]
            outputs.append(worker.stdout.read().strip())
    for output, log in zip(outputs, logs, strict=True):
        if output != "done":
            raise RuntimeError(f"an upload did not finish: {output!r}\n{log.read_text()[-4000:]}")
    retries = sum(log.read_bytes().count(b"upload apply conflict") for log in logs)
    return {"total": total, "seconds": seconds, "retries": retries, **_figures(upload_ids)}


def _figures(upload_ids: list[str]) -> dict:
    with common.psycopg_admin() as conn:
        uploads = {
            str(row[0]): row[1:]
            for row in conn.execute(
                "SELECT u.id, u.rows_total, u.leads_created, u.leads_merged, u.duplicates_in_file, u.rows_rejected,"
                " u.possible_duplicates, e.event_data->'timings', (e.event_data->>'insert_losers')::int"
                "  FROM uploads u JOIN pipeline_events e ON e.upload_id = u.id AND e.event_type = 'dedupe_success'"
                " WHERE u.id = ANY(%s::uuid[])",
                [upload_ids],
            )
        }
        leads, distinct_maks, with_mak = conn.execute(
            "SELECT count(*), count(DISTINCT mak), count(mak) FROM leads"
        ).fetchone()
        pairs = conn.execute("SELECT count(*) FROM possible_duplicates").fetchone()[0]
    return {"uploads": uploads, "leads": leads, "distinct_maks": distinct_maks, "with_mak": with_mak, "pairs": pairs}


def _report(rows: int, serial: dict, concurrent: dict, ids: dict, load: list, when: str) -> str:
    ratio = concurrent["total"] / serial["total"]
    lines = [
        f"Measured {when} on {common.machine()}; load average {load[0][0]:.1f} before, "
        f"{load[1][0]:.1f} after the serial run, {load[2][0]:.1f} after the concurrent run (the machine is shared:"
        " treat as upper bounds).",
        "",
        f"Four uploads of {rows:,} rows each (synthetic PropStream-like files, ~15% in-file duplicate keys), each"
        f" sharing {SHARED:.0%} of its keys with the next; four worker processes on one database. Serial: one after"
        " another into an empty `leads` (what the global apply lock made of four workers). Concurrent: into an"
        " empty `leads` again, handed to the four workers at once.",
        "",
        f"| run | total | goal (≤ 0.75 x serial) | {' | '.join(f'upload {i + 1}' for i in range(UPLOADS))} |",
        "|---|---|---|" + "---|" * UPLOADS,
    ]
    for name, run in (("serial", serial), ("concurrent", concurrent)):
        each = " | ".join(f"{run['seconds'][upload_id]:.1f} s" for upload_id in ids[name])
        goal = f"{0.75 * serial['total']:.1f} s" if name == "concurrent" else "—"
        lines.append(f"| {name} | {run['total']:.1f} s | {goal} | {each} |")
    lines += ["", f"Concurrent / serial: **{ratio:.2f}x** (goal ≤ 0.75x).", ""]
    for name, run in (("serial", serial), ("concurrent", concurrent)):
        lines.append(
            f"- {name}: {run['leads']:,} leads, {run['distinct_maks']:,} distinct MAKs of {run['with_mak']:,}"
            f" (one lead per key), {run['pairs']:,} possible duplicates, {run['retries']} apply retries"
            " (deadlock or unique violation) in the workers' logs;"
        )
        for index, upload_id in enumerate(ids[name]):
            total, created, merged, in_file, rejected, _pairs, timings, losers = run["uploads"][upload_id]
            ms = {key.removesuffix("_ms"): value for key, value in (timings or {}).items()}
            steps = ", ".join(f"{step} {ms[step] / 1000:.1f} s" for step in STEPS if step in ms)
            lines.append(
                f"  - upload {index + 1}: {total:,} rows = {created:,} created + {merged:,} merged"
                f" + {in_file:,} in-file duplicates + {rejected:,} rejected; inserts that lost to another"
                f" upload's lead and were merged: {losers or 0:,}; steps: {steps}"
            )
    lines += [
        "",
        "Where the time goes: in a row, each upload has the machine to itself (its normaliser processes and COPY,"
        " then the apply, whose INSERT into `leads` is its largest step); at once, the four stage, dedupe and match"
        " side by side and share the two cores, so each takes longer than alone, and the serial waits are gone. What"
        " is still waited on is the other uploads' keys: an upload whose insert meets a key another upload inserted"
        " and has not committed waits for that commit (its `insert` step above includes the wait), then merges those"
        ' properties into that lead ("inserts that lost"); with each file sharing keys with the next, those waits'
        " chain."
        + (
            " No apply was retried and every MAK has one lead."
            if all(run["retries"] == 0 and run["distinct_maks"] == run["with_mak"] for run in (serial, concurrent))
            else " **An apply was retried, or a MAK has two leads: see the figures above.**"
        )
        + f" `python -m benchmarks.concurrent_apply --rows {rows}` reproduces it.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--no-write", action="store_true", help="print, do not rewrite docs/benchmarks.md")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the scratch database")
    args = parser.parse_args(argv)
    os.environ["MEDIA_ROOT"] = str(WORK / "media")
    os.environ["UPLOAD_MAX_BYTES"] = str(1 << 30)
    common.setup(DB_NAME, fresh=True)
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        paths = _files(args.rows)
        print(f"files generated: {UPLOADS} x {args.rows:,} rows", flush=True)
        load = [os.getloadavg()]
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        _reset()
        serial_ids = _accept(paths)
        serial = _run(serial_ids, concurrent=False, label="serial")
        print(f"serial: {serial['total']:.1f} s", flush=True)
        load.append(os.getloadavg())
        _reset()
        concurrent_ids = _accept(paths)
        concurrent = _run(concurrent_ids, concurrent=True, label="concurrent")
        print(f"concurrent: {concurrent['total']:.1f} s", flush=True)
        load.append(os.getloadavg())
        text = _report(args.rows, serial, concurrent, {"serial": serial_ids, "concurrent": concurrent_ids}, load, when)
        print(text)
        if not args.no_write:
            common.write_section("concurrent_apply", text)
        for run in (serial, concurrent):
            if run["distinct_maks"] != run["with_mak"] or run["retries"]:
                print("FAILED: two leads for one MAK, or an apply retried", file=sys.stderr)
                return 1
        return 0
    finally:
        for path in WORK.glob("*.csv"):
            path.unlink()
        shutil.rmtree(WORK / "media", ignore_errors=True)  # the workers' logs stay in var/bench/concurrent_apply/
        if not args.keep_database:
            common.drop(DB_NAME)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
