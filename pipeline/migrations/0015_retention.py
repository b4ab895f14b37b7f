"""The event trail's part in erasure and retention, through `privacy_officer` as the audit tables' (leads 0013).

`pipeline_events` is written by staff and jobs as `service_role`, which still holds UPDATE and DELETE on it
(tests and repairs age or fix events); the privacy command and the retention job do not use that: they change
events only through these SECURITY DEFINER functions, granted to `privacy_officer` alone, so the one role that
rewrites audit data does so in one audited way.

- `pipeline_events_erase(lead ids, needles)`: events about those leads, or whose detail or error mentions the
  person, keep their type, status, time, broker and upload; the lead id becomes `privacy_pseudonym(lead id)`
  and the detail `{"redacted": "erasure"}`, the error message is dropped.
- `pipeline_events_expire_detail(days)`: events older than that many days keep their row, with the detail emptied
  and the error message dropped (the row still counts in the funnel and the history).
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION pipeline_events_erase(p_lead_ids uuid[], p_needles text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  changed integer;
BEGIN
  UPDATE pipeline_events
     SET lead_id = CASE WHEN lead_id = ANY(p_lead_ids) THEN privacy_pseudonym(lead_id) ELSE lead_id END,
         event_data = '{"redacted": "erasure"}'::jsonb,
         error_message = NULL
   WHERE lead_id = ANY(p_lead_ids)
      OR privacy_mentions(event_data::text, p_needles)
      OR privacy_mentions(error_message, p_needles);
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END
$$;

CREATE OR REPLACE FUNCTION pipeline_events_expire_detail(p_keep_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  emptied integer;
BEGIN
  UPDATE pipeline_events SET event_data = '{}'::jsonb, error_message = NULL
   WHERE created_at < now() - make_interval(days => greatest(p_keep_days, 1)) AND (event_data <> '{}'::jsonb OR error_message IS NOT NULL);
  GET DIAGNOSTICS emptied = ROW_COUNT;
  RETURN emptied;
END
$$;

REVOKE ALL ON FUNCTION pipeline_events_erase(uuid[], text[]), pipeline_events_expire_detail(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pipeline_events_erase(uuid[], text[]), pipeline_events_expire_detail(integer)
  TO privacy_officer;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS pipeline_events_expire_detail(integer);
DROP FUNCTION IF EXISTS pipeline_events_erase(uuid[], text[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("equity_connect", "0002_throttle"),
        ("leads", "0013_privacy_role"),
        ("pipeline", "0014_staging_blind_indexes"),
    ]

    # privacy_officer and privacy_pseudonym()/privacy_mentions() come from leads 0013.
    operations = [migrations.RunSQL(FUNCTIONS, reverse_sql=DROP_FUNCTIONS)]
