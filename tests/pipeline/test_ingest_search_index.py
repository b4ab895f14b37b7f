"""The portal search index takes an upload's new entries in one merge: the ingestion lets them wait in the GIN
index's pending list for its own transaction and merges the list before the upload is `done`
(`leads_search_index_flush()`, leads/migrations/0017_ingest_speed.py)."""

from __future__ import annotations

import pytest
from django.db import connection

from equity_connect.db import pipeline_writer_context, service_context
from pipeline.models import UploadStatus
from tests.pipeline.ingest_helpers import assert_invariant, csv_of, ingest

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    {
        "apn": f"APN-{n}",
        "first_name": f"Quill{n}",
        "last_name": "Ferrante",
        "address": f"{n} Juniper Way",
        "city": "Fresno",
        "state": "CA",
        "zip": "93650",
    }
    for n in range(200)
]


def _flush() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT leads_search_index_flush()")
        return cursor.fetchone()[0]


def _found() -> int:
    """Leads the portal's search text matches for `quill1`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM leads WHERE (coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' '"
            " || coalesce(property_address, '') || ' ' || coalesce(property_city, '') || ' ' || coalesce(apn, ''))"
            " ILIKE '%quill1%'"
        )
        return cursor.fetchone()[0]


def test_an_uploads_search_entries_are_merged_into_the_index_before_it_is_done():
    upload = ingest(csv_of(ROWS))
    assert upload.status == UploadStatus.DONE and upload.leads_created == 200
    assert_invariant(upload)
    with service_context():
        assert _flush() == 0  # nothing left in the pending list: the upload merged it
        assert _found() == 111  # Quill1, Quill10-19, Quill100-199: found (and the index is whole)


def test_only_the_ingestion_roles_may_merge_the_list():
    with pipeline_writer_context():
        assert _flush() >= 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_function_privilege(r, 'leads_search_index_flush()', 'EXECUTE') FROM unnest("
            "ARRAY['anon', 'authenticated', 'pipeline_writer', 'service_role']) r"
        )
        assert [granted for (granted,) in cursor.fetchall()] == [False, False, True, True]
