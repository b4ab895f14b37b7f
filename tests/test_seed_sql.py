"""Every SQL block of the seed checklist runs verbatim against our schema (DESIGN: "its SQL must run verbatim").

The blocks are read from the seed document itself, so a change on either side shows here. The one placeholder
the seed leaves for the reader (`<broker-uuid>`) is filled with a real broker's id.
"""

import re
from pathlib import Path

import pytest
import sqlparse
from django.db import connection, transaction

from equity_connect.db import service_context
from tests.factories import BrokerFactory, LeadFactory

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "seed" / "PRODUCTION_IMPLEMENTATION_CHECKLIST.md"
BLOCKS = re.findall(r"```sql\n(.*?)```", SEED.read_text(), flags=re.S) if SEED.exists() else []

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not BLOCKS, reason=f"the seed checklist is not at {SEED}"),
]


def statements(block: str) -> list[str]:
    return [statement for statement in sqlparse.split(block) if bare(statement)]


def bare(statement: str) -> str:
    """The statement without its comments (to classify it; what runs is the statement as written)."""
    return sqlparse.format(statement, strip_comments=True).strip()


@pytest.fixture
def data():
    broker = BrokerFactory()
    for index in range(12):
        LeadFactory(assigned_broker=broker, contactable=index % 2 == 0, status="contacted", phone=None)
    LeadFactory(assigned_broker=None)
    return broker


def test_the_seed_has_the_blocks_we_expect():
    assert len(BLOCKS) == 9
    assert sum(len(statements(block)) for block in BLOCKS) == 15


def test_every_seed_sql_block_runs_verbatim(data):
    results = []
    for block in BLOCKS:
        for statement in statements(block):
            if bare(statement).startswith("SET "):
                continue  # the RLS block's role switch: run as a whole below
            with service_context(), connection.cursor() as cursor:
                cursor.execute(statement)
                results.append((statement, cursor.rowcount))
    ran = {bare(statement).split()[0].upper() for statement, _ in results}
    assert ran >= {"SELECT", "UPDATE"}
    phase_6_2_update = next(count for statement, count in results if "LIMIT 10" in statement)
    assert phase_6_2_update == 10


def test_the_seed_rls_block_runs_verbatim_with_a_real_broker(data):
    block = next(block for block in BLOCKS if "<broker-uuid>" in block)
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements(block.replace("<broker-uuid>", str(data.pk))):
            cursor.execute(statement)
        count = cursor.fetchone()[0]
        cursor.execute("RESET ROLE; RESET request.jwt.claims.sub")
    assert count == 12  # the broker's assigned count, not the 13 leads in the table
