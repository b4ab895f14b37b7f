"""The feeder's holiday calendar (issue 16): `business_holidays`, one row per Los Angeles date on which the feeder
does not feed, seeded with the US federal holidays of 2020-2040 on the weekday they are observed
(pipeline/campaigns/calendar.py `us_federal_holidays`). Ops edit it in the admin (*Holidays*)."""

import django.db.models.functions.datetime
from django.db import migrations, models

SEED_YEARS = range(2020, 2041)

# Why: like the other staff-and-jobs tables (pipeline 0002), only service_role (staff, jobs) sees or writes it;
# brokers and anon get nothing, and the login role without a context reads no row.
RLS = """
ALTER TABLE business_holidays ENABLE ROW LEVEL SECURITY;
CREATE POLICY business_holidays_service_all ON business_holidays FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT ALL ON business_holidays TO service_role;
"""
RLS_REVERSE = """
DROP POLICY IF EXISTS business_holidays_service_all ON business_holidays;
ALTER TABLE business_holidays DISABLE ROW LEVEL SECURITY;
"""


def seed(apps, schema_editor):
    from pipeline.campaigns.calendar import us_federal_holidays

    holiday = apps.get_model("pipeline", "BusinessHoliday")
    rows = [holiday(day=day, name=name) for year in SEED_YEARS for day, name in us_federal_holidays(year)]
    holiday.objects.using(schema_editor.connection.alias).bulk_create(rows, ignore_conflicts=True)


def unseed(apps, schema_editor):
    apps.get_model("pipeline", "BusinessHoliday").objects.using(schema_editor.connection.alias).all().delete()


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0018_feeder_dry_runs")]

    operations = [
        migrations.CreateModel(
            name="BusinessHoliday",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(help_text="The Los Angeles date on which nothing is fed", unique=True)),
                ("name", models.CharField(max_length=200)),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={"verbose_name": "holiday", "db_table": "business_holidays"},
        ),
        migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE),
        migrations.RunPython(seed, unseed),
    ]
