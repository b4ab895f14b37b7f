"""Follow-up tasks (`lead_follow_ups`) and saved list views (`portal_saved_views`), a broker's own rows.

Row-level security like the neighbouring broker-scoped tables (consent_tokens, pipeline_events): a broker
(`authenticated`) reads and writes only rows naming themselves, and a follow-up only about a lead assigned to
them (the EXISTS is itself filtered by the leads policies); `service_role` (staff, jobs) everything. RunSQL
because Django cannot declare policies; the reverse drops them.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models

POLICIES = """
ALTER TABLE lead_follow_ups ENABLE ROW LEVEL SECURITY;
CREATE POLICY lead_follow_ups_broker_select ON lead_follow_ups FOR SELECT TO authenticated
  USING (broker_id = (SELECT auth.uid()));
CREATE POLICY lead_follow_ups_broker_insert ON lead_follow_ups FOR INSERT TO authenticated
  WITH CHECK (broker_id = (SELECT auth.uid())
              AND EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id AND l.assigned_broker_id = (SELECT auth.uid())));
CREATE POLICY lead_follow_ups_broker_update ON lead_follow_ups FOR UPDATE TO authenticated
  USING (broker_id = (SELECT auth.uid()))
  WITH CHECK (broker_id = (SELECT auth.uid()));
CREATE POLICY lead_follow_ups_service_all ON lead_follow_ups FOR ALL TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON lead_follow_ups FROM PUBLIC, anon, authenticated, pipeline_writer;
GRANT SELECT, INSERT, UPDATE ON lead_follow_ups TO authenticated;
GRANT ALL ON lead_follow_ups TO service_role;

ALTER TABLE portal_saved_views ENABLE ROW LEVEL SECURITY;
CREATE POLICY portal_saved_views_broker_all ON portal_saved_views FOR ALL TO authenticated
  USING (broker_id = (SELECT auth.uid()))
  WITH CHECK (broker_id = (SELECT auth.uid()));
CREATE POLICY portal_saved_views_service_all ON portal_saved_views FOR ALL TO service_role
  USING (true) WITH CHECK (true);
REVOKE ALL ON portal_saved_views FROM PUBLIC, anon, authenticated, pipeline_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON portal_saved_views TO authenticated;
GRANT ALL ON portal_saved_views TO service_role;
"""

DROP_POLICIES = """
REVOKE ALL ON portal_saved_views FROM anon, authenticated, service_role, pipeline_writer;
DROP POLICY IF EXISTS portal_saved_views_service_all ON portal_saved_views;
DROP POLICY IF EXISTS portal_saved_views_broker_all ON portal_saved_views;
ALTER TABLE portal_saved_views DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON lead_follow_ups FROM anon, authenticated, service_role, pipeline_writer;
DROP POLICY IF EXISTS lead_follow_ups_service_all ON lead_follow_ups;
DROP POLICY IF EXISTS lead_follow_ups_broker_update ON lead_follow_ups;
DROP POLICY IF EXISTS lead_follow_ups_broker_insert ON lead_follow_ups;
DROP POLICY IF EXISTS lead_follow_ups_broker_select ON lead_follow_ups;
ALTER TABLE lead_follow_ups DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0018_rule_score_in_sql"),
        ("security", "0004_broker_time_zone"),
    ]

    operations = [
        migrations.CreateModel(
            name="FollowUp",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("due_date", models.DateField()),
                ("note", models.TextField(blank=True, db_default="", default="")),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        default=django.utils.timezone.now,
                        editable=False,
                    ),
                ),
                ("done_at", models.DateTimeField(blank=True, null=True)),
                (
                    "broker",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="follow_ups", to="security.broker"
                    ),
                ),
                (
                    "lead",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="follow_ups", to="leads.lead"
                    ),
                ),
            ],
            options={
                "db_table": "lead_follow_ups",
                "ordering": ["due_date", "id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("done_at__isnull", True)),
                        fields=["broker", "due_date"],
                        name="lead_follow_ups_open_idx",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="SavedView",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=80)),
                (
                    "query",
                    models.TextField(blank=True, db_default="", default="", help_text="The list's query string"),
                ),
                ("is_default", models.BooleanField(db_default=False, default=False)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        default=django.utils.timezone.now,
                        editable=False,
                    ),
                ),
                (
                    "broker",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="saved_views", to="security.broker"
                    ),
                ),
            ],
            options={
                "db_table": "portal_saved_views",
                "ordering": ["name", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("broker", "name"), name="portal_saved_views_name_uniq"),
                    models.UniqueConstraint(
                        condition=models.Q(("is_default", True)),
                        fields=("broker",),
                        name="portal_saved_views_one_default",
                    ),
                ],
            },
        ),
        migrations.RunSQL(POLICIES, reverse_sql=DROP_POLICIES),
    ]
