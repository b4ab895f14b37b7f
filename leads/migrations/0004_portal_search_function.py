"""The broker portal's search under row-level security.

Row-level security stops PostgreSQL from using an index for a *non-leakproof* operator of the query
(such as `ILIKE`, or `=` on an enum) before the policy's own condition has been applied: a broker's
`ILIKE '%smith%'` scans all of the broker's rows (~100+ ms at 50k leads) and never uses the index of 0003.

`portal_lead_search(filters, sort, limit, offset)` returns the ids of one page of the *calling broker's*
matching leads, each with the total number of matches. It runs the query with every index usable: it is
SECURITY DEFINER (it runs as the table owner), and narrow on purpose:
- it only ever looks at leads with `assigned_broker_id = auth.uid()` — the same condition as the RLS
  policy, read from the same request claims; with no claims it returns nothing;
- it returns ids and a count only; the portal then reads the rows through RLS as usual (by id, with
  the broker scope and the filters applied again), so RLS stays the second wall;
- only `authenticated` (brokers) may execute it; the filter values are quoted with `format('%L')` and
  the sort is a fixed list, so nothing from the request becomes SQL text.
`filters` is JSON: `pattern_groups` (a list of lists of ILIKE patterns: every pattern of a group must
match, any group may), `statuses`, `email_verified`, `phone_verified`, `consent` (booleans),
`score_min`, `score_max`, `created_from`, `created_before` (timestamps). The text expression must stay
identical to `leads.selectors.SEARCH_EXPRESSION` (a test checks it).
"""

from django.db import migrations

SEARCH_EXPRESSION = (
    "(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(property_address, '')"
    " || ' ' || coalesce(property_city, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, '')"
    " || ' ' || coalesce(apn, ''))"
)
# Inside the function's SQL string literal, every quote is doubled.
QUOTED_EXPRESSION = SEARCH_EXPRESSION.replace("'", "''")

CREATE = f"""
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
    IF cardinality(v_groups) > 0 THEN
      v_where := v_where || ' AND (' || array_to_string(v_groups, ' OR ') || ')';
    END IF;
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

DROP = """
DROP FUNCTION IF EXISTS portal_lead_search(jsonb, text, integer, integer);
DROP FUNCTION IF EXISTS portal_lead_search_where(jsonb);
"""


class Migration(migrations.Migration):
    dependencies = [("leads", "0003_portal_search")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
