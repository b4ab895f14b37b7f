"""Possible duplicates (pairs of leads that may be one property, for a person to decide), the upload's
new counts (`possible_duplicates`, `blank_lines`, `unrecognised_columns`), the staged co-owner, and the DLQ
source `review` (a decision a person must make, e.g. a new owner on a lead the old owner asked not to contact).

`possible_duplicates` is staff-only under row-level security, like the other pipeline tables; the
ingestion (`pipeline_writer`) may add pairs and read them.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

RLS = """
ALTER TABLE possible_duplicates ENABLE ROW LEVEL SECURITY;
CREATE POLICY possible_duplicates_service_all ON possible_duplicates FOR ALL TO service_role
  USING (true) WITH CHECK (true);
GRANT ALL ON possible_duplicates TO service_role;
CREATE POLICY possible_duplicates_pipeline_select ON possible_duplicates FOR SELECT TO pipeline_writer USING (true);
CREATE POLICY possible_duplicates_pipeline_insert ON possible_duplicates FOR INSERT TO pipeline_writer
  WITH CHECK (true);
GRANT SELECT, INSERT ON possible_duplicates TO pipeline_writer;
"""

DROP_RLS = """
DROP POLICY IF EXISTS possible_duplicates_pipeline_insert ON possible_duplicates;
DROP POLICY IF EXISTS possible_duplicates_pipeline_select ON possible_duplicates;
DROP POLICY IF EXISTS possible_duplicates_service_all ON possible_duplicates;
ALTER TABLE possible_duplicates DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON possible_duplicates FROM service_role, pipeline_writer;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0007_dedupe_conflicts"),
        ("pipeline", "0007_dlq_sources"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="leadstaging",
            name="owner2_name",
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="upload",
            name="columns",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.TextField(),
                blank=True,
                default=list,
                help_text="The file's header, in order",
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="upload",
            name="blank_lines",
            field=models.IntegerField(default=0, help_text="Blank lines in the file (not part of rows_total)"),
        ),
        migrations.AddField(
            model_name="upload",
            name="possible_duplicates",
            field=models.IntegerField(default=0, help_text="Pairs of leads this upload put up for review"),
        ),
        migrations.AddField(
            model_name="upload",
            name="unrecognised_columns",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.TextField(),
                blank=True,
                default=list,
                help_text="Columns we do not map (kept in the raw rows)",
                size=None,
            ),
        ),
        migrations.AlterField(
            model_name="pipelinedlq",
            name="source",
            field=models.CharField(
                choices=[
                    ("upload_row", "Upload Row"),
                    ("upload", "Upload"),
                    ("instantly_push", "Instantly Push"),
                    ("webhook", "Webhook"),
                    ("review", "Review"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="PossibleDuplicate",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key", models.CharField(help_text="The key they share: mak, apn or addr_hash", max_length=16)),
                ("reason", models.TextField()),
                (
                    "status",
                    models.CharField(
                        choices=[("open", "Open"), ("merged", "Merged"), ("kept_apart", "Kept Apart")],
                        default="open",
                        max_length=16,
                    ),
                ),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("note", models.TextField(blank=True, default="")),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "decided_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "lead_a",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="leads.lead"),
                ),
                (
                    "lead_b",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="leads.lead"),
                ),
                (
                    "survivor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="leads.lead",
                    ),
                ),
                (
                    "upload",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="pipeline.upload",
                    ),
                ),
            ],
            options={
                "db_table": "possible_duplicates",
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["status", "created_at"], name="possible_duplicates_status_idx"),
                    models.Index(fields=["lead_b"], name="possible_duplicates_lead_b_idx"),
                    models.Index(fields=["upload"], name="possible_duplicates_upload_idx"),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("lead_a", "lead_b"), name="possible_duplicates_pair_uniq"),
                    models.CheckConstraint(
                        condition=models.Q(("lead_a__lt", models.F("lead_b"))), name="possible_duplicates_ordered"
                    ),
                ],
            },
        ),
        migrations.RunSQL(RLS, reverse_sql=DROP_RLS),
    ]
