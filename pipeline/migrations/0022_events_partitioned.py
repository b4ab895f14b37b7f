"""`pipeline_events` becomes a table partitioned by month on `created_at` (native RANGE partitioning), so that
retention drops a whole month at once instead of growing the table forever, and the dashboard's and the
timeline's queries read only the months they ask for.

- Partitions are `pipeline_events_YYYY_MM`, one per calendar month in UTC (`FROM` the month's first instant,
  `TO` the next month's). `pipeline_events_default` (the DEFAULT partition) takes any row no monthly partition
  covers, so an insert never fails for want of a partition.
- The primary key becomes (id, created_at): PostgreSQL requires a partitioned table's unique constraints to
  include the partition key. `id` still comes from one identity sequence, so it stays unique on its own;
  nothing references an event id (no foreign key, no `ON CONFLICT` on it), and Django keeps `id` as the
  model's primary key in its state (equity_connect/models.py), which is only what it looks rows up by.
- The same five indexes, under the same names, now partitioned indexes (each partition carries its own), and a
  sixth, `pipeline_events_outcome_idx`, for the dashboard's funnel (benchmarked: docs/benchmarks.md).
- RLS, policies and grants move to the new parent as they were (pipeline 0002 and 0010). Policies of a
  partitioned table apply to every query through it; partitions get RLS switched on with no policy at all, so
  a role reading a partition directly (the login role holds plain privileges on every table) sees no row.
- Existing rows are copied over (one partition per month from the oldest row's month), then the old table is
  dropped; the identity sequence continues from the old one's value.

Functions (SECURITY DEFINER: creating, attaching and dropping partitions needs the table's owner):
- `pipeline_events_partitions_ensure(months ahead)`: the current month's partition and the next ones, each
  created standalone and attached (a brief SHARE UPDATE EXCLUSIVE lock on the parent, not the ACCESS EXCLUSIVE
  of `CREATE TABLE … PARTITION OF`); rows the DEFAULT partition holds for that month are moved into it first.
  Granted to `service_role` (the daily `event_partitions` job, pipeline/partitions.py).
- `pipeline_events_drop_partitions(keep days)`: drops every monthly partition whose whole month is older than
  that many days, and deletes the DEFAULT partition's rows that old. No archive: a dropped month is gone.
  Granted to `privacy_officer` only, like the other retention functions (pipeline 0015); called by the daily
  retention job (pipeline/retention.py) with EVENT_RETENTION_DAYS.
Both wait at most a few seconds for their locks (a long report must not make every insert queue behind them);
a partition that could not be locked is left for the next day's run.
"""

from django.db import migrations

INDEXES = """
CREATE INDEX pipeline_events_type_idx ON pipeline_events (event_type, created_at);
CREATE INDEX pipeline_events_lead_idx ON pipeline_events (lead_id, created_at) WHERE lead_id IS NOT NULL;
CREATE INDEX pipeline_events_broker_idx ON pipeline_events (broker_id, created_at) WHERE broker_id IS NOT NULL;
CREATE INDEX pipeline_events_upload_idx ON pipeline_events (upload_id) WHERE upload_id IS NOT NULL;
CREATE INDEX pipeline_events_created_idx ON pipeline_events (created_at);
-- The funnel's "fed, then replied / booked" (pipeline/monitoring/dashboard.py) reads every month: this partial index
-- of the three campaign-outcome types answers it from the index alone (its state: equity_connect 0003).
CREATE INDEX pipeline_events_outcome_idx ON pipeline_events (event_type, lead_id) INCLUDE (broker_id, created_at)
  WHERE event_type IN ('campaign_added', 'email_replied', 'appointment_booked') AND lead_id IS NOT NULL;
"""

# The policies as pipeline 0002 created them and pipeline 0010 changed them.
POLICIES = """
ALTER TABLE pipeline_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY pipeline_events_service_all ON pipeline_events FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY pipeline_events_broker_select ON pipeline_events FOR SELECT TO authenticated
  USING (broker_id = (SELECT auth.uid()));
CREATE POLICY pipeline_events_broker_insert ON pipeline_events FOR INSERT TO authenticated
  WITH CHECK (
    broker_id = (SELECT auth.uid())
    AND (lead_id IS NULL OR EXISTS (
      SELECT 1 FROM leads l WHERE l.id = pipeline_events.lead_id AND l.assigned_broker_id = (SELECT auth.uid())
    ))
  );
CREATE POLICY pipeline_events_pipeline_insert ON pipeline_events FOR INSERT TO pipeline_writer
  WITH CHECK (
    lead_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM leads l
       WHERE l.id = pipeline_events.lead_id AND l.assigned_broker_id IS NOT NULL
         AND l.assigned_broker_id IS DISTINCT FROM pipeline_events.broker_id
    )
  );
GRANT ALL ON pipeline_events TO service_role;
GRANT SELECT, INSERT ON pipeline_events TO authenticated;
GRANT INSERT ON pipeline_events TO pipeline_writer;
GRANT USAGE, SELECT ON SEQUENCE pipeline_events_id_seq TO service_role, pipeline_writer, authenticated;
"""

FUNCTIONS = """
CREATE OR REPLACE FUNCTION pipeline_events_partition_create(p_month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
  v_from timestamptz := date_trunc('month', p_month::timestamp) AT TIME ZONE 'UTC';
  v_to timestamptz := (date_trunc('month', p_month::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
  v_name text := 'pipeline_events_' || to_char(p_month, 'YYYY_MM');
BEGIN
  IF to_regclass(v_name) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE pipeline_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
  -- No policy on a partition: reading it directly shows nothing; queries through the parent use the parent's.
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', v_name);
  IF to_regclass('pipeline_events_default') IS NOT NULL THEN
    -- Rows the DEFAULT partition took for this month move into the new partition (the attach would fail
    -- otherwise); the lock keeps new ones from arriving in between.
    LOCK TABLE pipeline_events_default IN SHARE ROW EXCLUSIVE MODE;
    EXECUTE format(
      'WITH moved AS (DELETE FROM pipeline_events_default WHERE created_at >= $1 AND created_at < $2 RETURNING *)'
      ' INSERT INTO %I SELECT * FROM moved', v_name) USING v_from, v_to;
  END IF;
  EXECUTE format('ALTER TABLE pipeline_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                 v_name, v_from, v_to);
  RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION pipeline_events_partitions_ensure(p_months_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  created integer := 0;
  v_month date;
BEGIN
  FOR v_month IN
    SELECT generate_series(date_trunc('month', now() AT TIME ZONE 'UTC'),
                           date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => greatest(p_months_ahead, 0)),
                           interval '1 month')::date
  LOOP
    IF pipeline_events_partition_create(v_month) THEN
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END
$$;

-- (partitions dropped, events deleted): whole months older than p_keep_days, and the DEFAULT partition's rows
-- that old.
CREATE OR REPLACE FUNCTION pipeline_events_drop_partitions(p_keep_days integer,
                                                           OUT partitions_dropped integer, OUT events_deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s' SET timezone = 'UTC' AS $$
DECLARE
  v_cutoff timestamptz;
  v_partition record;
  v_rows bigint;
BEGIN
  IF p_keep_days IS NULL OR p_keep_days < 1 THEN
    RAISE EXCEPTION 'pipeline_events_drop_partitions: keep at least 1 day (got %)', p_keep_days
      USING ERRCODE = '22023';
  END IF;
  v_cutoff := now() - make_interval(days => p_keep_days);
  partitions_dropped := 0;
  events_deleted := 0;
  FOR v_partition IN
    SELECT c.oid::regclass AS name,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper_bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'pipeline_events'::regclass
       AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
     ORDER BY 2
  LOOP
    EXIT WHEN v_partition.upper_bound > v_cutoff;
    BEGIN
      LOCK TABLE pipeline_events IN ACCESS EXCLUSIVE MODE;
      EXECUTE format('SELECT count(*) FROM %s', v_partition.name) INTO v_rows;
      EXECUTE format('DROP TABLE %s', v_partition.name);
      partitions_dropped := partitions_dropped + 1;
      events_deleted := events_deleted + v_rows;
    EXCEPTION WHEN lock_not_available THEN
      RAISE NOTICE 'pipeline_events_drop_partitions: % is busy; left for the next run', v_partition.name;
      EXIT;
    END;
  END LOOP;
  IF to_regclass('pipeline_events_default') IS NOT NULL THEN
    DELETE FROM pipeline_events_default WHERE created_at < v_cutoff;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    events_deleted := events_deleted + v_rows;
  END IF;
END
$$;

REVOKE ALL ON FUNCTION pipeline_events_partition_create(date), pipeline_events_partitions_ensure(integer),
  pipeline_events_drop_partitions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pipeline_events_partitions_ensure(integer) TO service_role;
GRANT EXECUTE ON FUNCTION pipeline_events_drop_partitions(integer) TO privacy_officer;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS pipeline_events_drop_partitions(integer);
DROP FUNCTION IF EXISTS pipeline_events_partitions_ensure(integer);
DROP FUNCTION IF EXISTS pipeline_events_partition_create(date);
"""

# The old table steps aside (with its sequence and index names), the partitioned one takes its name, the rows
# are copied month by month into their partitions, and the old table goes.
PARTITION = f"""
ALTER TABLE pipeline_events RENAME TO pipeline_events_unpartitioned;
ALTER SEQUENCE pipeline_events_id_seq RENAME TO pipeline_events_unpartitioned_id_seq;
ALTER INDEX pipeline_events_pkey RENAME TO pipeline_events_unpartitioned_pkey;
ALTER INDEX pipeline_events_type_idx RENAME TO pipeline_events_unpartitioned_type_idx;
ALTER INDEX pipeline_events_lead_idx RENAME TO pipeline_events_unpartitioned_lead_idx;
ALTER INDEX pipeline_events_broker_idx RENAME TO pipeline_events_unpartitioned_broker_idx;
ALTER INDEX pipeline_events_upload_idx RENAME TO pipeline_events_unpartitioned_upload_idx;
ALTER INDEX pipeline_events_created_idx RENAME TO pipeline_events_unpartitioned_created_idx;
-- Present when this runs again after its own reverse (which builds the funnel's index on the plain table too).
ALTER INDEX IF EXISTS pipeline_events_outcome_idx RENAME TO pipeline_events_unpartitioned_outcome_idx;

CREATE TABLE pipeline_events (
  id bigint GENERATED BY DEFAULT AS IDENTITY,
  event_type varchar(64) NOT NULL,
  lead_id uuid,
  broker_id uuid,
  upload_id uuid,
  event_data jsonb NOT NULL DEFAULT '{{}}'::jsonb,
  duration_ms integer,
  status varchar(16) NOT NULL DEFAULT 'success',
  error_message text,
  created_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  CONSTRAINT pipeline_events_pkey PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
{INDEXES}
CREATE TABLE pipeline_events_default PARTITION OF pipeline_events DEFAULT;
ALTER TABLE pipeline_events_default ENABLE ROW LEVEL SECURITY;
{POLICIES}
{FUNCTIONS}
-- One partition per month from the oldest event's month to three months ahead.
SELECT pipeline_events_partition_create(month::date)
  FROM generate_series(
         date_trunc('month', coalesce((SELECT min(created_at) FROM pipeline_events_unpartitioned), now()) AT TIME ZONE 'UTC'),
         date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
         interval '1 month') AS month;
INSERT INTO pipeline_events OVERRIDING SYSTEM VALUE
SELECT id, event_type, lead_id, broker_id, upload_id, event_data, duration_ms, status, error_message, created_at
  FROM pipeline_events_unpartitioned;
SELECT setval('pipeline_events_id_seq',
              greatest((SELECT max(id) FROM pipeline_events_unpartitioned),
                       (SELECT last_value FROM pipeline_events_unpartitioned_id_seq), 1));
DROP TABLE pipeline_events_unpartitioned;
ANALYZE pipeline_events;
"""

# Back to one plain table with the same rows, indexes, policies and grants as pipeline 0017 left it.
UNPARTITION = f"""
{DROP_FUNCTIONS}
ALTER TABLE pipeline_events RENAME TO pipeline_events_partitioned;
ALTER SEQUENCE pipeline_events_id_seq RENAME TO pipeline_events_partitioned_id_seq;
ALTER INDEX pipeline_events_pkey RENAME TO pipeline_events_partitioned_pkey;
ALTER INDEX pipeline_events_type_idx RENAME TO pipeline_events_partitioned_type_idx;
ALTER INDEX pipeline_events_lead_idx RENAME TO pipeline_events_partitioned_lead_idx;
ALTER INDEX pipeline_events_broker_idx RENAME TO pipeline_events_partitioned_broker_idx;
ALTER INDEX pipeline_events_upload_idx RENAME TO pipeline_events_partitioned_upload_idx;
ALTER INDEX pipeline_events_created_idx RENAME TO pipeline_events_partitioned_created_idx;
ALTER INDEX pipeline_events_outcome_idx RENAME TO pipeline_events_partitioned_outcome_idx;
CREATE TABLE pipeline_events (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  event_type varchar(64) NOT NULL,
  lead_id uuid,
  broker_id uuid,
  upload_id uuid,
  event_data jsonb NOT NULL DEFAULT '{{}}'::jsonb,
  duration_ms integer,
  status varchar(16) NOT NULL DEFAULT 'success',
  error_message text,
  created_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
INSERT INTO pipeline_events OVERRIDING SYSTEM VALUE
SELECT id, event_type, lead_id, broker_id, upload_id, event_data, duration_ms, status, error_message, created_at
  FROM pipeline_events_partitioned;
SELECT setval('pipeline_events_id_seq',
              greatest((SELECT max(id) FROM pipeline_events_partitioned),
                       (SELECT last_value FROM pipeline_events_partitioned_id_seq), 1));
DROP TABLE pipeline_events_partitioned;
{INDEXES}
{POLICIES}
"""


class Migration(migrations.Migration):
    dependencies = [
        ("equity_connect", "0002_throttle"),
        ("pipeline", "0021_alert_incidents_thresholds"),
    ]

    # One RunSQL, so the table is never half converted; the model's state is unchanged (module docstring).
    operations = [migrations.RunSQL(PARTITION, reverse_sql=UNPARTITION)]
