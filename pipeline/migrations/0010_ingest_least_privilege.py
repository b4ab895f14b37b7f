"""The ingestion runs as `pipeline_writer` (least privilege), and an event about a lead names the lead's broker.

`pipeline_writer` reads the upload it processes and writes its progress, counts and outcome (column-level
UPDATE grants for `uploads` and `leads` come from pipeline/ingest/privileges.py after every migrate); reads
the brokers' territory rules (those columns only); releases the replay guard of an upload that failed, so
the partner can send the file again.

`pipeline_events`: a broker may add an event only about a lead assigned to them; the ingestion may not name
another broker than the lead's (a lead it has just created in the same statement is not visible to the check
yet, and passes; one whose broker it is assigning passes while the lead is still unassigned).
"""

from django.db import migrations

FORWARD = """
CREATE POLICY uploads_pipeline_select ON uploads FOR SELECT TO pipeline_writer USING (true);
CREATE POLICY uploads_pipeline_update ON uploads FOR UPDATE TO pipeline_writer
  USING (status <> 'done') WITH CHECK (true);
GRANT SELECT ON uploads TO pipeline_writer;

CREATE POLICY brokers_pipeline_select ON brokers FOR SELECT TO pipeline_writer USING (true);
GRANT SELECT (id, active, created_at, territory_states, territory_zip_prefixes) ON brokers TO pipeline_writer;

CREATE POLICY ingest_replay_guard_pipeline_release ON ingest_replay_guard FOR DELETE TO pipeline_writer
  USING (upload_id IN (SELECT id FROM uploads WHERE status = 'failed'));
GRANT DELETE ON ingest_replay_guard TO pipeline_writer;

DROP POLICY pipeline_events_broker_insert ON pipeline_events;
CREATE POLICY pipeline_events_broker_insert ON pipeline_events FOR INSERT TO authenticated
  WITH CHECK (
    broker_id = (SELECT auth.uid())
    AND (lead_id IS NULL OR EXISTS (
      SELECT 1 FROM leads l WHERE l.id = pipeline_events.lead_id AND l.assigned_broker_id = (SELECT auth.uid())
    ))
  );
DROP POLICY pipeline_events_pipeline_insert ON pipeline_events;
CREATE POLICY pipeline_events_pipeline_insert ON pipeline_events FOR INSERT TO pipeline_writer
  WITH CHECK (
    lead_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM leads l
       WHERE l.id = pipeline_events.lead_id AND l.assigned_broker_id IS NOT NULL
         AND l.assigned_broker_id IS DISTINCT FROM pipeline_events.broker_id
    )
  );
"""

BACKWARD = """
DROP POLICY pipeline_events_pipeline_insert ON pipeline_events;
CREATE POLICY pipeline_events_pipeline_insert ON pipeline_events FOR INSERT TO pipeline_writer WITH CHECK (true);
DROP POLICY pipeline_events_broker_insert ON pipeline_events;
CREATE POLICY pipeline_events_broker_insert ON pipeline_events FOR INSERT TO authenticated
  WITH CHECK (broker_id = (SELECT auth.uid()));
REVOKE DELETE ON ingest_replay_guard FROM pipeline_writer;
DROP POLICY ingest_replay_guard_pipeline_release ON ingest_replay_guard;
REVOKE SELECT ON brokers FROM pipeline_writer;
DROP POLICY brokers_pipeline_select ON brokers;
REVOKE SELECT, UPDATE ON uploads FROM pipeline_writer;
DROP POLICY uploads_pipeline_update ON uploads;
DROP POLICY uploads_pipeline_select ON uploads;
"""


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0009_replay_guard_per_partner"), ("security", "0003_partner_key_policies")]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)]
