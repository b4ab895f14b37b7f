"""The plans of an upload's apply against a large `leads`: every statement of `manage.py ingest_sql`, run in
psql under `EXPLAIN (ANALYZE, BUFFERS)` in a transaction that is rolled back, for a staged 100k-row file of the
growth benchmark (`benchmarks/ingest_growth.py`), into the database it left (`--keep`).

    BENCH_INGEST_DATABASE=… python -m benchmarks.ingest_explain [--rows 100000] [--merge] > plans.txt

`--merge`: the merge path's plans (the first file is ingested for real first, its leads deleted again after).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time

from benchmarks import common
from benchmarks.ingest_files import generate
from benchmarks.ingest_growth import FILE_KEY_OFFSET, forget_uploads

DB_NAME = os.environ.get("BENCH_INGEST_DATABASE", "equity_connect_bench_ingest")
WORK = common.ROOT / "var" / "bench" / "ingest_explain"
EXPLAINED = ("SELECT", "CREATE TEMP TABLE", "INSERT", "UPDATE", "WITH")


def _accept(path):
    from equity_connect.db import service_context
    from pipeline.intake.services import upload_accept

    body = path.read_bytes()
    with service_context():
        return upload_accept(
            body=io.BytesIO(body),
            content_sha256=hashlib.sha256(body).hexdigest(),
            size_bytes=len(body),
            source="bench",
            enqueue=False,
        )


def _index_blocks() -> dict[str, tuple[int, int]]:
    with common.psycopg_admin() as conn:
        rows = conn.execute(
            "SELECT indexrelname, idx_blks_read, idx_blks_hit FROM pg_statio_user_indexes WHERE relname = 'leads'"
            " UNION ALL SELECT 'heap', heap_blks_read, heap_blks_hit FROM pg_statio_user_tables"
            " WHERE relname = 'leads'"
            " ORDER BY 1"
        ).fetchall()
    return {name: (read, hit) for name, read, hit in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--merge", action="store_true")
    args = parser.parse_args(argv)
    os.environ["MEDIA_ROOT"] = str(WORK / "media")
    os.environ["UPLOAD_MAX_BYTES"] = str(1 << 30)
    common.setup(DB_NAME, fresh=False)
    from django.conf import settings
    from django.core.management import call_command

    from pipeline.ingest import staging
    from pipeline.ingest.services import upload_ingest

    WORK.mkdir(parents=True, exist_ok=True)
    forget_uploads()  # what an interrupted benchmark left
    first, second = WORK / "a.csv", WORK / "b.csv"
    distinct = generate(first, args.rows, offset=FILE_KEY_OFFSET, scrambled_keys=True)
    target = first
    try:
        if args.merge:
            generate(second, args.rows, offset=FILE_KEY_OFFSET + distinct // 2, revision=1, scrambled_keys=True)
            upload_ingest(upload_id=_accept(first).id)
            target = second
        upload = _accept(target)
        staging.stage_file(
            upload_id=str(upload.id), path=upload.file.path, broker_id=None, size_bytes=upload.size_bytes
        )
        out = io.StringIO()
        call_command("ingest_sql", stdout=out)
        preamble, *blocks = out.getvalue().split("\n-- ")
        script = [preamble]
        for block in blocks:
            head, _, statement = block.partition("\n")
            echo = "\\echo '=== " + head.strip().replace("'", "") + "'"
            if statement.lstrip().startswith(EXPLAINED):
                script.append(f"{echo}\nEXPLAIN (ANALYZE, BUFFERS) {statement.strip()}")
            else:
                script.append(f"{echo}\n{statement.strip() or head}")
        text = "\n".join(script).replace("COMMIT;", "ROLLBACK;")
        admin = settings.DATABASE_ADMIN
        command = [shutil.which("psql") or "psql", "-X", "-d", admin["NAME"], "-U", admin["USER"]]
        command += ["-h", admin["HOST"]] if admin["HOST"] else []
        command += ["-p", str(admin["PORT"])] if admin["PORT"] else []
        command += ["-v", f"upload={upload.id}", "-v", "source=explain", "-v", "lines=NULL"]
        env = {**os.environ, "PGPASSWORD": admin["PASSWORD"] or ""}
        before = _index_blocks()
        result = subprocess.run(command, input=text, capture_output=True, text=True, env=env)
        time.sleep(1.5)  # the session's statistics reach the cumulative views when it ends
        after = _index_blocks()
        print(result.stdout)
        print(result.stderr, file=sys.stderr)
        print("=== pages of leads and its indexes the apply read from outside / found in shared_buffers")
        for name, (read, hit) in after.items():
            print(f"{name}: read {read - before[name][0]:,}, hit {hit - before[name][1]:,}")
    finally:
        forget_uploads()
        for path in (first, second):
            path.unlink(missing_ok=True)
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
