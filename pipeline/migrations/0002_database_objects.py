"""Row-level security for the pipeline and security tables, `pipeline_writer`'s grants, and the seed's
`cleanup_old_replay_guards()`.

Every domain table has RLS on, so a connection without a database context (equity_connect/db.py) sees
no rows anywhere. `service_role` (staff, jobs) sees all; brokers see their own events and DLQ rows;
`pipeline_writer` has the limited write access the seed describes: it stages rows, upserts leads,
appends events and DLQ rows, and reads the verification-code map — no deletes outside staging, no
brokers, no consent, no keys.
"""

from django.db import migrations

SERVICE_ONLY_TABLES = (
    "uploads",
    "ingest_replay_guard",
    "partners",
    "partner_keys",
    "feeder_runs",
    "webhook_deliveries",
    "alerts",
    "job_heartbeats",
    "pipeline_dlq",
    "pipeline_events",
)

ENABLE = "\n".join(
    f"""ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY {table}_service_all ON {table} FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT ALL ON {table} TO service_role;"""
    for table in SERVICE_ONLY_TABLES
)

DISABLE = "\n".join(
    f"""DROP POLICY IF EXISTS {table}_service_all ON {table};
ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON {table} FROM anon, authenticated, service_role, pipeline_writer;"""
    for table in SERVICE_ONLY_TABLES
)

POLICIES = """
-- Brokers read (and, through the portal's services, append) events about their own leads.
CREATE POLICY pipeline_events_broker_select ON pipeline_events FOR SELECT TO authenticated
  USING (broker_id = (SELECT auth.uid()));
CREATE POLICY pipeline_events_broker_insert ON pipeline_events FOR INSERT TO authenticated
  WITH CHECK (broker_id = (SELECT auth.uid()));
GRANT SELECT, INSERT ON pipeline_events TO authenticated;

-- Brokers may see dead-letter rows that concern them; they never change them.
CREATE POLICY pipeline_dlq_broker_select ON pipeline_dlq FOR SELECT TO authenticated
  USING (broker_id = (SELECT auth.uid()));
GRANT SELECT ON pipeline_dlq TO authenticated;

-- leads_staging is the ingestion's scratch table. PostgreSQL refuses `COPY FROM` into a table with row-level
-- security, and COPY is the hot path, so it has no RLS; instead only service_role and
-- pipeline_writer hold any privilege on it (the application's login role has none: equity_connect/grants.py),
-- so a connection without a database context still cannot read a staged row.
GRANT ALL ON leads_staging TO service_role;

-- pipeline_writer: the ingestion's own rights, nothing more.
GRANT SELECT, INSERT, UPDATE, DELETE ON leads_staging TO pipeline_writer;
CREATE POLICY ingest_replay_guard_pipeline_select ON ingest_replay_guard FOR SELECT TO pipeline_writer USING (true);
CREATE POLICY ingest_replay_guard_pipeline_insert ON ingest_replay_guard FOR INSERT TO pipeline_writer
  WITH CHECK (true);
GRANT SELECT, INSERT ON ingest_replay_guard TO pipeline_writer;
CREATE POLICY pipeline_events_pipeline_insert ON pipeline_events FOR INSERT TO pipeline_writer WITH CHECK (true);
GRANT INSERT ON pipeline_events TO pipeline_writer;
CREATE POLICY pipeline_dlq_pipeline_select ON pipeline_dlq FOR SELECT TO pipeline_writer USING (true);
CREATE POLICY pipeline_dlq_pipeline_insert ON pipeline_dlq FOR INSERT TO pipeline_writer WITH CHECK (true);
GRANT SELECT, INSERT ON pipeline_dlq TO pipeline_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO pipeline_writer;

CREATE OR REPLACE FUNCTION cleanup_old_replay_guards() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  removed integer;
BEGIN
  DELETE FROM ingest_replay_guard WHERE created_at < now() - interval '7 days';
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION cleanup_old_replay_guards() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cleanup_old_replay_guards() TO service_role;
"""

DROP_POLICIES = """
DROP FUNCTION IF EXISTS cleanup_old_replay_guards();
DROP POLICY IF EXISTS pipeline_dlq_pipeline_insert ON pipeline_dlq;
DROP POLICY IF EXISTS pipeline_dlq_pipeline_select ON pipeline_dlq;
DROP POLICY IF EXISTS pipeline_events_pipeline_insert ON pipeline_events;
DROP POLICY IF EXISTS ingest_replay_guard_pipeline_insert ON ingest_replay_guard;
DROP POLICY IF EXISTS ingest_replay_guard_pipeline_select ON ingest_replay_guard;
REVOKE ALL ON leads_staging FROM service_role, pipeline_writer;
DROP POLICY IF EXISTS pipeline_dlq_broker_select ON pipeline_dlq;
DROP POLICY IF EXISTS pipeline_events_broker_insert ON pipeline_events;
DROP POLICY IF EXISTS pipeline_events_broker_select ON pipeline_events;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM pipeline_writer;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0001_initial"),
        ("leads", "0002_database_objects"),
        ("security", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(ENABLE, reverse_sql=DISABLE),
        migrations.RunSQL(POLICIES, reverse_sql=DROP_POLICIES),
    ]
