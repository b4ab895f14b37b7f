"""The apply's SQL is readable as SQL: `manage.py ingest_sql` prints every statement in order, and psql runs
that text as printed, with the same result as the ingestion itself."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from django.core.management import call_command

from equity_connect.db import service_context
from leads.models import Lead
from pipeline.ingest import staging
from tests.pg import conninfo
from tests.pipeline.ingest_helpers import accept, csv_of

ROWS = [
    {"mak": "M1", "address": "1 Main St", "city": "Fresno", "state": "CA", "zip": "93650", "first_name": "Ann"},
    {"mak": "M1", "address": "1 MAIN STREET", "city": "Fresno", "state": "CA", "zip": "93650", "phone": "5595550101"},
    {"apn": "123-45", "address": "2 Oak Ave", "city": "Fresno", "state": "CA", "zip": "93650"},
    {"first_name": "no key at all"},
]


def _psql(script: str, **variables) -> subprocess.CompletedProcess:
    info = conninfo(admin=True)
    command = [shutil.which("psql") or "psql", "-X", "-q", "-d", info["dbname"], "-U", info["user"]]
    if info["host"]:
        command += ["-h", info["host"]]
    if info["port"]:
        command += ["-p", str(info["port"])]
    for name, value in variables.items():
        command += ["-v", f"{name}={value}"]
    env = {"PGPASSWORD": info["password"] or "", "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, input=script, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("options", [[], ["--lead-events"], ["--shared"]])
def test_the_printed_statements_run_in_psql_and_apply_the_upload(settings, tmp_path, options):
    settings.MEDIA_ROOT = tmp_path
    upload = accept(csv_of(ROWS))
    staging.stage_file(upload_id=str(upload.id), path=upload.file.path, broker_id=None, size_bytes=upload.size_bytes)
    out = io.StringIO()
    call_command("ingest_sql", *options, stdout=out)

    result = _psql(out.getvalue(), upload=str(upload.id), source="by-psql", lines="NULL")

    assert result.returncode == 0, result.stderr
    with service_context():
        leads = Lead.objects.filter(source="by-psql")
        assert set(leads.values_list("mak", "apn")) == {("M1", None), (None, "123-45")}
        assert leads.get(mak="M1").phone == "+15595550101"  # the second row merged into the first
        assert upload.dlq_rows.count() == 1  # the row without a key went to the DLQ
