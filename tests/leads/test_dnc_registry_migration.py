"""Migration 0017: the DNC registry's text `phone_bidx` becomes the 16-byte `phone_key` (uuid) with its version on
the newest import, and back again."""

from __future__ import annotations

import psycopg
import pytest

from tests.equity_connect.test_migrations import manage, scratch_database  # noqa: F401 (a fixture)
from tests.pg import conninfo

HEX = ("0123456789abcdef" * 2, "fedcba9876543210" * 2)


@pytest.mark.slow
def test_the_registry_keeps_its_numbers_and_keys_both_ways(scratch_database):  # noqa: F811
    manage(scratch_database, "migrate", "--noinput")
    manage(scratch_database, "migrate", "leads", "0016", "--noinput")  # 0017's reverse on an empty registry
    owner = {**conninfo(admin=True), "dbname": scratch_database}
    with psycopg.connect(**owner, autocommit=True) as db:
        db.execute(
            "INSERT INTO dnc_registry_numbers (number, phone_bidx) VALUES (5185550142, %s), (5185550100, %s)",
            [f"7:{HEX[0]}", f"7:{HEX[1]}"],
        )
        for filename, age in (("a.txt", "1 day"), ("b.txt", "0 days")):
            db.execute(
                "INSERT INTO dnc_registry_imports (filename, imported_at, replace, numbers_in_file, numbers_deleted,"
                " numbers_total, leads_marked, duration_ms) VALUES (%s, now() - %s::interval, true, 2, 0, 2, 0, 1)",
                [filename, age],
            )

    manage(scratch_database, "migrate", "leads", "0017", "--noinput")
    with psycopg.connect(**owner, autocommit=True) as db:
        rows = db.execute("SELECT number, phone_key::text FROM dnc_registry_numbers ORDER BY number").fetchall()
        versions = db.execute("SELECT filename, blind_index_version FROM dnc_registry_imports ORDER BY 1").fetchall()
        (primary_key,) = db.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'dnc_registry_numbers'::regclass"
        ).fetchone()
        (indexes,) = db.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'dnc_registry_numbers'").fetchone()
        (matched,) = db.execute("SELECT count(*) FROM dnc_registry_numbers WHERE phone_key = dnc_phone_key(%s)",
                                [f"7:{HEX[1]}"]).fetchone()  # fmt: skip
    assert [(number, key.replace("-", "")) for number, key in rows] == [(5185550100, HEX[1]), (5185550142, HEX[0])]
    assert versions == [("a.txt", ""), ("b.txt", "7")]  # the newest import carries the registry's version
    assert primary_key == "PRIMARY KEY (phone_key)" and indexes == 1 and matched == 1

    manage(scratch_database, "migrate", "leads", "0016", "--noinput")
    with psycopg.connect(**owner, autocommit=True) as db:
        rows = db.execute("SELECT number, phone_bidx FROM dnc_registry_numbers ORDER BY number").fetchall()
    assert rows == [(5185550100, f"7:{HEX[1]}"), (5185550142, f"7:{HEX[0]}")]
