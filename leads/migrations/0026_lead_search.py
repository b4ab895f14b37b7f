"""The portal search moves off `leads` into `lead_search` (issue 14: the trigram GIN on `leads` was the most
expensive index of an ingest, built entry by entry; a GIN built by `CREATE INDEX` over an upload's own rows costs
about half as much per lead, docs/benchmarks.md "Ingest speed", point 6).

- `lead_search (lead_id, part, broker_id, document)`, LIST-partitioned by `part`. Part 0, `lead_search_live`, is
  kept row by row by triggers on `leads` (a lead inserted, updated or deleted by anything: the portal, webhooks,
  the seed, a small ingest). An ingest of many new leads sets `equity.lead_search_deferred` for its insert (the
  insert trigger then skips) and hands the new rows to `lead_search_partition_add()`, which writes them into a new
  table, builds its indexes with `CREATE INDEX` and attaches it, all in the upload's transaction: a lead is
  searchable exactly when its upload commits `done`. `lead_search_fold()` (a nightly job) folds the small
  upload partitions into one.
- `document` is `lead_search_document()` of the lead's names, street, city and APN (the text the trigram index
  on `leads` indexed: leads.selectors.SEARCH_EXPRESSION). Any change of those columns or of the broker rewrites
  the row (an AFTER UPDATE trigger whose WHEN compares them, so the re-scoring of a merge pays nothing).
- `portal_lead_search()` reads it: the search terms select ids from `lead_search` (the broker's rows, GIN) or,
  for an exact e-mail or phone, from `leads` by blind index; the broker, the status and the other filters then
  come from `leads` itself. A stale or forged search row can cost speed, never show another broker's lead or a
  wrong status. `portal_lead_search_query()` returns the statement (the benchmark EXPLAINs it).
- Owned by the table owner; RLS on the table and on every partition: a broker's role sees its own rows, the
  service role all, the app's login role and the ingestion's role nothing; the partitions have no policy (read
  through the parent only) and get the parent's grants when made.
- `leads_portal_search_trgm_idx` goes.

RunSQL: tables, triggers and SQL functions. The reverse drops them and puts back 0016's functions and 0014's index.
"""

import importlib

from django.db import migrations

_0014 = importlib.import_module("leads.migrations.0014_pii_encryption")
_0016 = importlib.import_module("leads.migrations.0016_portal_views")

# The columns whose change rewrites a lead's search row.
SEARCH_COLUMNS = ("first_name", "last_name", "property_address", "property_city", "apn", "assigned_broker_id")

FORWARD = """
-- The searched text of a lead: the same as leads.selectors.SEARCH_EXPRESSION (a test compares them).
CREATE FUNCTION lead_search_document(p_first text, p_last text, p_address text, p_city text, p_apn text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT coalesce(p_first, '') || ' ' || coalesce(p_last, '') || ' ' || coalesce(p_address, '')
         || ' ' || coalesce(p_city, '') || ' ' || coalesce(p_apn, '')
$fn$;

CREATE SEQUENCE lead_search_part_seq START 1;  -- 0 is the live partition
CREATE TABLE lead_search (
  lead_id uuid NOT NULL,
  part bigint NOT NULL,
  broker_id uuid,
  document text NOT NULL
) PARTITION BY LIST (part);
CREATE TABLE lead_search_live PARTITION OF lead_search FOR VALUES IN (0);
CREATE INDEX lead_search_trgm_idx ON lead_search USING gin (broker_id, document gin_trgm_ops);
CREATE INDEX lead_search_lead_idx ON lead_search (lead_id);
ALTER TABLE lead_search ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_search_live ENABLE ROW LEVEL SECURITY;
CREATE POLICY lead_search_broker_select ON lead_search FOR SELECT TO authenticated
  USING (broker_id = (SELECT auth.uid()));
CREATE POLICY lead_search_service_all ON lead_search FOR ALL TO service_role USING (true) WITH CHECK (true);
-- pipeline_writer reads none of it (the apply adds its rows through lead_search_partition_add()).
GRANT SELECT ON lead_search TO authenticated;

-- Every existing lead, in one built partition (part 1).
CREATE TABLE lead_search_p1 (LIKE lead_search);
INSERT INTO lead_search_p1 (lead_id, part, broker_id, document)
SELECT id, 1, assigned_broker_id,
       lead_search_document(first_name, last_name, property_address, property_city, apn)
  FROM leads ORDER BY assigned_broker_id;
ALTER TABLE lead_search_p1 ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_search ATTACH PARTITION lead_search_p1 FOR VALUES IN (1);
SELECT setval('lead_search_part_seq', 1);

-- Row by row, for every writer of leads (SECURITY DEFINER: no app role writes lead_search itself).
CREATE FUNCTION lead_search_row_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  INSERT INTO lead_search (lead_id, part, broker_id, document)
  VALUES (NEW.id, 0, NEW.assigned_broker_id,
          lead_search_document(NEW.first_name, NEW.last_name, NEW.property_address, NEW.property_city, NEW.apn));
  RETURN NULL;
END
$fn$;
CREATE FUNCTION lead_search_row_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  UPDATE lead_search
     SET broker_id = NEW.assigned_broker_id,
         document = lead_search_document(NEW.first_name, NEW.last_name, NEW.property_address, NEW.property_city,
                                         NEW.apn)
   WHERE lead_id = NEW.id;
  RETURN NULL;
END
$fn$;
CREATE FUNCTION lead_search_row_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  DELETE FROM lead_search WHERE lead_id = OLD.id;
  RETURN NULL;
END
$fn$;
CREATE FUNCTION lead_search_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  TRUNCATE lead_search;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION lead_search_row_insert(), lead_search_row_update(), lead_search_row_delete(),
  lead_search_truncate() FROM PUBLIC;
-- An ingest of many new leads sets equity.lead_search_deferred for its insert and adds them as one partition.
CREATE TRIGGER trg_lead_search_insert AFTER INSERT ON leads FOR EACH ROW
  WHEN (current_setting('equity.lead_search_deferred', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION lead_search_row_insert();
CREATE TRIGGER trg_lead_search_update
  AFTER UPDATE OF first_name, last_name, property_address, property_city, apn, assigned_broker_id ON leads
  FOR EACH ROW WHEN (
    OLD.first_name IS DISTINCT FROM NEW.first_name OR OLD.last_name IS DISTINCT FROM NEW.last_name
    OR OLD.property_address IS DISTINCT FROM NEW.property_address
    OR OLD.property_city IS DISTINCT FROM NEW.property_city OR OLD.apn IS DISTINCT FROM NEW.apn
    OR OLD.assigned_broker_id IS DISTINCT FROM NEW.assigned_broker_id
  ) EXECUTE FUNCTION lead_search_row_update();
CREATE TRIGGER trg_lead_search_delete AFTER DELETE ON leads FOR EACH ROW EXECUTE FUNCTION lead_search_row_delete();
CREATE TRIGGER trg_lead_search_truncate AFTER TRUNCATE ON leads FOR EACH STATEMENT
  EXECUTE FUNCTION lead_search_truncate();

-- A new partition gets the parent's grants (so the roles grants.py manages hold the same on every partition;
-- RLS on the partition, without policies, still shows nothing read past the parent).
CREATE FUNCTION lead_search_partition_grants(p_name text) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $fn$
DECLARE
  v_grant record;
BEGIN
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', p_name);
  FOR v_grant IN
    SELECT a.privilege_type, r.rolname FROM pg_class c, aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
     WHERE c.oid = 'lead_search'::regclass AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('GRANT %s ON %I TO %I', v_grant.privilege_type, p_name, v_grant.rolname);
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION lead_search_partition_grants(text) FROM PUBLIC;

-- The new leads of one ingest as a new partition: rows written, GIN and b-tree built, attached. Ends the
-- deferral. The caller's transaction holds it (the attach's lock serialises concurrent attaches until commit).
CREATE FUNCTION lead_search_partition_add(p_ids uuid[], p_brokers uuid[], p_documents text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  v_part bigint;
  v_name text;
BEGIN
  PERFORM set_config('equity.lead_search_deferred', 'off', true);
  IF coalesce(cardinality(p_ids), 0) = 0 THEN
    RETURN 0;
  END IF;
  IF cardinality(p_brokers) <> cardinality(p_ids) OR cardinality(p_documents) <> cardinality(p_ids) THEN
    RAISE EXCEPTION 'lead_search_partition_add: arrays of different lengths';
  END IF;
  v_part := nextval('lead_search_part_seq');
  v_name := 'lead_search_p' || v_part;
  EXECUTE format('CREATE TABLE %I (LIKE lead_search)', v_name);
  EXECUTE format('INSERT INTO %I (lead_id, part, broker_id, document)'
                 ' SELECT i, $1, b, coalesce(d, '''') FROM unnest($2, $3, $4) AS u (i, b, d) ORDER BY b', v_name)
    USING v_part, p_ids, p_brokers, p_documents;
  EXECUTE format('CREATE INDEX ON %I USING gin (broker_id, document gin_trgm_ops)', v_name);
  EXECUTE format('CREATE INDEX ON %I (lead_id)', v_name);
  PERFORM lead_search_partition_grants(v_name);
  EXECUTE format('ALTER TABLE lead_search ATTACH PARTITION %I FOR VALUES IN (%s)', v_name, v_part);
  RETURN cardinality(p_ids);
END
$fn$;
REVOKE ALL ON FUNCTION lead_search_partition_add(uuid[], uuid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lead_search_partition_add(uuid[], uuid[], text[]) TO pipeline_writer, service_role;

-- The upload partitions under p_max_rows rows, folded into one new partition (their rows copied, indexes
-- built, the old ones dropped). Returns how many were folded (0 when fewer than two are small).
CREATE FUNCTION lead_search_fold(p_max_rows bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  v_small text[] := '{}';
  v_name text;
  v_rows bigint;
  v_part bigint;
  v_new text;
BEGIN
  -- The parent first (the lock an attach takes), then the partitions: no upload attaches or edits them meanwhile.
  LOCK TABLE lead_search IN SHARE UPDATE EXCLUSIVE MODE;
  FOR v_name IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'lead_search'::regclass AND c.relname <> 'lead_search_live' ORDER BY c.oid
  LOOP
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I LIMIT $1) s', v_name) INTO v_rows USING p_max_rows;
    IF v_rows < p_max_rows THEN
      v_small := v_small || v_name;
    END IF;
  END LOOP;
  IF cardinality(v_small) < 2 THEN
    RETURN 0;
  END IF;
  FOREACH v_name IN ARRAY v_small LOOP
    EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', v_name);
  END LOOP;
  v_part := nextval('lead_search_part_seq');
  v_new := 'lead_search_p' || v_part;
  EXECUTE format('CREATE TABLE %I (LIKE lead_search)', v_new);
  EXECUTE format('INSERT INTO %I (lead_id, part, broker_id, document) SELECT lead_id, $1, broker_id, document'
                 ' FROM (%s) s ORDER BY broker_id', v_new,
                 (SELECT string_agg(format('SELECT * FROM %I', n), ' UNION ALL ') FROM unnest(v_small) n))
    USING v_part;
  EXECUTE format('CREATE INDEX ON %I USING gin (broker_id, document gin_trgm_ops)', v_new);
  EXECUTE format('CREATE INDEX ON %I (lead_id)', v_new);
  PERFORM lead_search_partition_grants(v_new);
  FOREACH v_name IN ARRAY v_small LOOP
    EXECUTE format('DROP TABLE %I', v_name);
  END LOOP;
  EXECUTE format('ALTER TABLE lead_search ATTACH PARTITION %I FOR VALUES IN (%s)', v_new, v_part);
  RETURN cardinality(v_small);
END
$fn$;
REVOKE ALL ON FUNCTION lead_search_fold(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lead_search_fold(bigint) TO service_role;

DROP INDEX IF EXISTS leads_portal_search_trgm_idx;
"""

SEARCH_FUNCTION = """
-- The WHERE clause (after the broker condition) for the filters other than the search terms. Not callable by
-- the app roles.
CREATE OR REPLACE FUNCTION portal_lead_search_where(p_filters jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $fn$
DECLARE
  v_where text := '';
  v_statuses text[];
BEGIN
  IF jsonb_typeof(p_filters -> 'statuses') = 'array' THEN
    v_statuses := ARRAY(SELECT jsonb_array_elements_text(p_filters -> 'statuses'));
    IF cardinality(v_statuses) = 1 THEN
      v_where := v_where || format(' AND campaign_status = %L::campaign_status', v_statuses[1]);
    ELSIF cardinality(v_statuses) > 1 THEN
      v_where := v_where || format(' AND campaign_status = ANY(%L::campaign_status[])', v_statuses);
    END IF;
  END IF;
  IF p_filters ? 'email_verified' THEN
    v_where := v_where || format(' AND email_verified = %L::boolean', p_filters ->> 'email_verified');
  END IF;
  IF p_filters ? 'phone_verified' THEN
    v_where := v_where || format(' AND phone_verified = %L::boolean', p_filters ->> 'phone_verified');
  END IF;
  IF p_filters ? 'consent' THEN
    v_where := v_where || format(' AND consent = %L::boolean', p_filters ->> 'consent');
  END IF;
  IF p_filters ? 'score_min' THEN
    v_where := v_where || format(' AND lead_score >= %L::integer', p_filters ->> 'score_min');
  END IF;
  IF p_filters ? 'score_max' THEN
    v_where := v_where || format(' AND lead_score <= %L::integer', p_filters ->> 'score_max');
  END IF;
  IF p_filters ? 'created_from' THEN
    v_where := v_where || format(' AND created_at >= %L::timestamptz', p_filters ->> 'created_from');
  END IF;
  IF p_filters ? 'created_before' THEN
    v_where := v_where || format(' AND created_at < %L::timestamptz', p_filters ->> 'created_before');
  END IF;
  RETURN v_where;
END
$fn$;
REVOKE ALL ON FUNCTION portal_lead_search_where(jsonb) FROM PUBLIC;

-- The ids the search terms match among p_broker's search rows (trigram GIN of lead_search), or by exact
-- e-mail, phone or last four digits among p_broker's leads (blind indexes); NULL when there is no term.
CREATE FUNCTION portal_lead_search_ids(p_filters jsonb, p_broker uuid) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $fn$
DECLARE
  v_groups text[] := '{}';
  v_contacts text[] := '{}';
  v_group jsonb;
  v_terms text[];
  v_pattern text;
  v_column text;
  v_indexes jsonb;
  v_parts text[] := '{}';
BEGIN
  IF jsonb_typeof(p_filters -> 'pattern_groups') = 'array' THEN
    FOR v_group IN SELECT value FROM jsonb_array_elements(p_filters -> 'pattern_groups') LIMIT 4 LOOP
      v_terms := '{}';
      FOR v_pattern IN SELECT value FROM jsonb_array_elements_text(v_group) LIMIT 8 LOOP
        v_terms := v_terms || format('document ILIKE %L', v_pattern);
      END LOOP;
      IF cardinality(v_terms) > 0 THEN
        v_groups := v_groups || ('(' || array_to_string(v_terms, ' AND ') || ')');
      END IF;
    END LOOP;
  END IF;
  IF jsonb_typeof(p_filters -> 'contact_indexes') = 'object' THEN
    FOR v_column, v_indexes IN SELECT key, value FROM jsonb_each(p_filters -> 'contact_indexes') LOOP
      IF v_column IN ('email_bidx', 'phone_bidx', 'phone_last4_bidx') AND jsonb_typeof(v_indexes) = 'array' THEN
        v_contacts := v_contacts || format('%I = ANY(%L::text[])', v_column,
                                           ARRAY(SELECT jsonb_array_elements_text(v_indexes) LIMIT 8));
      END IF;
    END LOOP;
  END IF;
  IF cardinality(v_groups) > 0 THEN
    v_parts := v_parts || format('SELECT lead_id FROM lead_search WHERE broker_id = %L::uuid AND (%s)',
                                 p_broker, array_to_string(v_groups, ' OR '));
  END IF;
  IF cardinality(v_contacts) > 0 THEN
    v_parts := v_parts || format('SELECT id FROM leads WHERE assigned_broker_id = %L::uuid AND (%s)',
                                 p_broker, array_to_string(v_contacts, ' OR '));
  END IF;
  IF cardinality(v_parts) = 0 THEN
    RETURN NULL;
  END IF;
  RETURN array_to_string(v_parts, ' UNION ALL ');
END
$fn$;
REVOKE ALL ON FUNCTION portal_lead_search_ids(jsonb, uuid) FROM PUBLIC;

-- The statement portal_lead_search() runs for p_broker (benchmarks/portal.py EXPLAINs it). Not callable by the
-- app roles.
CREATE FUNCTION portal_lead_search_query(
  p_filters jsonb, p_broker uuid, p_sort text DEFAULT 'newest', p_limit integer DEFAULT NULL, p_offset integer DEFAULT 0
) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $fn$
DECLARE
  v_order text;
  v_ids text := portal_lead_search_ids(coalesce(p_filters, '{}'::jsonb), p_broker);
BEGIN
  -- The same orders as leads.selectors.SORTS (PostgreSQL's default NULL placement, as Django's).
  v_order := CASE p_sort
    WHEN 'oldest' THEN 'created_at, id'
    WHEN 'score' THEN 'lead_score DESC, created_at DESC, id DESC'
    WHEN 'score_low' THEN 'lead_score, created_at DESC, id DESC'
    WHEN 'name' THEN 'last_name, first_name, id'
    WHEN 'status' THEN 'campaign_status, created_at DESC, id DESC'
    WHEN 'name_desc' THEN 'last_name DESC, first_name DESC, id DESC'
    WHEN 'status_desc' THEN 'campaign_status DESC, created_at DESC, id DESC'
    ELSE 'created_at DESC, id DESC' END;
  -- The matches are collected once (planned without the LIMIT, so the GIN index is used for a search), then
  -- counted and sorted: `total` costs nothing more than the top-N sort, which reads every match. The broker,
  -- the status and every other filter are conditions on `leads` itself, whatever the search rows say.
  RETURN 'WITH matches AS MATERIALIZED (SELECT id, created_at, lead_score, last_name, first_name, campaign_status'
    || ' FROM leads WHERE assigned_broker_id = ' || quote_literal(p_broker) || '::uuid'
    || CASE WHEN v_ids IS NULL THEN '' ELSE ' AND id IN (' || v_ids || ')' END
    || portal_lead_search_where(coalesce(p_filters, '{}'::jsonb))
    || ') SELECT id, (SELECT count(*) FROM matches) FROM matches ORDER BY ' || v_order
    || CASE WHEN p_limit IS NULL THEN '' ELSE ' LIMIT ' || greatest(p_limit, 0) END
    || ' OFFSET ' || greatest(coalesce(p_offset, 0), 0);
END
$fn$;
REVOKE ALL ON FUNCTION portal_lead_search_query(jsonb, uuid, text, integer, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION portal_lead_search(
  p_filters jsonb, p_sort text DEFAULT 'newest', p_limit integer DEFAULT NULL, p_offset integer DEFAULT 0
) RETURNS TABLE (id uuid, total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  v_broker uuid := auth.uid();
BEGIN
  IF v_broker IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE portal_lead_search_query(p_filters, v_broker, p_sort, p_limit, p_offset);
END
$fn$;
REVOKE ALL ON FUNCTION portal_lead_search(jsonb, text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_lead_search(jsonb, text, integer, integer) TO authenticated;
"""

BACKWARD = (
    """
DROP FUNCTION portal_lead_search_query(jsonb, uuid, text, integer, integer);
DROP FUNCTION portal_lead_search_ids(jsonb, uuid);
DROP TRIGGER trg_lead_search_insert ON leads;
DROP TRIGGER trg_lead_search_update ON leads;
DROP TRIGGER trg_lead_search_delete ON leads;
DROP TRIGGER trg_lead_search_truncate ON leads;
DROP FUNCTION lead_search_fold(bigint);
DROP FUNCTION lead_search_partition_add(uuid[], uuid[], text[]);
DROP FUNCTION lead_search_partition_grants(text);
DROP FUNCTION lead_search_row_insert(), lead_search_row_update(), lead_search_row_delete(), lead_search_truncate();
DROP TABLE lead_search;
DROP SEQUENCE lead_search_part_seq;
DROP FUNCTION lead_search_document(text, text, text, text, text);
"""
    + _0014.SEARCH_INDEX
    + _0016.SEARCH_FUNCTION
)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0025_live_broker_status_index"),
    ]

    operations = [
        migrations.RunSQL(FORWARD + SEARCH_FUNCTION, reverse_sql=BACKWARD),
    ]
