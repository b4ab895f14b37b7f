"""The suppression list (`suppressions`), the DNC registry (`dnc_registry_numbers`, `dnc_registry_imports`), each
lead's marks (`suppressed_channels`) and the stamp of its last owner change (`owner_changed_at`); their
row-level security, and the two owner functions the DNC import uses to rebuild the registry's indexes."""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0014_pii_encryption"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="DncRegistryImport",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "imported_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
                ("filename", models.TextField()),
                ("deletions_filename", models.TextField(blank=True, db_default="", default="")),
                ("replace", models.BooleanField(default=False, help_text="The file was the whole registry")),
                ("numbers_in_file", models.BigIntegerField(default=0)),
                ("numbers_deleted", models.BigIntegerField(default=0)),
                (
                    "numbers_total",
                    models.BigIntegerField(default=0, help_text="Numbers in the registry after the import"),
                ),
                ("leads_marked", models.IntegerField(default=0, help_text="Leads whose marks changed")),
                ("duration_ms", models.IntegerField(default=0)),
                ("imported_by", models.TextField(blank=True, db_default="", default="")),
            ],
            options={
                "db_table": "dnc_registry_imports",
                "ordering": ["-imported_at", "-id"],
            },
        ),
        migrations.AddField(
            model_name="lead",
            name="owner_changed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="lead",
            name="suppressed_channels",
            field=models.JSONField(
                blank=True, db_default=models.Value({}, models.JSONField()), default=dict, editable=False
            ),
        ),
        migrations.CreateModel(
            name="DncRegistryNumber",
            fields=[
                ("number", models.BigIntegerField(primary_key=True, serialize=False)),
                ("phone_bidx", models.CharField(max_length=40)),
            ],
            options={
                "db_table": "dnc_registry_numbers",
                "indexes": [models.Index(fields=["phone_bidx"], name="dnc_registry_numbers_bidx_idx")],
            },
        ),
        migrations.CreateModel(
            name="Suppression",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("email", "e-mail address"),
                            ("email_domain", "e-mail domain"),
                            ("phone", "phone number (E.164)"),
                            ("address", "property address (address hash)"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "value_indexes",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=80),
                        help_text="Blind indexes (every version) or hash",
                        size=None,
                    ),
                ),
                ("value_encrypted", models.TextField(blank=True, db_default="", default="", editable=False)),
                ("label", models.TextField(blank=True, db_default="", default="", help_text="Masked, for people")),
                (
                    "reason",
                    models.CharField(
                        choices=[
                            ("unsubscribe", "Unsubscribe"),
                            ("bounce", "Bounce"),
                            ("complaint", "Complaint"),
                            ("dnc_registry", "DNC registry"),
                            ("litigator", "litigator list"),
                            ("customer_request", "customer request"),
                            ("manual", "Manual"),
                            ("erasure", "erased person"),
                        ],
                        max_length=24,
                    ),
                ),
                (
                    "channels",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=8), help_text="email, sms, phone", size=None
                    ),
                ),
                (
                    "source",
                    models.TextField(
                        help_text="Where it came from, e.g. instantly_webhook, unsubscribe_link, csv:file"
                    ),
                ),
                ("note", models.TextField(blank=True, db_default="", default="")),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        default=django.utils.timezone.now,
                        editable=False,
                    ),
                ),
                (
                    "created_by_name",
                    models.TextField(blank=True, db_default="", default="", help_text="Who, at the time"),
                ),
                ("removed_at", models.DateTimeField(blank=True, null=True)),
                ("removed_by_name", models.TextField(blank=True, db_default="", default="")),
                ("removed_note", models.TextField(blank=True, db_default="", default="")),
                ("instantly_synced_at", models.DateTimeField(blank=True, editable=False, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "suppressions",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    django.contrib.postgres.indexes.GinIndex(fields=["value_indexes"], name="suppressions_value_idx"),
                    models.Index(
                        condition=models.Q(("instantly_synced_at__isnull", True), ("removed_at__isnull", True)),
                        fields=["id"],
                        name="suppressions_unsynced_idx",
                    ),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("kind__in", ["email", "email_domain", "phone", "address"])),
                        name="suppressions_kind",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "reason__in",
                                [
                                    "unsubscribe",
                                    "bounce",
                                    "complaint",
                                    "dnc_registry",
                                    "litigator",
                                    "customer_request",
                                    "manual",
                                    "erasure",
                                ],
                            )
                        ),
                        name="suppressions_reason",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("channels__contained_by", ["email", "sms", "phone"]), ("channels__len__gt", 0)
                        ),
                        name="suppressions_channels_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("channels__contains", ["email"]),
                            ("reason__in", ["dnc_registry", "litigator"]),
                            _negated=True,
                        ),
                        name="suppressions_dnc_never_email",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("reason__in", ["unsubscribe", "bounce"]), _negated=True),
                            ("channels", ["email"]),
                            _connector="OR",
                        ),
                        name="suppressions_email_reasons_email_only",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("value_indexes__len__gt", 0)), name="suppressions_has_value"
                    ),
                ],
            },
        ),
    ]


# Row-level security: staff and jobs (service_role) read and write the list; the ingestion (pipeline_writer)
# reads it to mark and reject rows; brokers never read it (the portal shows a lead's own `suppressed_channels`).
FORWARD = """
ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
CREATE POLICY suppressions_service_all ON suppressions FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY suppressions_pipeline_select ON suppressions FOR SELECT TO pipeline_writer USING (true);
ALTER TABLE dnc_registry_numbers ENABLE ROW LEVEL SECURITY;
CREATE POLICY dnc_registry_numbers_service_all ON dnc_registry_numbers FOR ALL TO service_role
  USING (true) WITH CHECK (true);
CREATE POLICY dnc_registry_numbers_pipeline_select ON dnc_registry_numbers FOR SELECT TO pipeline_writer
  USING (true);
ALTER TABLE dnc_registry_imports ENABLE ROW LEVEL SECURITY;
CREATE POLICY dnc_registry_imports_service_all ON dnc_registry_imports FOR ALL TO service_role
  USING (true) WITH CHECK (true);
REVOKE ALL ON suppressions, dnc_registry_numbers, dnc_registry_imports FROM PUBLIC, anon, authenticated;
GRANT ALL ON suppressions, dnc_registry_numbers, dnc_registry_imports TO service_role;
GRANT SELECT ON suppressions, dnc_registry_numbers TO pipeline_writer;

-- The DNC import's loading table: UNLOGGED (no WAL: each import fills it and empties it again in its own
-- transaction) and without indexes, so its COPY runs at full speed. No row-level security (COPY refuses it, as
-- for leads_staging): only service_role holds any privilege on it, and it holds public numbers only.
CREATE UNLOGGED TABLE dnc_registry_load (number bigint NOT NULL, phone_bidx text, deleted boolean NOT NULL);
REVOKE ALL ON dnc_registry_load FROM PUBLIC, anon, authenticated, pipeline_writer;
GRANT ALL ON dnc_registry_load TO service_role;

-- The DNC import loads millions of numbers: building the two indexes once after the load is ~5x faster than
-- keeping them up to date row by row. Dropping and creating an index needs the table's owner, so these two
-- functions run as the owner (SECURITY DEFINER) and only service_role may call them; they touch nothing else.
CREATE OR REPLACE FUNCTION dnc_registry_indexes_drop() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  LOCK TABLE dnc_registry_numbers IN ACCESS EXCLUSIVE MODE;
  DROP INDEX IF EXISTS dnc_registry_numbers_bidx_idx;
  ALTER TABLE dnc_registry_numbers DROP CONSTRAINT IF EXISTS dnc_registry_numbers_pkey;
END
$$;
CREATE OR REPLACE FUNCTION dnc_registry_indexes_create() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'dnc_registry_numbers_pkey') THEN
    ALTER TABLE dnc_registry_numbers ADD CONSTRAINT dnc_registry_numbers_pkey PRIMARY KEY (number);
  END IF;
  CREATE INDEX IF NOT EXISTS dnc_registry_numbers_bidx_idx ON dnc_registry_numbers (phone_bidx);
  ANALYZE dnc_registry_numbers;
END
$$;
REVOKE ALL ON FUNCTION dnc_registry_indexes_drop(), dnc_registry_indexes_create() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dnc_registry_indexes_drop(), dnc_registry_indexes_create() TO service_role;

-- Leads whose owner changed before this migration: the stamp from their last `lead_owner_changed` event.
UPDATE leads l SET owner_changed_at = e.at
  FROM (SELECT lead_id, max(created_at) AS at FROM pipeline_events
         WHERE event_type = 'lead_owner_changed' AND lead_id IS NOT NULL GROUP BY lead_id) e
 WHERE l.id = e.lead_id;
"""

BACKWARD = """
DROP TABLE IF EXISTS dnc_registry_load;
DROP FUNCTION IF EXISTS dnc_registry_indexes_create();
DROP FUNCTION IF EXISTS dnc_registry_indexes_drop();
REVOKE ALL ON suppressions, dnc_registry_numbers, dnc_registry_imports FROM service_role, pipeline_writer;
DROP POLICY IF EXISTS dnc_registry_imports_service_all ON dnc_registry_imports;
DROP POLICY IF EXISTS dnc_registry_numbers_pipeline_select ON dnc_registry_numbers;
DROP POLICY IF EXISTS dnc_registry_numbers_service_all ON dnc_registry_numbers;
DROP POLICY IF EXISTS suppressions_pipeline_select ON suppressions;
DROP POLICY IF EXISTS suppressions_service_all ON suppressions;
"""

Migration.operations.append(migrations.RunSQL(FORWARD, reverse_sql=BACKWARD))
