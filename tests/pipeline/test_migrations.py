"""pipeline/migrations/0009 on a database with history: each partner key's allowed brokers start with the
brokers its uploads went to in the last 90 days, the replay guard keeps its rows under a surrogate key and
becomes unique per (partner, content) with NULLS NOT DISTINCT, and going back keeps one row per hash."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.equity_connect.test_migrations import manage, scratch_database  # noqa: F401 (a fixture)
from tests.pg import conninfo

UPLOAD_COLUMNS = (
    "id, partner_id, partner_key_id, broker_id, source, filename, file, size_bytes, content_sha256, encoding,"
    " status, rows_total, leads_created, leads_merged, duplicates_in_file, rows_rejected, progress, attempts,"
    " error_message, columns, blank_lines, possible_duplicates, unrecognised_columns, created_at"
)


def _connect(database: str) -> psycopg.Connection:
    return psycopg.connect(**{**conninfo(admin=True), "dbname": database}, autocommit=True)


def _broker(conn, name: str) -> uuid.UUID:
    broker_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO brokers (id, name, email, phone, company, nmls_id, territory_states, territory_zip_prefixes)"
        " VALUES (%s, %s, %s, '', '', '', '{}', '{}')",
        [broker_id, name, f"{name}@example.com"],
    )
    return broker_id


def _partner_key(conn, name: str, default_broker=None) -> tuple[uuid.UUID, int]:
    partner_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO partners (id, name, active, contact_email) VALUES (%s, %s, true, '')", [partner_id, name]
    )
    key_id = conn.execute(
        "INSERT INTO partner_keys (key_id, secret_ciphertext, label, status, partner_id, default_broker_id)"
        " VALUES (%s, 'x', '', 'active', %s, %s) RETURNING id",
        [f"pk_{name}", partner_id, default_broker],
    ).fetchone()[0]
    return partner_id, key_id


def _upload(conn, *, partner=None, key=None, broker=None, days_ago: int = 1) -> None:
    conn.execute(
        f"INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (%s, %s, %s, %s, '', 'f.csv', '', 1, %s, '', 'done',"
        " 0, 0, 0, 0, 0, 1, 1, '', '{}', 0, 0, '{}', now() - make_interval(days => %s))",
        [uuid.uuid4(), partner, key, broker, uuid.uuid4().hex * 2, days_ago],
    )


def _guard(conn, sha: str, partner=None, days_ago: int = 0) -> None:
    conn.execute(
        "INSERT INTO ingest_replay_guard (content_sha256, partner_id, created_at)"
        " VALUES (%s, %s, now() - make_interval(days => %s))",
        [sha, partner, days_ago],
    )


@pytest.mark.slow
def test_0009_seeds_allowed_brokers_and_keys_the_replay_guard_per_partner(scratch_database):  # noqa: F811
    db = scratch_database
    manage(db, "migrate", "--noinput")  # everything, then back to before 0009 (and security 0003)
    manage(db, "migrate", "pipeline", "0008", "--noinput")
    manage(db, "migrate", "security", "0002", "--noinput")
    with _connect(db) as conn:
        assert conn.execute("SELECT to_regclass('partner_key_allowed_brokers')").fetchone() == (None,)
        default, routed, long_ago, staff_choice = (_broker(conn, n) for n in ("dee", "rho", "old", "sta"))
        partner, key = _partner_key(conn, "acme", default_broker=default)
        other_partner, other_key = _partner_key(conn, "other")
        _upload(conn, partner=partner, key=key, broker=routed, days_ago=10)
        _upload(conn, partner=partner, key=key, broker=routed, days_ago=20)
        _upload(conn, partner=partner, key=key, broker=default, days_ago=5)
        _upload(conn, partner=partner, key=key, broker=long_ago, days_ago=100)  # too long ago to count
        _upload(conn, partner=other_partner, key=other_key, broker=None)  # territory rules, no broker
        _upload(conn, broker=staff_choice)  # a staff upload: no key
        _guard(conn, "a" * 64, partner)
        _guard(conn, "b" * 64, None)

    manage(db, "migrate", "--noinput")
    with _connect(db) as conn:
        allowed = set(conn.execute("SELECT partnerkey_id, broker_id FROM partner_key_allowed_brokers").fetchall())
        assert allowed == {(key, routed), (key, default)}
        assert conn.execute(
            "SELECT relrowsecurity FROM pg_class WHERE relname = 'partner_key_allowed_brokers'"
        ).fetchone() == (True,)
        guards = conn.execute("SELECT id, content_sha256, partner_id FROM ingest_replay_guard ORDER BY id").fetchall()
        assert [(sha, owner) for _, sha, owner in guards] == [("a" * 64, partner), ("b" * 64, None)]
        assert all(isinstance(guard_id, int) for guard_id, _, _ in guards)
        _guard(conn, "a" * 64, other_partner)  # the same content from another partner: its own guard
        for sha, owner in (("a" * 64, partner), ("b" * 64, None)):  # the same sender twice: refused
            with pytest.raises(psycopg.errors.UniqueViolation):
                _guard(conn, sha, owner)
        _guard(conn, "a" * 64, None, days_ago=1)

    manage(db, "migrate", "pipeline", "0008", "--noinput")
    with _connect(db) as conn:
        rows = conn.execute("SELECT content_sha256, partner_id FROM ingest_replay_guard ORDER BY 1").fetchall()
        assert rows == [("a" * 64, other_partner), ("b" * 64, None)]  # the newest of each hash
        assert conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ingest_replay_guard_pkey'"
        ).fetchone() == ("PRIMARY KEY (content_sha256)",)
    manage(db, "migrate", "--noinput")


@pytest.mark.slow
def test_0019_seeds_the_holiday_calendar_and_leads_0020_keeps_active_brokers_in_the_view(scratch_database):  # noqa: F811
    from pipeline.campaigns.calendar import us_federal_holidays

    db = scratch_database
    manage(db, "migrate", "--noinput")
    with _connect(db) as conn:
        rows = conn.execute("SELECT day, name FROM business_holidays ORDER BY day").fetchall()
        assert rows == [row for year in range(2020, 2041) for row in us_federal_holidays(year)]
        assert conn.execute("SELECT relrowsecurity FROM pg_class WHERE relname = 'business_holidays'").fetchone() == (
            True,
        )
        view = conn.execute("SELECT definition FROM pg_matviews WHERE matviewname = 'mv_contactable_leads'").fetchone()
        assert "b.active" in view[0]
    manage(db, "migrate", "pipeline", "0018", "--noinput")
    manage(db, "migrate", "leads", "0019", "--noinput")
    with _connect(db) as conn:
        assert conn.execute("SELECT to_regclass('business_holidays')").fetchone() == (None,)
        view = conn.execute("SELECT definition FROM pg_matviews WHERE matviewname = 'mv_contactable_leads'").fetchone()
        assert "active" not in view[0]
        indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'mv_contactable_leads'").fetchone()
        assert indexes == (2,)
    manage(db, "migrate", "--noinput")


EVENT_COLUMNS = (
    "id, event_type, lead_id, broker_id, upload_id, event_data, duration_ms, status, error_message, created_at"
)


def _events(conn) -> list[tuple]:
    return conn.execute(f"SELECT {EVENT_COLUMNS} FROM pipeline_events ORDER BY id").fetchall()


@pytest.mark.slow
def test_0022_partitions_the_events_by_month_keeping_every_row_both_ways(scratch_database):  # noqa: F811
    db = scratch_database
    manage(db, "migrate", "--noinput")
    manage(db, "migrate", "pipeline", "0021", "--noinput")
    with _connect(db) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'pipeline_events'").fetchone() == ("r",)
        conn.execute(
            "INSERT INTO pipeline_events (event_type, lead_id, broker_id, event_data, status, error_message,"
            " created_at) SELECT 'lead_created', gen_random_uuid(), gen_random_uuid(), jsonb_build_object('n', g),"
            " 'success', CASE WHEN g % 3 = 0 THEN 'oops' END, now() - g * interval '9 days'"
            " FROM generate_series(1, 60) AS g"
        )
        conn.execute(
            "INSERT INTO pipeline_events (event_type, created_at) VALUES ('job_run', now() + interval '2 years')"
        )
        before = _events(conn)

    manage(db, "migrate", "--noinput")

    with _connect(db) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'pipeline_events'").fetchone() == ("p",)
        assert _events(conn) == before
        placed = dict(
            conn.execute("SELECT tableoid::regclass::text, count(*) FROM pipeline_events GROUP BY 1").fetchall()
        )
        assert placed.pop("pipeline_events_default") == 1  # two years ahead: no month for it yet
        assert all(name.startswith("pipeline_events_20") for name in placed) and sum(placed.values()) == 60
        assert len(placed) >= 17  # 60 events 9 days apart: every month from the oldest has its partition
        (next_id,) = conn.execute(
            "INSERT INTO pipeline_events (event_type) VALUES ('job_run') RETURNING id"
        ).fetchone()
        assert next_id > max(row[0] for row in before)
        after = _events(conn)

    manage(db, "migrate", "pipeline", "0021", "--noinput")

    with _connect(db) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'pipeline_events'").fetchone() == ("r",)
        assert _events(conn) == after
        assert conn.execute(
            "SELECT count(*) FROM pg_policy WHERE polrelid = 'pipeline_events'::regclass"
        ).fetchone() == (4,)


def _changers(conn) -> set[tuple[str, str, str]]:
    """(relation, grantee, privilege) for every UPDATE, DELETE or TRUNCATE on the trail held by a non-owner."""
    return set(
        conn.execute(
            "SELECT c.relname::text, a.grantee::regrole::text, a.privilege_type"
            "  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a"
            " WHERE (c.oid = 'pipeline_events'::regclass"
            "        OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'pipeline_events'::regclass))"
            "   AND a.grantee <> c.relowner AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')"
        ).fetchall()
    )


@pytest.mark.slow
def test_0026_makes_the_event_trail_append_only_and_back(scratch_database):  # noqa: F811
    db = scratch_database
    manage(db, "migrate", "--noinput")
    with _connect(db) as conn:
        assert _changers(conn) == set()
        assert conn.execute("SELECT to_regprocedure('pipeline_events_reseal(bigint[], jsonb[], jsonb[])')").fetchone()[
            0
        ]

    manage(db, "migrate", "pipeline", "0025", "--noinput")

    with _connect(db) as conn:
        held = _changers(conn)
        assert {("pipeline_events", "service_role", p) for p in ("UPDATE", "DELETE", "TRUNCATE")} <= held
        assert {relation for relation, _, _ in held} > {"pipeline_events", "pipeline_events_default"}
        assert conn.execute(
            "SELECT to_regprocedure('pipeline_events_reseal(bigint[], jsonb[], jsonb[])')"
        ).fetchone() == (None,)
        assert conn.execute("SELECT to_regprocedure('pipeline_events_append_only(regclass)')").fetchone() == (None,)

    manage(db, "migrate", "--noinput")

    with _connect(db) as conn:
        assert _changers(conn) == set()


@pytest.mark.slow
def test_leads_0026_moves_the_search_to_lead_search_and_back(scratch_database):  # noqa: F811
    db = scratch_database
    manage(db, "migrate", "--noinput")
    manage(db, "migrate", "leads", "0025", "--noinput")
    with _connect(db) as conn:
        assert conn.execute("SELECT to_regclass('leads_portal_search_trgm_idx') IS NOT NULL").fetchone() == (True,)
        conn.execute(
            "INSERT INTO leads (first_name, last_name, property_address, apn) VALUES ('Ada', 'Byron', '1 Way', '9-9')"
        )
    manage(db, "migrate", "leads", "--noinput")  # forward: every existing lead in the first built partition
    with _connect(db) as conn:
        assert conn.execute("SELECT to_regclass('leads_portal_search_trgm_idx')").fetchone() == (None,)
        rows = conn.execute("SELECT tableoid::regclass::text, document FROM lead_search").fetchall()
        assert rows == [("lead_search_p1", "Ada Byron 1 Way  9-9")]
    manage(db, "migrate", "leads", "0025", "--noinput")
    with _connect(db) as conn:
        assert conn.execute("SELECT to_regclass('lead_search')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('leads_portal_search_trgm_idx') IS NOT NULL").fetchone() == (True,)
        assert conn.execute("SELECT count(*) FROM portal_lead_search('{}'::jsonb)").fetchone() == (0,)
    manage(db, "migrate", "--noinput")
