"""The benchmark's ingestion worker: started (Django set up, database connected) before the upload is sent,
as a `qcluster` worker is already running when an upload arrives; then it ingests the upload whose id
arrives on stdin, in this process, exactly as `manage.py process_upload` does.

    python -m benchmarks.worker   # prints "ready", reads one upload id, prints the final status
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "equity_connect.settings.local")
    import django

    django.setup()
    from django.db import connection

    from pipeline.ingest.services import upload_ingest

    connection.ensure_connection()
    print("ready", flush=True)
    upload_id = sys.stdin.readline().strip()
    upload = upload_ingest(upload_id=upload_id)
    print(upload.status if upload else "busy", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
