"""The blind indexes of e-mail and phone in `leads_staging`: the normaliser computes them (the ingestion stages
every column it writes into `leads`, leads/columns.py INGESTED)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0012_blind_indexes"),
        ("pipeline", "0013_staging_mailing"),
    ]

    operations = [
        migrations.AddField(
            model_name="leadstaging",
            name="email_bidx",
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="leadstaging",
            name="email_domain_bidx",
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="leadstaging",
            name="phone_bidx",
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="leadstaging",
            name="phone_last4_bidx",
            field=models.TextField(blank=True, null=True),
        ),
    ]
