"""Access records ("who saw what"): a row for each lead a person viewed, changed or revealed, and one for each
export. Nobody rewrites them, as with consent records (0008): a trigger refuses UPDATE and DELETE to every role
but the table's owner, and no role but the owner holds UPDATE, DELETE or TRUNCATE (equity_connect/grants.py
revokes them again after every migrate). The lead and the user are plain ids: a record outlives both.

Row-level security: a broker (`authenticated`) may only insert records that name themselves, as broker and as
that broker's user, and reads none; `service_role` (staff) reads and inserts every record.
"""

import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models

APPEND_ONLY = """
-- Not SECURITY DEFINER: current_user is the role the statement runs as (after SET ROLE).
CREATE OR REPLACE FUNCTION lead_access_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_user::text = (SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = TG_RELID) THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'access records are append-only: % on lead_access_records is refused', TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'Only the table owner may change or delete an access record.';
END
$$;
CREATE TRIGGER trg_lead_access_records_append_only
  BEFORE UPDATE OR DELETE ON lead_access_records
  FOR EACH ROW EXECUTE FUNCTION lead_access_records_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS trg_lead_access_records_append_only ON lead_access_records;
DROP FUNCTION IF EXISTS lead_access_records_append_only();
"""

POLICIES = """
ALTER TABLE lead_access_records ENABLE ROW LEVEL SECURITY;
-- A broker names themselves: their broker id and their own user (brokers may read their own brokers row).
CREATE POLICY lead_access_records_broker_insert ON lead_access_records FOR INSERT TO authenticated
  WITH CHECK (broker_id = (SELECT auth.uid())
              AND user_id = (SELECT b.user_id FROM brokers b WHERE b.id = (SELECT auth.uid())));
CREATE POLICY lead_access_records_service_select ON lead_access_records FOR SELECT TO service_role USING (true);
CREATE POLICY lead_access_records_service_insert ON lead_access_records FOR INSERT TO service_role
  WITH CHECK (true);
REVOKE ALL ON lead_access_records FROM PUBLIC, anon, authenticated, service_role, pipeline_writer;
GRANT INSERT ON lead_access_records TO authenticated;
GRANT SELECT, INSERT ON lead_access_records TO service_role;
GRANT USAGE ON SEQUENCE lead_access_records_id_seq TO authenticated, service_role;
"""

DROP_POLICIES = """
REVOKE ALL ON lead_access_records FROM anon, authenticated, service_role, pipeline_writer;
DROP POLICY IF EXISTS lead_access_records_service_insert ON lead_access_records;
DROP POLICY IF EXISTS lead_access_records_service_select ON lead_access_records;
DROP POLICY IF EXISTS lead_access_records_broker_insert ON lead_access_records;
ALTER TABLE lead_access_records DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0008_consent_per_channel"),
        ("security", "0002_broker"),
    ]

    operations = [
        migrations.CreateModel(
            name="LeadAccessRecord",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        default=django.utils.timezone.now,
                        editable=False,
                    ),
                ),
                ("user_id", models.IntegerField(help_text="The Django user")),
                (
                    "username",
                    models.TextField(blank=True, db_default="", default="", help_text="Their login name at the time"),
                ),
                ("broker_id", models.UUIDField(blank=True, help_text="When the user is a broker", null=True)),
                (
                    "action",
                    models.CharField(
                        choices=[("view", "View"), ("export", "Export"), ("change", "Change"), ("reveal", "Reveal")],
                        max_length=8,
                    ),
                ),
                ("via", models.CharField(help_text="The page or export, e.g. portal.lead_detail", max_length=64)),
                ("lead_id", models.UUIDField(blank=True, help_text="None for an export", null=True)),
                (
                    "filters",
                    models.JSONField(blank=True, db_default=models.Value({}, models.JSONField()), default=dict),
                ),
                ("row_count", models.IntegerField(blank=True, help_text="Rows an export held", null=True)),
                ("reason", models.TextField(blank=True, db_default="", default="", help_text="Why PII was revealed")),
                (
                    "detail",
                    models.JSONField(blank=True, db_default=models.Value({}, models.JSONField()), default=dict),
                ),
                ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.TextField(blank=True, db_default="", default="")),
            ],
            options={
                "db_table": "lead_access_records",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("lead_id__isnull", False)),
                        fields=["lead_id", "-created_at"],
                        name="lead_access_lead_idx",
                    ),
                    models.Index(fields=["user_id", "-created_at"], name="lead_access_user_idx"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("action__in", ["view", "export", "change", "reveal"])),
                        name="lead_access_records_action_valid",
                    )
                ],
            },
        ),
        migrations.RunSQL(APPEND_ONLY, reverse_sql=DROP_APPEND_ONLY),
        migrations.RunSQL(POLICIES, reverse_sql=DROP_POLICIES),
    ]
