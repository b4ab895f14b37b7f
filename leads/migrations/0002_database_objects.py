"""What Django cannot declare for the leads tables: Supabase-style roles and `auth.uid()`, row-level
security, the contactable-leads materialized view, the campaign trigger and the seed's SQL functions.

Fixes to the seed plan's SQL:
- constraints are declared by Django (no `ADD CONSTRAINT IF NOT EXISTS`, which PostgreSQL lacks);
- `refresh_contactable_leads()` takes `pg_try_advisory_xact_lock`, released with the transaction even
  when the refresh fails (the seed's session lock leaked on error);
- `upsert_lead()` locks the row it merges into and retries on a unique violation instead of
  select-then-insert, so concurrent calls for one key produce one lead.
"""

from django.db import migrations

ROLES = ("anon", "authenticated", "service_role", "pipeline_writer")

CREATE_ROLES = "\n".join(
    f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
    CREATE ROLE {role} NOLOGIN NOINHERIT;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently by another database
END $$;"""
    for role in ROLES
)

# Roles are cluster-wide and may still be used by another database on the same server: drop them only
# when nothing else depends on them.
DROP_ROLES = "\n".join(
    f"""DO $$ BEGIN
  DROP ROLE IF EXISTS {role};
EXCEPTION WHEN dependent_objects_still_exist OR object_in_use THEN
  RAISE NOTICE 'role {role} is still used elsewhere on this server; kept';
END $$;"""
    for role in ROLES
)

AUTH_SCHEMA = r"""
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA IF NOT EXISTS auth;

-- Supabase's definition, accepting both spellings of the setting and the JSON form of the claims.
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    nullif(current_setting('request.jwt.claims.sub', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
  ), '')::uuid
$$;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role',
    current_user::text
  )
$$;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, pipeline_writer;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role() TO anon, authenticated, service_role, pipeline_writer;
"""

DROP_AUTH_SCHEMA = """
DROP FUNCTION IF EXISTS auth.role();
DROP FUNCTION IF EXISTS auth.uid();
DROP SCHEMA IF EXISTS auth;
"""

RLS = """
-- leads: a broker sees and writes only the leads assigned to them; service_role sees all; anon nothing.
ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY leads_broker_select ON leads FOR SELECT TO authenticated
  USING (assigned_broker_id = (SELECT auth.uid()));
CREATE POLICY leads_broker_insert ON leads FOR INSERT TO authenticated
  WITH CHECK (assigned_broker_id = (SELECT auth.uid()));
CREATE POLICY leads_broker_update ON leads FOR UPDATE TO authenticated
  USING (assigned_broker_id = (SELECT auth.uid()))
  WITH CHECK (assigned_broker_id = (SELECT auth.uid()));
CREATE POLICY leads_service_all ON leads FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY leads_pipeline_select ON leads FOR SELECT TO pipeline_writer USING (true);
CREATE POLICY leads_pipeline_insert ON leads FOR INSERT TO pipeline_writer WITH CHECK (true);
CREATE POLICY leads_pipeline_update ON leads FOR UPDATE TO pipeline_writer USING (true) WITH CHECK (true);
GRANT SELECT ON leads TO anon;  -- granted so that anon's query returns no rows rather than an error
GRANT SELECT, INSERT, UPDATE ON leads TO authenticated, pipeline_writer;
GRANT ALL ON leads TO service_role;

-- brokers: a broker reads their own row.
ALTER TABLE brokers ENABLE ROW LEVEL SECURITY;
CREATE POLICY brokers_self_select ON brokers FOR SELECT TO authenticated USING (id = (SELECT auth.uid()));
CREATE POLICY brokers_service_all ON brokers FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON brokers TO authenticated;
GRANT ALL ON brokers TO service_role;

-- consent_tokens: a broker creates and reads links for their own leads.
ALTER TABLE consent_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY consent_tokens_broker_select ON consent_tokens FOR SELECT TO authenticated
  USING (broker_id = (SELECT auth.uid()));
CREATE POLICY consent_tokens_broker_insert ON consent_tokens FOR INSERT TO authenticated
  WITH CHECK (broker_id = (SELECT auth.uid())
              AND EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY consent_tokens_service_all ON consent_tokens FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT ON consent_tokens TO authenticated;
GRANT ALL ON consent_tokens TO service_role;

-- lead_consent_audit: readable with the lead (the subquery is itself filtered by the leads policies).
ALTER TABLE lead_consent_audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY lead_consent_audit_broker_select ON lead_consent_audit FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY lead_consent_audit_service_all ON lead_consent_audit FOR ALL TO service_role
  USING (true) WITH CHECK (true);
GRANT SELECT ON lead_consent_audit TO authenticated;
GRANT ALL ON lead_consent_audit TO service_role;

-- verification_code_map: reference data.
ALTER TABLE verification_code_map ENABLE ROW LEVEL SECURITY;
CREATE POLICY verification_code_map_read ON verification_code_map FOR SELECT TO authenticated, pipeline_writer
  USING (true);
CREATE POLICY verification_code_map_service_all ON verification_code_map FOR ALL TO service_role
  USING (true) WITH CHECK (true);
GRANT SELECT ON verification_code_map TO authenticated, pipeline_writer;
GRANT ALL ON verification_code_map TO service_role;
"""

DROP_RLS = """
DROP POLICY IF EXISTS verification_code_map_service_all ON verification_code_map;
DROP POLICY IF EXISTS verification_code_map_read ON verification_code_map;
ALTER TABLE verification_code_map DISABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS lead_consent_audit_service_all ON lead_consent_audit;
DROP POLICY IF EXISTS lead_consent_audit_broker_select ON lead_consent_audit;
ALTER TABLE lead_consent_audit DISABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS consent_tokens_service_all ON consent_tokens;
DROP POLICY IF EXISTS consent_tokens_broker_insert ON consent_tokens;
DROP POLICY IF EXISTS consent_tokens_broker_select ON consent_tokens;
ALTER TABLE consent_tokens DISABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS brokers_service_all ON brokers;
DROP POLICY IF EXISTS brokers_self_select ON brokers;
ALTER TABLE brokers DISABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS leads_pipeline_update ON leads;
DROP POLICY IF EXISTS leads_pipeline_insert ON leads;
DROP POLICY IF EXISTS leads_pipeline_select ON leads;
DROP POLICY IF EXISTS leads_service_all ON leads;
DROP POLICY IF EXISTS leads_broker_update ON leads;
DROP POLICY IF EXISTS leads_broker_insert ON leads;
DROP POLICY IF EXISTS leads_broker_select ON leads;
ALTER TABLE leads DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON leads, brokers, consent_tokens, lead_consent_audit, verification_code_map
  FROM anon, authenticated, service_role, pipeline_writer;
"""

TRIGGER = """
-- Stamp when a lead first turns 'active' (fed to a campaign); a later re-activation keeps the first stamp.
CREATE OR REPLACE FUNCTION set_added_to_campaign_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.campaign_status = 'active' AND NEW.added_to_campaign_at IS NULL
     AND (TG_OP = 'INSERT' OR OLD.campaign_status IS DISTINCT FROM 'active') THEN
    NEW.added_to_campaign_at := now();
  END IF;
  RETURN NEW;
END
$$;
-- The WHEN clause is checked in C before any PL/pgSQL runs, so bulk inserts and updates of leads that are
-- not turning active (nearly all of them) pay nothing for the trigger.
CREATE TRIGGER trg_set_added_to_campaign_at
  BEFORE INSERT OR UPDATE OF campaign_status ON leads
  FOR EACH ROW
  WHEN (NEW.campaign_status = 'active' AND NEW.added_to_campaign_at IS NULL)
  EXECUTE FUNCTION set_added_to_campaign_at();
"""

DROP_TRIGGER = """
DROP TRIGGER IF EXISTS trg_set_added_to_campaign_at ON leads;
DROP FUNCTION IF EXISTS set_added_to_campaign_at();
"""

MATERIALIZED_VIEW = """
-- Contactable = consented (with a timestamp), email or phone verified, assigned to a broker, and not in
-- a status that forbids contact. The feeder re-checks each row live before it feeds it.
-- Deliberately narrow: REFRESH ... CONCURRENTLY diffs whole rows, so every column costs on each refresh,
-- and a column every update touches (updated_at) would make every updated lead a changed row.
CREATE MATERIALIZED VIEW mv_contactable_leads AS
SELECT id, first_name, last_name, email, phone, property_state,
       lead_score, campaign_status, assigned_broker_id, added_to_campaign_at,
       email_verified, phone_verified
  FROM leads
 WHERE consent
   AND consented_at IS NOT NULL
   AND (email_verified OR phone_verified)
   AND assigned_broker_id IS NOT NULL
   AND campaign_status IS NOT NULL
   AND campaign_status NOT IN ('unsubscribed', 'bounced', 'do_not_contact', 'converted');
-- REFRESH ... CONCURRENTLY needs a unique index.
CREATE UNIQUE INDEX mv_contactable_leads_id_idx ON mv_contactable_leads (id);
-- The feeder's query: ~20x faster than scanning the MV (docs/architecture.md).
CREATE INDEX mv_contactable_leads_feeder_idx ON mv_contactable_leads (lead_score DESC)
  WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL;
-- A materialized view cannot carry row-level security: brokers never read it.
REVOKE ALL ON mv_contactable_leads FROM PUBLIC, anon, authenticated;
GRANT SELECT ON mv_contactable_leads TO service_role, pipeline_writer;

CREATE OR REPLACE FUNCTION refresh_contactable_leads() RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  -- Transaction-scoped: released at commit or rollback, so a failed refresh never leaves it held.
  IF NOT pg_try_advisory_xact_lock(hashtext('refresh_contactable_leads')) THEN
    RETURN false;  -- another refresh is running
  END IF;
  REFRESH MATERIALIZED VIEW CONCURRENTLY mv_contactable_leads;
  RETURN true;
END
$$;
REVOKE ALL ON FUNCTION refresh_contactable_leads() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION refresh_contactable_leads() TO service_role, pipeline_writer;
"""

DROP_MATERIALIZED_VIEW = """
DROP FUNCTION IF EXISTS refresh_contactable_leads();
DROP MATERIALIZED VIEW IF EXISTS mv_contactable_leads;
"""

FUNCTIONS = """
CREATE OR REPLACE FUNCTION upsert_lead(
  p_mak text DEFAULT NULL,
  p_apn text DEFAULT NULL,
  p_addr_hash text DEFAULT NULL,
  p_first_name text DEFAULT NULL,
  p_last_name text DEFAULT NULL,
  p_email text DEFAULT NULL,
  p_phone text DEFAULT NULL,
  p_property_address text DEFAULT NULL,
  p_property_city text DEFAULT NULL,
  p_property_state text DEFAULT NULL,
  p_property_zip text DEFAULT NULL,
  p_property_value numeric DEFAULT NULL,
  p_estimated_equity numeric DEFAULT NULL,
  p_property_type text DEFAULT NULL,
  p_age integer DEFAULT NULL,
  p_owner_occupied boolean DEFAULT NULL,
  p_email_verified boolean DEFAULT false,
  p_phone_verified boolean DEFAULT false,
  p_email_verification_codes text[] DEFAULT '{}',
  p_phone_verification_codes text[] DEFAULT '{}',
  p_melissa_payload jsonb DEFAULT '{}',
  p_assigned_broker_id uuid DEFAULT NULL,
  p_lead_score integer DEFAULT NULL,
  p_source text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  v_id uuid;
BEGIN
  IF p_mak IS NULL AND p_apn IS NULL AND p_addr_hash IS NULL THEN
    RAISE EXCEPTION 'upsert_lead needs a dedupe key: mak, apn or addr_hash' USING ERRCODE = '22023';
  END IF;
  LOOP
    -- Match by MAK, then APN, then address hash; lock the row we merge into.
    v_id := NULL;
    IF p_mak IS NOT NULL THEN
      SELECT id INTO v_id FROM leads WHERE mak = p_mak FOR UPDATE;
    END IF;
    IF v_id IS NULL AND p_apn IS NOT NULL THEN
      SELECT id INTO v_id FROM leads WHERE apn = p_apn FOR UPDATE;
    END IF;
    IF v_id IS NULL AND p_addr_hash IS NOT NULL THEN
      SELECT id INTO v_id FROM leads WHERE addr_hash = p_addr_hash FOR UPDATE;
    END IF;

    IF v_id IS NOT NULL THEN
      BEGIN
        -- The seed's safe merge: verified flags OR-ed, code arrays unioned, payload merged, existing
        -- contact data kept, missing keys filled in; campaign status (e.g. do_not_contact) untouched.
        UPDATE leads SET
          first_name = coalesce(nullif(first_name, ''), p_first_name),
          last_name = coalesce(nullif(last_name, ''), p_last_name),
          email = coalesce(nullif(email, ''), p_email),
          phone = coalesce(nullif(phone, ''), p_phone),
          property_address = coalesce(nullif(property_address, ''), p_property_address),
          property_city = coalesce(nullif(property_city, ''), p_property_city),
          property_state = coalesce(nullif(property_state, ''), p_property_state),
          property_zip = coalesce(nullif(property_zip, ''), p_property_zip),
          property_value = coalesce(p_property_value, property_value),
          estimated_equity = coalesce(p_estimated_equity, estimated_equity),
          property_type = coalesce(property_type, p_property_type),
          age = coalesce(age, p_age),
          owner_occupied = coalesce(owner_occupied, p_owner_occupied),
          mak = coalesce(mak, p_mak),
          apn = coalesce(apn, p_apn),
          addr_hash = coalesce(addr_hash, p_addr_hash),
          email_verified = email_verified OR coalesce(p_email_verified, false),
          phone_verified = phone_verified OR coalesce(p_phone_verified, false),
          email_verification_codes = ARRAY(
            SELECT DISTINCT c FROM unnest(email_verification_codes || coalesce(p_email_verification_codes, '{}')) c
             WHERE c IS NOT NULL ORDER BY c),
          phone_verification_codes = ARRAY(
            SELECT DISTINCT c FROM unnest(phone_verification_codes || coalesce(p_phone_verification_codes, '{}')) c
             WHERE c IS NOT NULL ORDER BY c),
          melissa_payload = coalesce(melissa_payload, '{}'::jsonb) || coalesce(p_melissa_payload, '{}'::jsonb),
          assigned_broker_id = coalesce(assigned_broker_id, p_assigned_broker_id),
          lead_score = coalesce(p_lead_score, lead_score),
          updated_at = now()
        WHERE id = v_id;
        RETURN v_id;
      EXCEPTION WHEN unique_violation THEN
        NULL;  -- a key we were filling in was taken meanwhile: look again
      END;
    ELSE
      BEGIN
        INSERT INTO leads (
          mak, apn, addr_hash, first_name, last_name, email, phone,
          property_address, property_city, property_state, property_zip, property_value, estimated_equity,
          property_type, age, owner_occupied, email_verified, phone_verified,
          email_verification_codes, phone_verification_codes, melissa_payload, assigned_broker_id,
          lead_score, source
        ) VALUES (
          p_mak, p_apn, p_addr_hash, p_first_name, p_last_name, p_email, p_phone,
          p_property_address, p_property_city, p_property_state, p_property_zip, p_property_value,
          p_estimated_equity, p_property_type, p_age, p_owner_occupied,
          coalesce(p_email_verified, false), coalesce(p_phone_verified, false),
          ARRAY(SELECT DISTINCT c FROM unnest(coalesce(p_email_verification_codes, '{}')) c
                 WHERE c IS NOT NULL ORDER BY c),
          ARRAY(SELECT DISTINCT c FROM unnest(coalesce(p_phone_verification_codes, '{}')) c
                 WHERE c IS NOT NULL ORDER BY c),
          coalesce(p_melissa_payload, '{}'::jsonb), p_assigned_broker_id, coalesce(p_lead_score, 0), p_source
        )
        RETURNING id INTO v_id;
        RETURN v_id;
      EXCEPTION WHEN unique_violation THEN
        NULL;  -- another transaction inserted this key first: loop and merge into its row
      END;
    END IF;
  END LOOP;
END
$$;
REVOKE ALL ON FUNCTION upsert_lead(text, text, text, text, text, text, text, text, text, text, text, numeric,
  numeric, text, integer, boolean, boolean, boolean, text[], text[], jsonb, uuid, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION upsert_lead(text, text, text, text, text, text, text, text, text, text, text, numeric,
  numeric, text, integer, boolean, boolean, boolean, text[], text[], jsonb, uuid, integer, text)
  TO service_role, pipeline_writer;

CREATE OR REPLACE FUNCTION cleanup_old_consent_tokens() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  removed integer;
BEGIN
  DELETE FROM consent_tokens
   WHERE (used_at IS NOT NULL AND used_at < now() - interval '30 days')
      OR (used_at IS NULL AND expires_at < now() - interval '30 days');
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION cleanup_old_consent_tokens() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cleanup_old_consent_tokens() TO service_role;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS cleanup_old_consent_tokens();
DROP FUNCTION IF EXISTS upsert_lead(text, text, text, text, text, text, text, text, text, text, text, numeric,
  numeric, text, integer, boolean, boolean, boolean, text[], text[], jsonb, uuid, integer, text);
"""


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]

    operations = [
        migrations.RunSQL(CREATE_ROLES, reverse_sql=DROP_ROLES),
        migrations.RunSQL(AUTH_SCHEMA, reverse_sql=DROP_AUTH_SCHEMA),
        migrations.RunSQL(RLS, reverse_sql=DROP_RLS),
        migrations.RunSQL(TRIGGER, reverse_sql=DROP_TRIGGER),
        migrations.RunSQL(MATERIALIZED_VIEW, reverse_sql=DROP_MATERIALIZED_VIEW),
        migrations.RunSQL(FUNCTIONS, reverse_sql=DROP_FUNCTIONS),
    ]
