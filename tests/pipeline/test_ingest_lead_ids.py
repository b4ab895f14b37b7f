"""The ids of the leads an upload creates are time-ordered (`ec_uuid_time_ordered()`, leads migration 0025): the
first 48 bits are the time in milliseconds, so a later upload's leads sort after an earlier one's and the primary
key grows at its right edge; the other 74 bits are random, so ids stay unique when sessions make them at once."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from equity_connect.db import service_context
from leads.models import Lead
from tests.pg import connect
from tests.pipeline.ingest_helpers import csv_of, ingest

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS, PER_SESSION = 8, 2_000


def _millis(value: uuid.UUID) -> int:
    return value.int >> 80


def _made_in_one_session(_: int) -> list[tuple[int, int, uuid.UUID]]:
    """(ms before, ms after, id) for each id one session makes, one statement at a time."""
    made = []
    with connect() as conn:
        for _ in range(PER_SESSION // 100):
            before = time.time_ns() // 1_000_000
            ids = [row[0] for row in conn.execute("SELECT ec_uuid_time_ordered() FROM generate_series(1, 100)")]
            after = time.time_ns() // 1_000_000
            made += [(before, after, value) for value in ids]
    return made


def test_ids_made_by_concurrent_sessions_are_unique_version_7_and_carry_the_time():
    with ThreadPoolExecutor(SESSIONS) as pool:
        sessions = list(pool.map(_made_in_one_session, range(SESSIONS)))

    ids = [value for made in sessions for _, _, value in made]
    assert len(ids) == SESSIONS * PER_SESSION
    assert len(set(ids)) == len(ids)  # unique across sessions
    assert {value.version for value in ids} == {7}
    assert {value.variant for value in ids} == {uuid.RFC_4122}
    for made in sessions:
        for before, after, value in made:
            assert before - 5 <= _millis(value) <= after + 5  # the database's clock is this machine's
        # In each session, ids from later statements sort after earlier ones (ms resolution: a tie within one
        # millisecond is ordered at random, so compare the time prefix).
        prefixes = [_millis(value) for _, _, value in made]
        assert prefixes == sorted(prefixes)


def _rows(start: int) -> list[dict]:
    return [
        {"mak": f"ID{k:05d}", "address": f"{k} Order St", "city": "Fresno", "state": "CA", "zip": "93650"}
        for k in range(start, start + 200)
    ]


def test_a_later_upload_creates_leads_whose_ids_sort_after_an_earlier_uploads(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    first = ingest(csv_of(_rows(0)))
    time.sleep(0.01)
    second = ingest(csv_of(_rows(1_000)))

    with service_context():
        first_ids = list(Lead.objects.filter(source_upload_id=first.id).values_list("id", "created_at"))
        second_ids = list(Lead.objects.filter(source_upload_id=second.id).values_list("id", "created_at"))
    assert len(first_ids) == len(second_ids) == 200
    assert max(value for value, _ in first_ids) < min(value for value, _ in second_ids)
    for value, created_at in first_ids + second_ids:
        assert value.version == 7
        made = dt.datetime.fromtimestamp(_millis(value) / 1000, tz=dt.UTC)
        assert abs((made - created_at).total_seconds()) < 60  # made in the upload's transaction
