"""The owner's mailing address in `leads_staging`: the ingestion stages every column it writes into `leads`
(leads/columns.py INGESTED), and leads/migrations/0011 gave leads the four mailing columns."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0011_contact_windows"),
        ("pipeline", "0012_intake_least_privilege"),
    ]

    operations = [
        migrations.AddField(model_name="leadstaging", name=name, field=models.TextField(blank=True, null=True))
        for name in ("mailing_address", "mailing_city", "mailing_state", "mailing_zip")
    ]
