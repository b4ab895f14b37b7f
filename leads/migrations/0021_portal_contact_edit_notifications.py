"""The broker portal's contact edit and notifications (issue 15).

- `leads.email_unconfirmed`, `leads.phone_unconfirmed`: a contact point a broker typed is not confirmed, so
  `mv_contactable_leads` leaves the lead out until a partner file or a verification confirms it (RunSQL: the
  view is SQL; its reverse is migration 0014's view). Constant defaults: added without rewriting the table.
- `broker_portal_settings`: a broker's own row (notifications on/off, the list's columns); RLS lets a broker read
  and write only their own.
- `broker_notifications`: a row per reply, appointment or consent of a broker's lead, added by a trigger on
  `pipeline_events` (whoever records the event: the webhooks, the consent page, the portal), so the batch job
  never misses one that committed late. The trigger's function is SECURITY DEFINER: the roles that record events
  need no right on the table. A broker reads their own rows and marks them seen.
"""

import importlib

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models

_0020 = importlib.import_module("leads.migrations.0020_contactable_active_brokers")
VERIFIED = "   AND (email_verified OR phone_verified)\n"
assert VERIFIED in _0020.VIEW
# The view of 0020 (active brokers only), and a broker-typed contact point keeps the lead out (the feeder's live
# check says the same: leads/querysets.py `contactable`).
VIEW = _0020.VIEW.replace(VERIFIED, VERIFIED + "   AND NOT email_unconfirmed AND NOT phone_unconfirmed\n")

POLICIES = """
ALTER TABLE broker_portal_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY broker_portal_settings_own ON broker_portal_settings FOR ALL TO authenticated
  USING (broker_id = (SELECT auth.uid())) WITH CHECK (broker_id = (SELECT auth.uid()));
CREATE POLICY broker_portal_settings_service ON broker_portal_settings FOR ALL TO service_role
  USING (true) WITH CHECK (true);
REVOKE ALL ON broker_portal_settings FROM PUBLIC, anon, authenticated, service_role, pipeline_writer;
GRANT SELECT, INSERT, UPDATE ON broker_portal_settings TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON broker_portal_settings TO service_role;

ALTER TABLE broker_notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY broker_notifications_own_select ON broker_notifications FOR SELECT TO authenticated
  USING (broker_id = (SELECT auth.uid()));
CREATE POLICY broker_notifications_own_seen ON broker_notifications FOR UPDATE TO authenticated
  USING (broker_id = (SELECT auth.uid())) WITH CHECK (broker_id = (SELECT auth.uid()));
CREATE POLICY broker_notifications_service ON broker_notifications FOR ALL TO service_role
  USING (true) WITH CHECK (true);
REVOKE ALL ON broker_notifications FROM PUBLIC, anon, authenticated, service_role, pipeline_writer;
GRANT SELECT ON broker_notifications TO authenticated;
GRANT UPDATE (seen_at) ON broker_notifications TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON broker_notifications TO service_role;
GRANT USAGE ON SEQUENCE broker_notifications_id_seq TO service_role;
"""
DROP_POLICIES = """
DROP POLICY IF EXISTS broker_notifications_service ON broker_notifications;
DROP POLICY IF EXISTS broker_notifications_own_seen ON broker_notifications;
DROP POLICY IF EXISTS broker_notifications_own_select ON broker_notifications;
ALTER TABLE broker_notifications DISABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS broker_portal_settings_service ON broker_portal_settings;
DROP POLICY IF EXISTS broker_portal_settings_own ON broker_portal_settings;
ALTER TABLE broker_portal_settings DISABLE ROW LEVEL SECURITY;
"""

# The event types a broker is told about (leads/notifications.py NOTIFIED_EVENTS says the same; a test checks).
TRIGGER = """
CREATE OR REPLACE FUNCTION broker_notification_add() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  INSERT INTO broker_notifications (event_id, broker_id, lead_id, event_type, created_at)
  SELECT NEW.id, NEW.broker_id, NEW.lead_id, NEW.event_type, NEW.created_at
   WHERE EXISTS (SELECT 1 FROM brokers b WHERE b.id = NEW.broker_id)
  ON CONFLICT (event_id) DO NOTHING;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION broker_notification_add() FROM PUBLIC;
-- WHEN: every other event (the ingestion's millions) costs one comparison, no function call.
CREATE TRIGGER trg_broker_notification_add AFTER INSERT ON pipeline_events FOR EACH ROW
  WHEN (NEW.event_type IN ('email_replied', 'appointment_booked', 'consent_given')
        AND NEW.status = 'success' AND NEW.broker_id IS NOT NULL AND NEW.lead_id IS NOT NULL)
  EXECUTE FUNCTION broker_notification_add();
"""
DROP_TRIGGER = """
DROP TRIGGER IF EXISTS trg_broker_notification_add ON pipeline_events;
DROP FUNCTION IF EXISTS broker_notification_add();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0020_contactable_active_brokers"),
        ("security", "0004_broker_time_zone"),
    ]

    operations = [
        migrations.CreateModel(
            name="BrokerPortalSettings",
            fields=[
                (
                    "broker",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="security.broker",
                    ),
                ),
                ("notify_by_email", models.BooleanField(db_default=True, default=True)),
                (
                    "list_columns",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), blank=True, db_default=models.Value([]), default=list, size=None
                    ),
                ),
                ("notifications_mailed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={
                "verbose_name_plural": "broker portal settings",
                "db_table": "broker_portal_settings",
            },
        ),
        migrations.AddField(
            model_name="lead",
            name="email_unconfirmed",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.AddField(
            model_name="lead",
            name="phone_unconfirmed",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.CreateModel(
            name="BrokerNotification",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("event_id", models.BigIntegerField(unique=True)),
                ("lead_id", models.UUIDField()),
                ("event_type", models.CharField(max_length=64)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
                ("mailed_at", models.DateTimeField(blank=True, null=True)),
                ("seen_at", models.DateTimeField(blank=True, null=True)),
                (
                    "broker",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="security.broker",
                    ),
                ),
            ],
            options={
                "db_table": "broker_notifications",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(fields=["broker", "-created_at"], name="broker_notifications_idx"),
                    models.Index(
                        condition=models.Q(("mailed_at__isnull", True)),
                        fields=["broker", "created_at"],
                        name="broker_notifications_unmailed",
                    ),
                ],
            },
        ),
        migrations.RunSQL(VIEW, reverse_sql=_0020.VIEW),
        migrations.RunSQL(POLICIES, reverse_sql=DROP_POLICIES),
        migrations.RunSQL(TRIGGER, reverse_sql=DROP_TRIGGER),
    ]
