"""Contact windows per state and channel, and the owner's mailing address that decides an absentee owner's state.

- `contact_windows`: when a lead may be contacted on a channel, in the lead's local time. Seeded with the
  federal quiet hours (08:00 to 21:00, every day) for phone and SMS in the fifty states and DC; e-mail gets no
  rows (no window). Compliance keeps it current in the admin. Row-level security: staff (service_role) edit
  it; brokers' requests (authenticated) read it, because asking for a consent e-mail looks up the lead's
  window; nobody else sees it.
- `leads.mailing_address`, `mailing_city`, `mailing_state`, `mailing_zip`: PropStream's Mailing columns, merged
  like the property address (the first non-empty value stays). `pipeline_writer` may update them: its grants
  follow the column lists (leads/columns.py) after every migrate (pipeline/ingest/privileges.py). The staging
  table's four columns are the pipeline app's own migration (pipeline/migrations/0013).
- `upsert_lead()` (the seed's single-row upsert) takes the mailing columns too, so it still takes exactly the
  columns ingestion writes.
"""

from importlib import import_module

import django.contrib.postgres.fields
import django.db.models.functions.datetime
from django.db import migrations, models

import leads.models

# The fifty states and DC (leads/compliance/zones.py STATES when this was written).
STATES = (
    *("AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS"),
    *("KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC"),
    *("ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY"),
)
TERRITORIES = ("PR", "GU", "VI", "AS", "MP")
MAILING = ("mailing_address", "mailing_city", "mailing_state", "mailing_zip")


RLS = """
ALTER TABLE contact_windows ENABLE ROW LEVEL SECURITY;
CREATE POLICY contact_windows_service_all ON contact_windows FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT ALL ON contact_windows TO service_role;
CREATE POLICY contact_windows_broker_select ON contact_windows FOR SELECT TO authenticated USING (true);
GRANT SELECT ON contact_windows TO authenticated;
"""
DROP_RLS = """
REVOKE ALL ON contact_windows FROM service_role, authenticated;
DROP POLICY IF EXISTS contact_windows_broker_select ON contact_windows;
DROP POLICY IF EXISTS contact_windows_service_all ON contact_windows;
ALTER TABLE contact_windows DISABLE ROW LEVEL SECURITY;
"""

SEED_NOTE = "Federal quiet hours (47 CFR 64.1200(c)(1)): the seeded default, to be checked against the state law."
SEED = (
    'INSERT INTO contact_windows (state, channel, start, "end", days, closed_on_holidays, note) VALUES\n'
    + ",\n".join(
        f"  ('{state}', '{channel}', '08:00', '21:00', '{{0,1,2,3,4,5,6}}', false, '{SEED_NOTE}')"
        for state in STATES
        for channel in ("phone", "sms")
    )
    + ";"
)
UNSEED = "DELETE FROM contact_windows;"

# upsert_lead() as leads/migrations/0007 wrote it, with the four mailing parameters added after the co-owner.
_previous = import_module("leads.migrations.0007_dedupe_conflicts")
PREVIOUS_SIGNATURE = _previous.NEW_UPSERT_SIGNATURE
SIGNATURE = PREVIOUS_SIGNATURE.replace("integer, text, text)", "integer, text, text, text, text, text, text)")


def _edit(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"upsert_lead of migration 0007 no longer reads {old!r}")
    return text.replace(old, new)


UPSERT_LEAD = _previous.UPSERT_LEAD
for _old, _new in (
    (f"DROP FUNCTION IF EXISTS {_previous.OLD_UPSERT_SIGNATURE};", f"DROP FUNCTION IF EXISTS {PREVIOUS_SIGNATURE};"),
    (
        "  p_owner2_name text DEFAULT NULL\n) RETURNS uuid",
        "  p_owner2_name text DEFAULT NULL,\n"
        + ",\n".join(f"  p_{column} text DEFAULT NULL" for column in MAILING)
        + "\n) RETURNS uuid",
    ),
    (
        "        owner2_name = coalesce(nullif(owner2_name, ''), p_owner2_name),\n",
        "        owner2_name = coalesce(nullif(owner2_name, ''), p_owner2_name),\n"
        + "".join(f"        {column} = coalesce(nullif({column}, ''), p_{column}),\n" for column in MAILING),
    ),
    ("        lead_score, source, owner2_name\n", f"        lead_score, source, owner2_name, {', '.join(MAILING)}\n"),
    (
        "        p_owner2_name\n      )",
        f"        p_owner2_name, {', '.join(f'p_{column}' for column in MAILING)}\n      )",
    ),
    (f"REVOKE ALL ON FUNCTION {PREVIOUS_SIGNATURE}", f"REVOKE ALL ON FUNCTION {SIGNATURE}"),
    (f"GRANT EXECUTE ON FUNCTION {PREVIOUS_SIGNATURE}", f"GRANT EXECUTE ON FUNCTION {SIGNATURE}"),
):
    UPSERT_LEAD = _edit(UPSERT_LEAD, _old, _new)
# Back: drop this one and create 0007's again (its own DROP of the older signature finds nothing).
DROP_UPSERT_LEAD = f"DROP FUNCTION IF EXISTS {SIGNATURE};\n" + _previous.UPSERT_LEAD


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0010_staff_roles"),
    ]

    operations = [
        *(
            migrations.AddField(model_name="lead", name=name, field=models.TextField(blank=True, null=True))
            for name in ("mailing_address", "mailing_city")
        ),
        migrations.AddField(
            model_name="lead", name="mailing_state", field=models.CharField(blank=True, max_length=2, null=True)
        ),
        migrations.AddField(
            model_name="lead", name="mailing_zip", field=models.CharField(blank=True, max_length=10, null=True)
        ),
        migrations.CreateModel(
            name="ContactWindow",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "state",
                    models.CharField(
                        choices=[(code, code) for code in (*STATES, *TERRITORIES)],
                        help_text="The lead's state: where the owner gets their mail when that differs from the "
                        "property's state",
                        max_length=2,
                    ),
                ),
                (
                    "channel",
                    models.CharField(
                        choices=[("email", "e-mail"), ("sms", "text messages"), ("phone", "phone calls")],
                        max_length=8,
                    ),
                ),
                ("start", models.TimeField(help_text="Local time the window opens")),
                ("end", models.TimeField(help_text="Local time the window closes (not included)")),
                (
                    "days",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.SmallIntegerField(
                            choices=[
                                (0, "Monday"),
                                (1, "Tuesday"),
                                (2, "Wednesday"),
                                (3, "Thursday"),
                                (4, "Friday"),
                                (5, "Saturday"),
                                (6, "Sunday"),
                            ]
                        ),
                        default=leads.models.every_day,
                        help_text="Days it opens",
                        size=None,
                    ),
                ),
                (
                    "closed_on_holidays",
                    models.BooleanField(
                        default=False,
                        help_text="Closed on federal holidays (the day itself and the day it is observed)",
                    ),
                ),
                (
                    "note",
                    models.TextField(
                        blank=True,
                        default="",
                        help_text="The rule's source (statute) and when compliance last checked it",
                    ),
                ),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={
                "db_table": "contact_windows",
                "ordering": ["state", "channel"],
                "constraints": [
                    models.UniqueConstraint(fields=("state", "channel"), name="contact_windows_state_channel_uniq"),
                    models.CheckConstraint(
                        condition=models.Q(("start__lt", models.F("end"))), name="contact_windows_start_before_end"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("days__contained_by", [0, 1, 2, 3, 4, 5, 6]), ("days__len__gt", 0)),
                        name="contact_windows_days_chosen",
                    ),
                ],
            },
        ),
        migrations.RunSQL(RLS, reverse_sql=DROP_RLS),
        migrations.RunSQL(SEED, reverse_sql=UNSEED),
        migrations.RunSQL(UPSERT_LEAD, reverse_sql=DROP_UPSERT_LEAD),
    ]
