"""The upload API answers partners as `pipeline_writer`, not `service_role`: it may add an upload (as received),
claim its content on the replay guard, note when a key was last used, read the brokers a key may route to, and
read the uploads and rejected rows it reports on. Its column-level UPDATE grants come from
pipeline/ingest/privileges.py (listed once, re-applied after every migrate). The key lookup itself (secrets) stays in
security/upload_verification.py, in a narrow service context of its own."""

from django.db import migrations

FORWARD = """
CREATE POLICY uploads_pipeline_insert ON uploads FOR INSERT TO pipeline_writer WITH CHECK (status = 'received');
GRANT INSERT ON uploads TO pipeline_writer;

-- A claim re-arms an expired guard (ON CONFLICT … DO UPDATE), and the new upload is named on its guard.
CREATE POLICY ingest_replay_guard_pipeline_claim ON ingest_replay_guard FOR UPDATE TO pipeline_writer
  USING (true) WITH CHECK (true);

CREATE POLICY partner_keys_pipeline_select ON partner_keys FOR SELECT TO pipeline_writer USING (true);
CREATE POLICY partner_keys_pipeline_used ON partner_keys FOR UPDATE TO pipeline_writer USING (true) WITH CHECK (true);
GRANT SELECT (id) ON partner_keys TO pipeline_writer;

CREATE POLICY partner_key_allowed_brokers_pipeline_select ON partner_key_allowed_brokers FOR SELECT
  TO pipeline_writer USING (true);
GRANT SELECT ON partner_key_allowed_brokers TO pipeline_writer;
"""

BACKWARD = """
REVOKE SELECT ON partner_key_allowed_brokers FROM pipeline_writer;
DROP POLICY partner_key_allowed_brokers_pipeline_select ON partner_key_allowed_brokers;
REVOKE SELECT (id) ON partner_keys FROM pipeline_writer;
DROP POLICY partner_keys_pipeline_used ON partner_keys;
DROP POLICY partner_keys_pipeline_select ON partner_keys;
DROP POLICY ingest_replay_guard_pipeline_claim ON ingest_replay_guard;
REVOKE INSERT ON uploads FROM pipeline_writer;
DROP POLICY uploads_pipeline_insert ON uploads;
"""


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0011_upload_enqueued_at")]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)]
