"""`pipeline_events` becomes append-only for every role the application uses, in the database itself.

The admin showed the trail read-only, but `service_role` (staff and jobs) held every privilege on the table and the
login role UPDATE and DELETE (equity_connect/grants.py grants them on every table), so any code path, or anyone with
the application's credentials, could rewrite or delete the audit trail. Now:

- `pipeline_events_append_only()` (owner only, no grant) revokes UPDATE, DELETE and TRUNCATE on the parent and on
  every partition from every role but the owner (service_role, the login role, PUBLIC, whoever else holds them).
  This migration calls it; so does `pipeline_events_partition_create` (pipeline 0022) for each new month (that
  partition only: `pipeline_events_append_only(partition)`), and
  equity_connect/grants.py revokes the same after it re-grants every table after `migrate`. (A partition is
  reached directly only by a role with privileges on it: the revoke covers each one, not only the parent.)
- The only rewrites left are SECURITY DEFINER functions running as the owner: erasure and retention
  (pipeline 0015), the partition drop (pipeline 0022), and `pipeline_events_reseal(ids, old data, new data)`
  here, the key rotation's (`manage.py reencrypt`, pipeline/reencrypt.py), granted to `service_role` alone. It
  changes an event only if its detail is still `old data` (otherwise the row is skipped: changed meanwhile, a
  later pass sees it), and refuses (42501) any new detail that differs from the old in anything but the values
  of the sealed keys (`to`, `old_email`, `old_phone`, and the notes' `note`, `reason`, `reply_snippet`,
  `reply_subject`: security/fields.py `NOTE_KEYS`, pipeline/reencrypt.py `EVENT_KEYS`), each of which must be a
  sealed token before and after. Type, time, lead, broker, status and error are never touched.

Reverse: the functions go, `pipeline_events_partition_create` is 0022's again, and `service_role` gets ALL on the
parent and the partitions back (the login role's UPDATE and DELETE come back with equity_connect/grants.py only if
its revoke is removed too).
"""

import importlib

from django.db import migrations

PARTITIONED = importlib.import_module("pipeline.migrations.0022_events_partitioned")

SEALED_KEYS = "ARRAY['to', 'old_email', 'old_phone', 'note', 'reason', 'reply_snippet', 'reply_subject']"
# security/fields.py `_TOKEN`: a key id, a colon, base64url of at least a nonce and a tag.
SEALED_RE = "^[A-Za-z0-9]{1,32}:[A-Za-z0-9_=-]{38,}$"

APPEND_ONLY = """
-- Every relation of the trail, or only p_only (a new partition).
CREATE OR REPLACE FUNCTION pipeline_events_append_only(p_only regclass DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  v_grant record;
  revoked integer := 0;
BEGIN
  FOR v_grant IN
    SELECT DISTINCT c.oid::regclass AS relation,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
      FROM pg_class c
      CROSS JOIN LATERAL aclexplode(c.relacl) a
      LEFT JOIN pg_roles r ON r.oid = a.grantee
     WHERE (c.oid = 'pipeline_events'::regclass
            OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'pipeline_events'::regclass))
       AND (p_only IS NULL OR c.oid = p_only)
       AND a.grantee <> c.relowner
       AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
  LOOP
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM %s', v_grant.relation, v_grant.grantee);
    revoked := revoked + 1;
  END LOOP;
  RETURN revoked;
END
$$;
REVOKE ALL ON FUNCTION pipeline_events_append_only(regclass) FROM PUBLIC;
"""

# 0022's function, plus the revoke for the new partition (a CREATE TABLE takes any default privileges).
PARTITION_CREATE = """
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
  -- Append-only like the rest of the trail (pipeline 0026); nothing else's privileges change.
  PERFORM pipeline_events_append_only(v_name::regclass);
  RETURN true;
END
$$;
REVOKE ALL ON FUNCTION pipeline_events_partition_create(date) FROM PUBLIC;
"""

RESEAL = f"""
CREATE OR REPLACE FUNCTION pipeline_events_reseal(p_ids bigint[], p_old jsonb[], p_new jsonb[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_keys text[] := {SEALED_KEYS};
  v_bad bigint;
  changed integer;
BEGIN
  IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_old) OR cardinality(p_ids) IS DISTINCT FROM cardinality(p_new)
     OR array_position(p_ids, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'pipeline_events_reseal: one id, one old and one new detail per event' USING ERRCODE = '22023';
  END IF;
  SELECT v.id INTO v_bad
    FROM unnest(p_ids, p_old, p_new) AS v(id, old, new)
   WHERE jsonb_typeof(v.old) IS DISTINCT FROM 'object' OR jsonb_typeof(v.new) IS DISTINCT FROM 'object'
      OR (v.new - v_keys) <> (v.old - v_keys)
      OR EXISTS (
           SELECT 1 FROM unnest(v_keys) AS k(name)
            WHERE (v.new -> k.name) IS DISTINCT FROM (v.old -> k.name)
              AND NOT coalesce(jsonb_typeof(v.old -> k.name) = 'string' AND jsonb_typeof(v.new -> k.name) = 'string'
                               AND (v.old ->> k.name) ~ '{SEALED_RE}' AND (v.new ->> k.name) ~ '{SEALED_RE}', false))
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'pipeline_events_reseal: event % may only have its sealed values re-sealed', v_bad
      USING ERRCODE = '42501';
  END IF;
  -- Only rows whose detail is still the one the caller re-sealed (a row changed meanwhile is left for a later run).
  UPDATE pipeline_events e SET event_data = v.new
    FROM unnest(p_ids, p_old, p_new) AS v(id, old, new)
   WHERE e.id = v.id AND e.event_data = v.old;
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION pipeline_events_reseal(bigint[], jsonb[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pipeline_events_reseal(bigint[], jsonb[], jsonb[]) TO service_role;
"""

FORWARD = APPEND_ONLY + PARTITION_CREATE + RESEAL + "SELECT pipeline_events_append_only();\n"

REVERSE = (
    """
DROP FUNCTION IF EXISTS pipeline_events_reseal(bigint[], jsonb[], jsonb[]);
DO $$
DECLARE
  v_partition regclass;
BEGIN
  GRANT ALL ON pipeline_events TO service_role;
  FOR v_partition IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'pipeline_events'::regclass LOOP
    EXECUTE format('GRANT ALL ON %s TO service_role', v_partition);
  END LOOP;
END
$$;
"""
    + PARTITIONED.FUNCTIONS
    + "DROP FUNCTION IF EXISTS pipeline_events_append_only(regclass);\n"
)


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0025_sms_and_experiments")]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=REVERSE)]
