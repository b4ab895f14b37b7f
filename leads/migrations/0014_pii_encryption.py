"""PII encrypted at rest (issue 13): e-mail, phone and the do-not-contact reason of a lead are AES-GCM tokens
(security/fields.py, security/pii.py); exact lookups go through the blind indexes of 0012.

- The columns stay `text` (the seed's SQL still runs; its e-mail and phone read back as ciphertext, and the rows
  its `upsert_lead()` writes in plaintext are encrypted by the sweep within a minute). Existing rows are
  encrypted here in batches, in Python (the database holds no key); reversing decrypts them again.
- `leads_email_idx` (a b-tree on plaintext addresses) goes: the webhook, the unsubscribe and the suppression
  check look addresses up by `email_bidx` now.
- `leads_contact_unswept_idx`: the rows the sweep must encrypt (a value without its blind index), so the sweep
  every minute reads a near-empty partial index, not the table. Its predicate is the sweep's WHERE, verbatim.
- The portal search's trigram index and function lose e-mail and phone (ciphertext has nothing to find):
  `portal_lead_search_where()` also takes `contact_indexes` ({column: [blind indexes]}, columns from a fixed
  list) and ORs them with the text patterns, so an exact e-mail, phone or last four digits still finds the lead.
- `mv_contactable_leads` loses its e-mail and phone columns (the feeder reads nothing but ids and scores from it,
  and decrypts what it pushes from `leads`).
"""

from django.db import migrations

import security.fields

SEARCH_EXPRESSION = (
    "(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(property_address, '')"
    " || ' ' || coalesce(property_city, '') || ' ' || coalesce(apn, ''))"
)
OLD_SEARCH_EXPRESSION = (
    "(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(property_address, '')"
    " || ' ' || coalesce(property_city, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, '')"
    " || ' ' || coalesce(apn, ''))"
)
# Inside the function's SQL string literal, every quote is doubled.
QUOTED_EXPRESSION = SEARCH_EXPRESSION.replace("'", "''")

SEARCH_INDEX = f"""
DROP INDEX IF EXISTS leads_portal_search_trgm_idx;
CREATE INDEX leads_portal_search_trgm_idx ON leads
  USING gin (assigned_broker_id, campaign_status, {SEARCH_EXPRESSION} gin_trgm_ops);
"""
OLD_SEARCH_INDEX = f"""
DROP INDEX IF EXISTS leads_portal_search_trgm_idx;
CREATE INDEX leads_portal_search_trgm_idx ON leads
  USING gin (assigned_broker_id, campaign_status, {OLD_SEARCH_EXPRESSION} gin_trgm_ops);
"""

SEARCH_FUNCTION = f"""
-- The WHERE clause (after the broker condition) for a filters document. Not callable by the app roles.
CREATE OR REPLACE FUNCTION portal_lead_search_where(p_filters jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $fn$
DECLARE
  v_where text := '';
  v_groups text[] := '{{}}';
  v_group jsonb;
  v_terms text[];
  v_pattern text;
  v_statuses text[];
  v_column text;
  v_indexes jsonb;
BEGIN
  IF jsonb_typeof(p_filters -> 'pattern_groups') = 'array' THEN
    FOR v_group IN SELECT value FROM jsonb_array_elements(p_filters -> 'pattern_groups') LIMIT 4 LOOP
      v_terms := '{{}}';
      FOR v_pattern IN SELECT value FROM jsonb_array_elements_text(v_group) LIMIT 8 LOOP
        v_terms := v_terms || format('{QUOTED_EXPRESSION} ILIKE %L', v_pattern);
      END LOOP;
      IF cardinality(v_terms) > 0 THEN
        v_groups := v_groups || ('(' || array_to_string(v_terms, ' AND ') || ')');
      END IF;
    END LOOP;
  END IF;
  -- Or an exact e-mail, phone or last four digits, by blind index (the values are encrypted).
  IF jsonb_typeof(p_filters -> 'contact_indexes') = 'object' THEN
    FOR v_column, v_indexes IN SELECT key, value FROM jsonb_each(p_filters -> 'contact_indexes') LOOP
      IF v_column IN ('email_bidx', 'phone_bidx', 'phone_last4_bidx') AND jsonb_typeof(v_indexes) = 'array' THEN
        v_groups := v_groups || format('%I = ANY(%L::text[])', v_column,
                                       ARRAY(SELECT jsonb_array_elements_text(v_indexes) LIMIT 8));
      END IF;
    END LOOP;
  END IF;
  IF cardinality(v_groups) > 0 THEN
    v_where := v_where || ' AND (' || array_to_string(v_groups, ' OR ') || ')';
  END IF;
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

CREATE OR REPLACE FUNCTION portal_lead_search(
  p_filters jsonb, p_sort text DEFAULT 'newest', p_limit integer DEFAULT NULL, p_offset integer DEFAULT 0
) RETURNS TABLE (id uuid, total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  v_broker uuid := auth.uid();
  v_order text;
BEGIN
  IF v_broker IS NULL THEN
    RETURN;
  END IF;
  -- The same orders as leads.selectors.SORTS (PostgreSQL's default NULL placement, as Django's).
  v_order := CASE p_sort
    WHEN 'oldest' THEN 'created_at, id'
    WHEN 'score' THEN 'lead_score DESC, created_at DESC, id DESC'
    WHEN 'score_low' THEN 'lead_score, created_at DESC, id DESC'
    WHEN 'name' THEN 'last_name, first_name, id'
    WHEN 'status' THEN 'campaign_status, created_at DESC, id DESC'
    ELSE 'created_at DESC, id DESC' END;
  -- The matches are collected once (planned without the LIMIT, so the GIN index is used for a search),
  -- then counted and sorted: `total` costs nothing more than the top-N sort, which reads every match.
  RETURN QUERY EXECUTE
    'WITH matches AS MATERIALIZED (SELECT id, created_at, lead_score, last_name, first_name, campaign_status'
    || ' FROM leads WHERE assigned_broker_id = ' || quote_literal(v_broker) || '::uuid'
    || portal_lead_search_where(coalesce(p_filters, '{{}}'::jsonb))
    || ') SELECT id, (SELECT count(*) FROM matches) FROM matches ORDER BY ' || v_order
    || CASE WHEN p_limit IS NULL THEN '' ELSE ' LIMIT ' || greatest(p_limit, 0) END
    || ' OFFSET ' || greatest(coalesce(p_offset, 0), 0);
END
$fn$;
REVOKE ALL ON FUNCTION portal_lead_search(jsonb, text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_lead_search(jsonb, text, integer, integer) TO authenticated;
"""


def _old_search_function():
    import importlib

    return importlib.import_module("leads.migrations.0004_portal_search_function").CREATE


def _view(columns: str) -> str:
    return f"""
DROP MATERIALIZED VIEW IF EXISTS mv_contactable_leads;
CREATE MATERIALIZED VIEW mv_contactable_leads AS
SELECT {columns}
  FROM leads
 WHERE consent
   AND consented_at IS NOT NULL
   AND (email_verified OR phone_verified)
   AND assigned_broker_id IS NOT NULL
   AND campaign_status IS NOT NULL
   AND campaign_status NOT IN ('unsubscribed', 'bounced', 'do_not_contact', 'converted');
CREATE UNIQUE INDEX mv_contactable_leads_id_idx ON mv_contactable_leads (id);
CREATE INDEX mv_contactable_leads_feeder_idx ON mv_contactable_leads (lead_score DESC)
  WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL;
REVOKE ALL ON mv_contactable_leads FROM PUBLIC, anon, authenticated;
GRANT SELECT ON mv_contactable_leads TO service_role, pipeline_writer;
"""


# The same view as 0002, without e-mail and phone (its other columns and indexes unchanged).
VIEW = _view(
    "id, first_name, last_name, property_state, lead_score, campaign_status, assigned_broker_id,"
    " added_to_campaign_at, email_verified, phone_verified"
)
OLD_VIEW = _view(
    "id, first_name, last_name, email, phone, property_state, lead_score, campaign_status, assigned_broker_id,"
    " added_to_campaign_at, email_verified, phone_verified"
)

UNSWEPT_INDEX = """
CREATE INDEX leads_contact_unswept_idx ON leads (id)
 WHERE (nullif(email, '') IS NOT NULL AND email_bidx IS NULL) OR (nullif(phone, '') IS NOT NULL AND phone_bidx IS NULL);
"""
DROP_UNSWEPT_INDEX = "DROP INDEX IF EXISTS leads_contact_unswept_idx;"

BATCH = 5_000
# Plaintext is any non-empty value that is not a token (security/fields.py `looks_encrypted`).
_PLAIN = "nullif({0}, '') IS NOT NULL AND {0} !~ '^[A-Za-z0-9]{{1,32}}:[A-Za-z0-9_=-]{{38,}}$'"
_ENCRYPTED = "{0} ~ '^[A-Za-z0-9]{{1,32}}:[A-Za-z0-9_=-]{{38,}}$'"
COLUMNS = (("email", "email"), ("phone", "phone"), ("do_not_contact_reason", "notes"))


def _convert(schema_editor, *, encrypt: bool):
    from security.pii import codec

    pii = codec()
    test = _PLAIN if encrypt else _ENCRYPTED
    with schema_editor.connection.cursor() as cursor:
        for column, kind in COLUMNS:
            last = "00000000-0000-0000-0000-000000000000"
            while True:
                cursor.execute(
                    f"SELECT id, {column} FROM leads WHERE id > %s AND {test.format(column)} ORDER BY id LIMIT %s",
                    [last, BATCH],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                values = [pii.encrypt(value, kind) if encrypt else pii.decrypt(value, kind) for _, value in rows]
                cursor.execute(
                    f"UPDATE leads l SET {column} = v.value FROM unnest(%s::uuid[], %s::text[]) AS v(id, value)"
                    " WHERE l.id = v.id",
                    [[row[0] for row in rows], values],
                )
                last = rows[-1][0]


def encrypt_existing(apps, schema_editor):
    _convert(schema_editor, encrypt=True)


def decrypt_existing(apps, schema_editor):
    _convert(schema_editor, encrypt=False)


def old_search_function(apps, schema_editor):
    schema_editor.execute(_old_search_function(), params=None)  # its SQL holds format() placeholders (%L)


class Migration(migrations.Migration):
    dependencies = [("leads", "0013_privacy_role")]

    operations = [
        migrations.RemoveIndex(model_name="lead", name="leads_email_idx"),
        migrations.AlterField(
            model_name="lead",
            name="email",
            field=security.fields.EncryptedTextField(blank=True, kind="email", null=True),
        ),
        migrations.AlterField(
            model_name="lead",
            name="phone",
            field=security.fields.EncryptedTextField(blank=True, help_text="E.164", kind="phone", null=True),
        ),
        migrations.AlterField(
            model_name="lead",
            name="do_not_contact_reason",
            field=security.fields.EncryptedTextField(blank=True, kind="notes", null=True),
        ),
        migrations.RunSQL(SEARCH_INDEX, reverse_sql=OLD_SEARCH_INDEX),
        migrations.RunSQL(SEARCH_FUNCTION, reverse_sql=migrations.RunSQL.noop),
        # Reversing puts 0004's function back (its text is read from that migration).
        migrations.RunPython(migrations.RunPython.noop, old_search_function),
        migrations.RunSQL(VIEW, reverse_sql=OLD_VIEW),
        migrations.RunSQL(UNSWEPT_INDEX, reverse_sql=DROP_UNSWEPT_INDEX),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]
