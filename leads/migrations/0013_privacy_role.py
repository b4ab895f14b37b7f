"""A person's rights and retention for the two audit tables, which stay immutable to the application.

`lead_consent_audit` (0008) and `lead_access_records` (0009) refuse UPDATE and DELETE to every role but their
owner. Erasing a person and expiring old records still has to change them, so each table gets SECURITY DEFINER
functions, owned by the migration's role (the tables' owner, whom the append-only triggers let through), with a
fixed search_path, EXECUTE revoked from PUBLIC and granted only to `privacy_officer`:

- `lead_consent_audit_erase(lead ids)`: the consent proof is kept (text, version, channels, method, time,
  campaign tags) with its personal data redacted (address, browser) and its identifiers hashed (the lead id
  becomes `privacy_pseudonym(lead id)`, the token hash is hashed again);
- `lead_consent_audit_expire(days)`: deletes records older than that many days;
- `lead_access_records_erase(lead ids, needles)`: records about those leads keep who, when, what and through
  which page, with the lead id hashed and the reason and detail emptied; a record whose filters, detail or
  reason mention the person (an export filtered by their e-mail) has those emptied too;
- `lead_access_records_expire(days)`: deletes records older than that many days.

Both expiries refuse (raise) fewer than 1826 days (5 years): the floor no setting goes below,
enforced here as well as at start-up (equity_connect/settings/base.py).

`privacy_officer` is a NOLOGIN role with no table privilege at all: it can only call these functions (and the
pipeline_events ones of pipeline 0014). The application's login role is made a member after every migrate
(equity_connect/grants.py) and enters it only through `equity_connect.db.privacy_officer_context`, which the
privacy command and admin (pipeline/privacy) and the retention job (pipeline/retention.py) use.

An access record may also say `erase` (the erasure itself is recorded).
"""

from django.db import migrations, models

ROLE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'privacy_officer') THEN
    CREATE ROLE privacy_officer NOLOGIN NOINHERIT;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently by another database
END $$;
GRANT USAGE ON SCHEMA public TO privacy_officer;
"""

# Roles are cluster-wide and may still be used by another database on the same server.
DROP_ROLE = """
REVOKE USAGE ON SCHEMA public FROM privacy_officer;
DO $$ BEGIN
  DROP ROLE IF EXISTS privacy_officer;
EXCEPTION WHEN dependent_objects_still_exist OR object_in_use THEN
  RAISE NOTICE 'role privacy_officer is still used elsewhere on this server; kept';
END $$;
"""

FUNCTIONS = r"""
-- The stand-in for an erased lead's id wherever a record is kept: the same for every table, so the kept records
-- still belong together, but no longer lead to the person (their lead row and every copy of the id are gone).
CREATE OR REPLACE FUNCTION privacy_pseudonym(p_id uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
  SELECT md5('erased-lead:' || p_id::text)::uuid
$$;
REVOKE ALL ON FUNCTION privacy_pseudonym(uuid) FROM PUBLIC;

-- Whether a text mentions any of the needles (an e-mail address, a phone number), case-insensitively.
CREATE OR REPLACE FUNCTION privacy_mentions(p_text text, p_needles text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
  SELECT p_text IS NOT NULL AND EXISTS (
    SELECT 1 FROM unnest(p_needles) AS needle WHERE needle <> '' AND strpos(lower(p_text), lower(needle)) > 0
  )
$$;
REVOKE ALL ON FUNCTION privacy_mentions(text, text[]) FROM PUBLIC;
-- Staff find what an export must list with the same test the erasure redacts by.
GRANT EXECUTE ON FUNCTION privacy_mentions(text, text[]) TO service_role;

CREATE OR REPLACE FUNCTION lead_consent_audit_erase(p_lead_ids uuid[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  changed integer;
BEGIN
  UPDATE lead_consent_audit
     SET lead_id = privacy_pseudonym(lead_id),
         ip_address = NULL,
         user_agent = '',
         token_hash = CASE WHEN token_hash = '' THEN ''
                           ELSE encode(sha256(convert_to('erased-token:' || token_hash, 'UTF8')), 'hex') END
   WHERE lead_id = ANY(p_lead_ids);
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END
$$;

CREATE OR REPLACE FUNCTION lead_consent_audit_expire(p_keep_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  removed integer;
BEGIN
  -- Days, not a timestamp from the caller: the floor does not depend on the application server's clock.
  IF p_keep_days IS NULL OR p_keep_days < 1826 THEN
    RAISE EXCEPTION 'consent records are kept at least 1826 days (5 years): % days is refused', p_keep_days
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  DELETE FROM lead_consent_audit WHERE created_at < now() - make_interval(days => p_keep_days);
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END
$$;

CREATE OR REPLACE FUNCTION lead_access_records_erase(p_lead_ids uuid[], p_needles text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  changed integer;
BEGIN
  UPDATE lead_access_records
     SET lead_id = CASE WHEN lead_id = ANY(p_lead_ids) THEN privacy_pseudonym(lead_id) ELSE lead_id END,
         filters = CASE WHEN privacy_mentions(filters::text, p_needles)
                        THEN '{"redacted": "erasure"}'::jsonb ELSE filters END,
         detail = CASE WHEN lead_id = ANY(p_lead_ids) OR privacy_mentions(detail::text, p_needles)
                       THEN '{"redacted": "erasure"}'::jsonb ELSE detail END,
         reason = CASE WHEN lead_id = ANY(p_lead_ids) OR privacy_mentions(reason, p_needles)
                       THEN '' ELSE reason END
   WHERE lead_id = ANY(p_lead_ids)
      OR privacy_mentions(filters::text, p_needles)
      OR privacy_mentions(detail::text, p_needles)
      OR privacy_mentions(reason, p_needles);
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END
$$;

CREATE OR REPLACE FUNCTION lead_access_records_expire(p_keep_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  removed integer;
BEGIN
  -- Days, not a timestamp from the caller: the floor does not depend on the application server's clock.
  IF p_keep_days IS NULL OR p_keep_days < 1826 THEN
    RAISE EXCEPTION 'access records are kept at least 1826 days (5 years): % days is refused', p_keep_days
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  DELETE FROM lead_access_records WHERE created_at < now() - make_interval(days => p_keep_days);
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END
$$;

REVOKE ALL ON FUNCTION lead_consent_audit_erase(uuid[]), lead_consent_audit_expire(integer),
  lead_access_records_erase(uuid[], text[]), lead_access_records_expire(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lead_consent_audit_erase(uuid[]), lead_consent_audit_expire(integer),
  lead_access_records_erase(uuid[], text[]), lead_access_records_expire(integer) TO privacy_officer;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS lead_access_records_expire(integer);
DROP FUNCTION IF EXISTS lead_access_records_erase(uuid[], text[]);
DROP FUNCTION IF EXISTS lead_consent_audit_expire(integer);
DROP FUNCTION IF EXISTS lead_consent_audit_erase(uuid[]);
DROP FUNCTION IF EXISTS privacy_mentions(text, text[]);
DROP FUNCTION IF EXISTS privacy_pseudonym(uuid);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0012_blind_indexes"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="leadaccessrecord", name="lead_access_records_action_valid"),
        migrations.AlterField(
            model_name="leadaccessrecord",
            name="action",
            field=models.CharField(
                choices=[
                    ("view", "View"),
                    ("export", "Export"),
                    ("change", "Change"),
                    ("reveal", "Reveal"),
                    ("erase", "Erase"),
                ],
                max_length=8,
            ),
        ),
        migrations.AddConstraint(
            model_name="leadaccessrecord",
            constraint=models.CheckConstraint(
                condition=models.Q(("action__in", ["view", "export", "change", "reveal", "erase"])),
                name="lead_access_records_action_valid",
            ),
        ),
        # The role first: the functions' grants name it.
        migrations.RunSQL(ROLE, reverse_sql=DROP_ROLE),
        # The only way to change or delete an audit record, for erasure and retention (module docstring).
        migrations.RunSQL(FUNCTIONS, reverse_sql=DROP_FUNCTIONS),
    ]
