"""`mv_contactable_leads` keeps only leads of active brokers (issue 16: offboarding); the DNC registry imports'
name in the admin.

The feeder already re-checks each candidate live (`assigned_broker__active`), so this is not the only wall; but
with a deactivated broker's leads in the view, the feeder read them page after page only to drop them, and the
"ready" count the dead-man's switch compares with the leads fed counted leads that could never be fed. The view's
columns and indexes are 0014's, unchanged; the broker test is a semi-join on `brokers` (a few rows), which adds no
column to the concurrent refresh's row comparison. A broker made active again is back at the next refresh (05:30,
before the 06:00 feed).
"""

import importlib

from django.db import migrations

_0014 = importlib.import_module("leads.migrations.0014_pii_encryption")

COLUMNS = (
    "id, first_name, last_name, property_state, lead_score, campaign_status, assigned_broker_id,"
    " added_to_campaign_at, email_verified, phone_verified"
)

# Why: the view is recreated whole (a materialized view's query cannot be altered); 0014's text with one more
# condition, then its indexes and grants as they were.
VIEW = _0014._view(COLUMNS).replace(
    "   AND assigned_broker_id IS NOT NULL\n",
    "   AND assigned_broker_id IS NOT NULL\n"
    "   AND EXISTS (SELECT 1 FROM brokers b WHERE b.id = leads.assigned_broker_id AND b.active)\n",
)
assert "b.active" in VIEW
# Why: reversing puts 0014's view back exactly.
OLD_VIEW = _0014.VIEW


class Migration(migrations.Migration):
    dependencies = [("leads", "0019_follow_ups_saved_views"), ("security", "0004_broker_time_zone")]

    operations = [
        migrations.RunSQL(VIEW, reverse_sql=OLD_VIEW),
        # The admin names it as the runbooks do ("DNC registry imports", not Django's "Dnc registry imports").
        migrations.AlterModelOptions(
            name="dncregistryimport",
            options={"ordering": ["-imported_at", "-id"], "verbose_name": "DNC registry import"},
        ),
    ]
