"""The portal search rows of ingested leads (leads migration 0026_lead_search, pipeline/ingest/sql/search.py):
a large upload's new leads are found by name, street, APN or any substring once the upload is done (their rows
in a partition of their own); a new owner's names replace the old ones; another broker never finds them, neither
through `portal_lead_search()` nor by reading `lead_search` under RLS; the nightly fold keeps every lead findable;
a row fixed in the DLQ is findable."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from equity_connect.db import broker_context, service_context
from leads import selectors
from leads.models import Lead
from pipeline.ingest.services import dlq_row_reprocess
from pipeline.lead_search import lead_search_partitions_fold
from pipeline.models import PipelineDLQ
from tests.factories import BrokerFactory
from tests.pipeline.ingest_helpers import csv_of, ingest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.INGEST_SEARCH_PARTITION_MIN_LEADS = 2  # these small files take the partition path


def row(mak: str, first: str = "Ruth", last: str = "Baker", street: str = "Pine", apn: str = "") -> dict:
    return {"Address": f"{mak[-2:]} {street} Street", "City": "Albany", "State": "NY", "Zip": "12207", "MAK": mak,
            "APN": apn, "First Name": first, "Last Name": last}  # fmt: skip


def found(broker, term: str) -> list:
    """The ids the portal's search function returns to `broker` for `term` (as the selector asks)."""
    document = json.dumps(selectors._search_document(selectors.LeadFilters(search=term)))
    with broker_context(broker.pk), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM portal_lead_search(%s::jsonb, 'newest', NULL, 0)", [document])
        return [row[0] for row in cursor.fetchall()]


def lead(mak: str) -> Lead:
    with service_context():
        return Lead.objects.get(mak=mak)


def partitions() -> dict[str, int]:
    """{partition: rows} of lead_search (read through the table, as the service role)."""
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, (SELECT count(*) FROM lead_search s WHERE s.tableoid = c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'lead_search'::regclass ORDER BY c.oid"
        )
        return dict(cursor.fetchall())


def test_a_done_uploads_leads_are_found_by_name_street_apn_and_substring():
    broker = BrokerFactory()
    before = partitions()
    upload = ingest(
        csv_of([row("SR-11", "Quentin", "Zabriskie", "Juniper", "071-220-19"), row("SR-12", "Ada", "Byron")]),
        broker=broker,
    )
    assert upload.status == "done" and upload.leads_created == 2
    new = {name: rows for name, rows in partitions().items() if name not in before}
    assert list(new.values()) == [2]  # one new partition with both leads: the built path, not the trigger
    assert partitions()["lead_search_live"] == before["lead_search_live"]
    quentin = lead("SR-11").pk
    for term in ("Zabriskie", "quentin", "abrisk", "Juniper Street", "071-220-19", "220-1", "zabriskie juniper"):
        assert found(broker, term) == [quentin], term
    assert found(broker, "byron") == [lead("SR-12").pk]
    assert found(broker, "nobody-like-this") == []


def test_a_new_owner_replaces_what_is_found():
    broker = BrokerFactory()
    ingest(csv_of([row("NW-21", "Ruth", "Baker"), row("NW-22", "Otto", "Keller")]), broker=broker)
    ingest(csv_of([row("NW-21", "Oscar", "Diaz")]), broker=broker)  # a new owner: other names, same property
    moved = lead("NW-21")
    assert moved.owner_changed_at is not None and moved.last_name == "Diaz"
    assert found(broker, "diaz") == [moved.pk]
    assert found(broker, "oscar") == [moved.pk]
    assert found(broker, "ruth baker") == []


def test_another_broker_never_finds_them():
    mine, theirs = BrokerFactory(), BrokerFactory()
    ingest(csv_of([row("OB-31", "Wilhelmina", "Xanthe"), row("OB-32", "Ada", "Byron")]), broker=mine)
    own = lead("OB-31").pk
    assert found(mine, "xanthe") == [own]
    assert found(theirs, "xanthe") == []
    # Row-level security on the table itself: the broker's role reads its own rows only.
    for broker, expected in ((mine, 1), (theirs, 0)):
        with broker_context(broker.pk), connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM lead_search WHERE document ILIKE '%%xanthe%%'")
            assert cursor.fetchone()[0] == expected
            cursor.execute("SELECT count(*) FROM lead_search WHERE broker_id IS DISTINCT FROM %s", [broker.pk])
            assert cursor.fetchone()[0] == 0
    # A search row claiming another broker (stale or forged) still never shows the lead: the scope is leads'.
    with service_context(), connection.cursor() as cursor:
        cursor.execute("UPDATE lead_search SET broker_id = %s WHERE lead_id = %s", [theirs.pk, own])
    assert found(theirs, "xanthe") == []
    # Nor a wrong status: the status filter reads leads.
    with service_context():
        Lead.objects.filter(pk=own).update(campaign_status="paused")
    document = json.dumps(selectors._search_document(selectors.LeadFilters(search="xanthe", campaign_status=("new",))))
    with service_context(), connection.cursor() as cursor:
        cursor.execute("UPDATE lead_search SET broker_id = %s WHERE lead_id = %s", [mine.pk, own])
    with broker_context(mine.pk), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM portal_lead_search(%s::jsonb, 'newest', NULL, 0)", [document])
        assert cursor.fetchall() == []


def test_the_fold_keeps_every_lead_findable():
    broker = BrokerFactory()
    names = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]
    for number in range(3):
        first, second = names[2 * number], names[2 * number + 1]
        ingest(csv_of([row(f"FD-{number}1", first, "Fold"), row(f"FD-{number}2", second, "Fold")]), broker=broker)
    before = partitions()
    upload_parts = [name for name in before if name != "lead_search_live"]
    assert len(upload_parts) >= 3
    with service_context():
        folded = lead_search_partitions_fold(max_rows=1_000_000)
    after = partitions()
    assert folded == len(upload_parts)
    assert [name for name in after if name != "lead_search_live"] != upload_parts
    assert len(after) == 2 and sum(after.values()) == sum(before.values())
    assert len(found(broker, "fold")) == 6
    for name in names:
        assert len(found(broker, name)) == 1, name
    with service_context():
        assert lead_search_partitions_fold(max_rows=1_000_000) == 0  # one partition: nothing to fold


def test_a_row_fixed_in_the_dlq_is_findable():
    broker = BrokerFactory()
    broken = {**row("DQ-41", "Ada", "Lovelace"), "Address": "", "MAK": ""}  # no dedupe key: rejected
    upload = ingest(csv_of([row("DQ-42", "Otto", "Keller"), broken]), broker=broker)
    assert upload.rows_rejected == 1
    assert found(broker, "lovelace") == []
    with service_context():
        item = PipelineDLQ.objects.get(upload=upload)
    lead_id = dlq_row_reprocess(item, payload={**item.payload, "Address": "1815 Engine Way"})
    assert found(broker, "lovelace") == [lead_id]
    assert found(broker, "engine way") == [lead_id]
