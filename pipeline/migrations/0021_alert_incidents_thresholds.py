"""Alert incidents a person can acknowledge (who, when, note) and snooze, and alert thresholds saved in the
database (`alert_thresholds`, winning over the environment's defaults) with every change kept
(`alert_threshold_changes`).

Both new tables are staff-only under row-level security, like `alerts` (pipeline 0002): only `service_role`
(staff requests, jobs) sees or writes them.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

# Staff-only, like the other pipeline tables: without a service context no row is visible.
RLS = """
ALTER TABLE alert_thresholds ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_thresholds_service_all ON alert_thresholds FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT ALL ON alert_thresholds TO service_role;
ALTER TABLE alert_threshold_changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_threshold_changes_service_all ON alert_threshold_changes FOR ALL TO service_role
  USING (true) WITH CHECK (true);
GRANT ALL ON alert_threshold_changes TO service_role;
"""

DROP_RLS = """
DROP POLICY IF EXISTS alert_threshold_changes_service_all ON alert_threshold_changes;
ALTER TABLE alert_threshold_changes DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON alert_threshold_changes FROM service_role;
DROP POLICY IF EXISTS alert_thresholds_service_all ON alert_thresholds;
ALTER TABLE alert_thresholds DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON alert_thresholds FROM service_role;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0020_upload_ops_console"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="acknowledge_note",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.AddField(
            model_name="alert",
            name="acknowledged_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="alert",
            name="acknowledged_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="alert",
            name="snoozed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="alert",
            name="snoozed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="AlertThreshold",
            fields=[
                (
                    "name",
                    models.CharField(
                        help_text="The setting it overrides, e.g. ALERT_DLQ_DEPTH",
                        max_length=64,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("value", models.FloatField()),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "updated_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "alert_thresholds",
            },
        ),
        migrations.CreateModel(
            name="AlertThresholdChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=64)),
                (
                    "old_value",
                    models.FloatField(blank=True, help_text="Empty: the environment's default applied", null=True),
                ),
                (
                    "new_value",
                    models.FloatField(blank=True, help_text="Empty: back to the environment's default", null=True),
                ),
                ("environment_default", models.FloatField(blank=True, null=True)),
                (
                    "changed_at",
                    models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "changed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "alert_threshold_changes",
                "ordering": ["-changed_at", "-id"],
                "indexes": [models.Index(fields=["name", "-changed_at"], name="alert_threshold_changes_idx")],
            },
        ),
        migrations.RunSQL(RLS, reverse_sql=DROP_RLS),
    ]
